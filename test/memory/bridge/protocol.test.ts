import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readBatch } from '../../../src/memory/bridge/protocol.js';

/** Memory is addr & 0xff; reads touching [0x1000, 0x1800) fail. */
async function fakeRead(addr: number, dst: Uint8Array): Promise<void> {
  if (addr < 0x1800 && addr + dst.length > 0x1000) throw new Error(`E14 at 0x${addr.toString(16)}`);
  for (let i = 0; i < dst.length; i++) dst[i] = (addr + i) & 0xff;
}

test('readBatch: ops back to back, a failing piece costs only itself', async () => {
  const r = await readBatch(
    [
      { addr: 0x10, len: 4 },
      { addr: 0x800, len: 0x1000 },
      { addr: 0x20, len: 0 },
      { addr: 0x30, len: 2 },
    ],
    0x800,
    fakeRead,
    () => false,
  );
  assert.equal(r.data.length, 4 + 0x1000 + 2);
  assert.deepEqual([...r.data.subarray(0, 4)], [0x10, 0x11, 0x12, 0x13]);
  assert.equal(r.data[4 + 0x7ff], 0xff, 'the first piece of the second op was read');
  assert.equal(r.data[4 + 0x800], 0, 'the failed piece is zero');
  assert.deepEqual([...r.data.subarray(4 + 0x1000)], [0x30, 0x31]);
  assert.deepEqual(r.failures.map((f) => [f.addr, f.len]), [[0x1000, 0x800]]);
  assert.match(r.failures[0]!.reason, /E14 at 0x1000/);
});

test('readBatch: an unbounded piece reads each op whole; a lost connection fails the batch', async () => {
  const whole = await readBatch([{ addr: 0xff0, len: 0x20 }], Infinity, fakeRead, () => false);
  assert.deepEqual(whole.failures.map((f) => [f.addr, f.len]), [[0xff0, 0x20]]);
  await assert.rejects(readBatch([{ addr: 0x1000, len: 8 }], Infinity, fakeRead, () => true), /E14/);
});
