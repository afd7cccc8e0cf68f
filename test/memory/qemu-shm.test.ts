import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { SourceError } from '../../src/core/errors.js';
import { readPhys, readU64Phys } from '../../src/memory/access.js';
import { nativeSupport } from '../../src/memory/native/libc.js';
import type { ReadOp } from '../../src/memory/types.js';
import { factory, openQemuShm } from '../../src/memory/sources/qemu-shm.js';
import { startFakeQmp } from '../qemu/helpers/fake-qmp.js';
import { gpa } from '../../src/core/address.js';

const MiB = 1 << 20;

/** A 3 MiB "RAM file" where every 8-byte word holds its own file offset. */
function makeRamFile(dir: string, size = 3 * MiB): string {
  const file = path.join(dir, 'ram');
  const buf = Buffer.alloc(size);
  for (let off = 0; off < size; off += 8) buf.writeBigUInt64LE(BigInt(off), off);
  fs.writeFileSync(file, buf);
  return file;
}

function withDir(fn: (dir: string) => Promise<void>): () => Promise<void> {
  return async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmsight-test-shm-'));
    try {
      await fn(dir);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  };
}

for (const pread of [false, true]) {
  const mode = pread ? 'pread' : 'mmap';
  test(`${mode}: a bare file gets the q35 layout; reads, holes and views`, withDir(async (dir) => {
    const mem = await openQemuShm({ path: makeRamFile(dir), pread });
    try {
      assert.equal(mem.technique.class, 'live-map');
      assert.equal(mem.technique.zeroCopy, !pread && nativeSupport().ok);
      assert.equal(mem.layoutSource, 'q35-default');
      assert.deepEqual(mem.ranges().map((r) => [r.start, r.end]), [
        [0, 0xa0000],
        [0xc0000, 3 * MiB],
      ]);
      assert.equal(mem.size, 3 * MiB);
      assert.equal(readU64Phys(mem, 0x123458), 0x123458n);
      const ops: ReadOp[] = [{ addr: gpa(0x9fff8), len: 16 }, { addr: gpa(0x2ffff8), len: 16 }, { addr: gpa(0x100000), len: 0 }, { addr: gpa(-1), len: 8 }];
      const failures = mem.readv(ops);
      assert.deepEqual(
        failures.map((f) => [f.addr, f.len]),
        [
          [0xa0000, 8],
          [0x300000, 8],
          [-1, 8],
        ],
      );
      assert.match(failures[0]!.reason, /not guest RAM .*0xa0000/);
      assert.equal(Buffer.from(ops[0]!.dst!).readBigUInt64LE(0), 0x9fff8n);
      assert.equal(Buffer.from(ops[0]!.dst!).readBigUInt64LE(8), 0n, 'hole bytes are zero');
      assert.equal(ops[2]!.dst!.length, 0);
      // Caller-owned destination.
      const dst = new Uint8Array(24).fill(0xee);
      assert.deepEqual(mem.readv([{ addr: gpa(0x200000), len: 16, dst }]), []);
      assert.equal(dst[20], 0xee, 'bytes past len untouched');
      if (!pread) {
        const regions = mem.mapped!();
        assert.equal(regions.length, 2);
        // A view is live: it sees a write made to the file after open.
        const view = readPhys(mem, 0x1000, 8);
        const fd = fs.openSync(path.join(dir, 'ram'), 'r+');
        fs.writeSync(fd, Buffer.from([1, 2, 3, 4, 5, 6, 7, 8]), 0, 8, 0x1000);
        fs.closeSync(fd);
        assert.deepEqual([...view], [1, 2, 3, 4, 5, 6, 7, 8]);
      } else {
        assert.equal(mem.mapped, undefined);
      }
      const g = mem.generation;
      await mem.refresh();
      assert.equal(mem.generation, g + 1);
    } finally {
      await mem.close();
      await mem.close();
    }
    assert.throws(() => mem.readv([{ addr: gpa(0), len: 1 }]), SourceError);
  }));
}

