import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { addressOf, IOV_MAX, IovecBatch, mapFileReadOnly, nativeSupport, NativeError } from '../../src/memory/native/libc.js';

const native = nativeSupport();

test('native support is available on this Linux host', () => {
  assert.equal(native.ok, true, native.ok ? '' : native.reason);
});

test('a read-only shared mapping follows writes to the file, and reads zeros after unmap', { skip: !native.ok }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmsight-test-map-'));
  const file = path.join(dir, 'ram');
  fs.writeFileSync(file, Buffer.alloc(3 * 4096, 0x11));
  const fd = fs.openSync(file, 'r');
  try {
    const m = mapFileReadOnly(fd, 3 * 4096);
    assert.equal(m.bytes.length, 3 * 4096);
    assert.equal(m.bytes[5000], 0x11);
    const wfd = fs.openSync(file, 'r+');
    fs.writeSync(wfd, Buffer.from('Linux version'), 0, 13, 5000);
    fs.closeSync(wfd);
    assert.equal(Buffer.from(m.bytes.subarray(5000, 5013)).toString(), 'Linux version', 'MAP_SHARED sees the write');
    const kept = m.bytes.subarray(4096, 8192);
    m.unmap();
    m.unmap(); // idempotent
    assert.equal(kept[904], 0, 'a stale view reads zeros instead of crashing');
    assert.equal(fs.readFileSync(file)[5000], 'L'.charCodeAt(0), 'the file itself was never written by us');
  } finally {
    fs.closeSync(fd);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('mapping errors are NativeErrors with errno names', { skip: !native.ok }, () => {
  assert.throws(() => mapFileReadOnly(99999, 4096), (e: unknown) => e instanceof NativeError && e.code === 'EBADF');
  assert.throws(() => mapFileReadOnly(0, 0), RangeError);
});

test('process_vm_readv on ourselves: one call, many iovecs', { skip: !native.ok }, () => {
  const src = new Uint8Array(1 << 16);
  for (let i = 0; i < src.length; i++) src[i] = (i * 7) & 0xff;
  const srcAddr = addressOf(src);
  const dst = new Uint8Array(IOV_MAX * 8);
  const b = new IovecBatch();
  const dstAddr = addressOf(dst);
  for (let i = 0; i < IOV_MAX; i++) b.add(dstAddr + i * 8, srcAddr + i * 61, 8);
  assert.equal(b.full, true);
  assert.throws(() => b.add(dstAddr, srcAddr, 1), RangeError);
  assert.equal(b.read(process.pid), IOV_MAX * 8);
  for (let i = 0; i < IOV_MAX; i += 97) assert.deepEqual(dst.subarray(i * 8, i * 8 + 8), src.subarray(i * 61, i * 61 + 8));
  // A small typed array (V8 may keep those on its heap) gets a stable address too.
  const small = new Uint8Array(5);
  b.clear();
  b.add(addressOf(small), srcAddr + 10, 5);
  assert.equal(b.read(process.pid), 5);
  assert.deepEqual([...small], [...src.subarray(10, 15)]);
  // A subarray's address includes its offset.
  const whole = new Uint8Array(32);
  b.clear();
  b.add(addressOf(whole.subarray(16)), srcAddr, 4);
  b.read(process.pid);
  assert.deepEqual([...whole.subarray(16, 20)], [...src.subarray(0, 4)]);
  assert.deepEqual([...whole.subarray(0, 16)], new Array(16).fill(0));
});

test('process_vm_readv stops at a faulting remote range; a missing process is ESRCH', { skip: !native.ok }, () => {
  const src = Buffer.alloc(64, 0xab);
  const dst = Buffer.alloc(64);
  const b = new IovecBatch();
  b.add(addressOf(dst), addressOf(src), 16);
  b.add(addressOf(dst) + 16, 0x1000, 16); // page 1 is never mapped
  b.add(addressOf(dst) + 32, addressOf(src), 16);
  assert.equal(b.read(process.pid), 16);
  b.clear();
  b.add(addressOf(dst), 0x1000, 16);
  assert.equal(b.read(process.pid), 0, 'first range faulting reads nothing');
  let pid = 4_000_000; // above pid_max on usual systems
  while (fs.existsSync(`/proc/${pid}`)) pid++;
  assert.throws(() => b.read(pid), (e: unknown) => e instanceof NativeError && e.code === 'ESRCH');
});
