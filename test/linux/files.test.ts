import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { devName, fileKind } from '../../src/linux/files.js';
import { mountOptions } from '../../src/linux/mounts.js';

describe('file classification', () => {
  test('by d_path pseudo name first, then S_IFMT', () => {
    assert.equal(fileKind(0o600, 'anon_inode:[eventfd]'), 'anon_inode');
    assert.equal(fileKind(0o10600, 'pipe:[45]'), 'pipe');
    assert.equal(fileKind(0o140777, 'socket:[9930]'), 'socket');
    assert.equal(fileKind(0o100644, '/tmp/vmi-data.txt'), 'regular');
    assert.equal(fileKind(0o40755, '/tmp'), 'directory');
    assert.equal(fileKind(0o20620, '/dev/console'), 'char');
    assert.equal(fileKind(0o60660, '/dev/sda'), 'block');
    assert.equal(fileKind(0o10644, '/run/fifo'), 'fifo');
    assert.equal(fileKind(0, '?'), 'unknown');
  });
  test('dev_t as major:minor', () => {
    assert.equal(devName((5 << 20) | 1), '5:1');
    assert.equal(devName((1 << 20) | 3), '1:3');
    assert.equal(devName(0x17), '0:23');
  });
});

describe('mount options', () => {
  test('rw/ro and the MNT_* flags mountinfo shows', () => {
    assert.equal(mountOptions(0), 'rw');
    assert.equal(mountOptions(0x20), 'rw,relatime');
    assert.equal(mountOptions(0x40 | 0x01 | 0x02 | 0x04), 'ro,nosuid,nodev,noexec');
  });
});

describe('fd table walking over corrupt memory', () => {
  test('an absurd max_fds is bounded, unreadable slots are faults, bad pointers are skipped', async () => {
    const { AnomalySink } = await import('../../src/linux/anomaly.js');
    const { taskFiles, MAX_FDS } = await import('../../src/linux/files.js');
    const { PathResolver } = await import('../../src/linux/fs-path.js');
    const { BareSpace, makeKernel } = await import('./helpers/bare-kernel.js');
    const { KBASE, TypeBuilder } = await import('./helpers/synthetic.js');
    const b = new TypeBuilder();
    const file = b.declare('file');
    b.define(file, 0x40, [['f_flags', b.uint, 0]]);
    const fdt = b.struct('fdtable', 0x20, [['max_fds', b.uint, 0], ['fd', b.ptr(b.ptr(file)), 8], ['close_on_exec', b.ptr(b.ulong), 16], ['open_fds', b.ptr(b.ulong), 24]]);
    const files = b.struct('files_struct', 0x10, [['fdt', b.ptr(fdt), 0]]);
    b.struct('task_struct', 0x20, [['files', b.ptr(files), 0]]);
    const mem = new BareSpace();
    const TASK = KBASE + 0x1000n;
    const FILES = KBASE + 0x2000n;
    const FDT = KBASE + 0x3000n;
    const FDS = KBASE + 0x10000n;
    mem.w64(TASK, FILES);
    mem.w64(FILES, FDT);
    mem.w32(FDT, 0xffff_ffff);
    mem.w64(FDT + 8n, FDS);
    mem.w64(FDT + 16n, KBASE + 0x5000n);
    mem.map(KBASE + 0x5000n, 8);
    mem.w64(FDT + 24n, KBASE + 0x6000n);
    mem.w64(KBASE + 0x6000n, 0b0010n); // fd 1 open; fd 2 is not
    mem.w64(FDS + 16n, KBASE + 0x2000n); // fd 2: a file pointer in a slot open_fds does not mark
    mem.w64(FDS, 0xdead_0000_0000_0100n); // poison: not a kernel pointer
    mem.w64(FDS + 8n, KBASE + 0x70_0000n); // unmapped struct file
    const k = makeKernel(b, mem, []);
    const a = new AnomalySink();
    const t0 = performance.now();
    const rows = [...taskFiles(k, k.typed.obj('task_struct', TASK).read(), new PathResolver(k, a), a)];
    assert.ok(performance.now() - t0 < 30_000); // a hang guard, not a speed goal (those are benchmarks)
    assert.deepEqual(rows, []);
    assert.equal(a.counts.invalid, 2); // max_fds, and fd 2 (a file pointer in a slot open_fds does not mark)
    assert.ok(a.items.some((x) => x.kind === 'invalid' && x.detail === `${0xffff_ffff} > ${MAX_FDS}`));
    assert.equal(a.counts['bad-pointer'], 1);
    assert.ok((a.counts.fault ?? 0) >= 2); // the unmapped rest of the fd array, and the unmapped file
  });
});