test('a 5 GiB sparse file gets RAM above 4 GiB at file offset 2 GiB', withDir(async (dir) => {
  const file = path.join(dir, 'big');
  fs.writeFileSync(file, '');
  fs.truncateSync(file, 5 * 1024 * MiB);
  const fd = fs.openSync(file, 'r+');
  fs.writeSync(fd, Buffer.from('above4g!'), 0, 8, 0x80000000 + 0x1234);
  fs.closeSync(fd);
  const mem = await openQemuShm({ path: file });
  try {
    assert.equal(mem.size, 0x100000000 + 3 * 1024 * MiB);
    assert.equal(Buffer.from(readPhys(mem, 0x100001234, 8)).toString(), 'above4g!');
    assert.equal(mem.readv([{ addr: gpa(0x80001234), len: 8 }]).length, 1, 'the PCI hole is not RAM');
  } finally {
    await mem.close();
  }
}));

test('layout from QMP; refuses share=off and a file QEMU does not use', withDir(async (dir) => {
  const file = makeRamFile(dir);
  let share = true;
  let memPath = file;
  const mtree = [
    'FlatView #0',
    ' AS "memory", root: system',
    '  0000000000000000-00000000000fffff (prio 0, ram): ram0',
    '  0000000000100000-00000000001fffff (prio 0, i/o): mmio',
    '  0000000000200000-00000000002fffff (prio 0, ram): ram0 @0000000000100000',
  ].join('\n');
  const qmp = await startFakeQmp((cmd, args) => {
    if (cmd === 'query-status') return { status: 'running' };
    if (cmd === 'hmp:info mtree -f') return mtree;
    if (cmd === 'query-memdev') return [{ id: 'ram0', size: 3 * MiB, share }];
    if (cmd === 'qom-list') return [{ name: 'ram0', type: 'child<memory-backend-file>' }];
    if (cmd === 'qom-get' && args?.['property'] === 'mem-path') return memPath;
    if (cmd === 'hmp:info registers -a') return 'CPU#0\r\nCR0=80050033 CR3=0000000000001000 CR4=00000020\r\nEFER=0000000000000d01\r\n';
    throw new Error('unsupported');
  });
  try {
    const mem = await openQemuShm({ path: file, qmp: qmp.path });
    try {
      assert.equal(mem.layoutSource, 'qmp');
      assert.deepEqual(mem.ranges().map((r) => [r.start, r.end]), [[0, 0x100000], [0x200000, 0x300000]]);
      assert.equal(readU64Phys(mem, 0x200010), 0x100010n, 'GPA 0x200010 is file offset 0x100010');
      assert.equal((await mem.hints()).cpus?.[0]?.cr3, 0x1000n);
    } finally {
      await mem.close();
    }
    const probe = await factory.probe({ spec: 'x', qmp: qmp.path, params: {} });
    assert.equal(probe.ok, true, probe.reason);
    share = false;
    await assert.rejects(openQemuShm({ path: file, qmp: qmp.path }), /share=off/);
    assert.equal((await factory.probe({ spec: 'x', qmp: qmp.path, params: {} })).ok, false);
    share = true;
    memPath = path.join(dir, 'other');
    await assert.rejects(openQemuShm({ path: file, qmp: qmp.path }), /does not keep RAM in this file/);
  } finally {
    await qmp.close();
  }
}));

test('missing, unreadable or too small files are SourceErrors', withDir(async (dir) => {
  await assert.rejects(openQemuShm({ path: path.join(dir, 'nope') }), (e: unknown) => e instanceof SourceError && /no such file/.test(e.message));
  await assert.rejects(openQemuShm({ path: dir }), /not a regular file/);
  const file = makeRamFile(dir, 4096);
  await assert.rejects(openQemuShm({ path: file, layout: [{ start: gpa(0), end: gpa(8192), block: 'mem', blockOffset: 0, name: 'x' }] }), /layout needs 8192/);
  const p = await factory.probe({ spec: 'x', shm: path.join(dir, 'nope'), params: {} });
  assert.equal(p.ok, false);
  assert.match(p.reason, /ENOENT/);
  assert.equal((await factory.probe({ spec: 'x', params: {} })).ok, false);
}));

test('refresh notices a RAM file that was removed or replaced', withDir(async (dir) => {
  const file = makeRamFile(dir);
  const mem = await openQemuShm({ path: file });
  try {
    await mem.refresh();
    fs.rmSync(file);
    await assert.rejects(mem.refresh(), /gone/);
    makeRamFile(dir); // same name, new file
    await assert.rejects(mem.refresh(), /replaced/);
    assert.equal(readU64Phys(mem, 0x1000), 0x1000n, 'reads still see the mapped (old) file');
  } finally {
    await mem.close();
  }
}));
