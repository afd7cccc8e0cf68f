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

describe('sockets among the open fds (taskSockets)', () => {
  async function fixture(withFops: boolean) {
    const { BareSpace, makeKernel } = await import('./helpers/bare-kernel.js');
    const { KBASE, TypeBuilder } = await import('./helpers/synthetic.js');
    const b = new TypeBuilder();
    const inode = b.struct('inode', 0x20, [['i_mode', b.u16, 0], ['i_ino', b.ulong, 8]]);
    const file = b.declare('file');
    b.define(file, 0x40, [['f_op', b.voidp, 0], ['f_inode', b.ptr(inode), 8], ['private_data', b.voidp, 16], ['f_flags', b.uint, 24]]);
    const fdt = b.struct('fdtable', 0x20, [['max_fds', b.uint, 0], ['fd', b.ptr(b.ptr(file)), 8], ['close_on_exec', b.ptr(b.ulong), 16], ['open_fds', b.ptr(b.ulong), 24]]);
    const files = b.struct('files_struct', 0x10, [['fdt', b.ptr(fdt), 0]]);
    b.struct('task_struct', 0x20, [['files', b.ptr(files), 0]]);
    const mem = new BareSpace();
    const TASK = KBASE + 0x1000n;
    const FDT = KBASE + 0x3000n;
    const FDS = KBASE + 0x4000n;
    const SOCKET_FOPS = KBASE + 0x9000n;
    const OTHER_FOPS = KBASE + 0x9100n;
    mem.w64(TASK, KBASE + 0x2000n);
    mem.w64(KBASE + 0x2000n, FDT);
    mem.w32(FDT, 64);
    mem.w64(FDT + 8n, FDS);
    mem.w64(FDT + 16n, KBASE + 0x5000n);
    mem.w64(FDT + 24n, KBASE + 0x6000n);
    mem.map(KBASE + 0x5000n, 8);
    mem.w64(KBASE + 0x6000n, 0b1111n);
    mem.map(FDS, 64 * 8);
    // fd 0: a regular file whose inode is unmapped (never read when f_op tells it is no socket)
    // fd 1: a socket; fd 2: an S_IFSOCK inode opened with other f_op (O_PATH); fd 3: a socket with a poisoned f_inode
    const put = (fd: number, fops: bigint, inodeVa: bigint, priv: bigint) => {
      const f = KBASE + 0x10000n + BigInt(fd) * 0x100n;
      mem.w64(FDS + BigInt(fd * 8), f);
      mem.w64(f, fops);
      mem.w64(f + 8n, inodeVa);
      mem.w64(f + 16n, priv);
    };
    const inodeAt = (va: bigint, mode: number, ino: bigint) => {
      mem.w32(va, mode);
      mem.w64(va + 8n, ino);
      return va;
    };
    put(0, OTHER_FOPS, KBASE + 0x70_0000n, 0n);
    put(1, SOCKET_FOPS, inodeAt(KBASE + 0x20000n, 0o140777, 9930n), KBASE + 0x30000n);
    put(2, OTHER_FOPS, inodeAt(KBASE + 0x20100n, 0o140755, 77n), 0n);
    put(3, SOCKET_FOPS, 0xdead_0000_0000_0000n, KBASE + 0x30100n);
    const k = makeKernel(b, mem, withFops ? [['socket_file_ops', SOCKET_FOPS, 'd']] : []);
    return { k, task: k.typed.obj('task_struct', TASK).read(), KBASE };
  }

  test('with socket_file_ops: only socket files, no other inode read, a poisoned inode named', async () => {
    const { AnomalySink } = await import('../../src/linux/anomaly.js');
    const { taskSockets } = await import('../../src/linux/files.js');
    const { k, task, KBASE } = await fixture(true);
    const a = new AnomalySink();
    const rows = [...taskSockets(k, task, a)];
    assert.deepEqual(rows.map((r) => [r.fd, r.inode, r.socket]), [[1, 9930n, KBASE + 0x30000n], [3, 0n, KBASE + 0x30100n]]);
    assert.equal(a.counts.fault ?? 0, 0); // fd 0's unmapped inode was not read
    assert.equal(a.counts['bad-pointer'], 1);
  });

  test('without the symbol: every S_IFSOCK inode, as lsof classifies them', async () => {
    const { AnomalySink } = await import('../../src/linux/anomaly.js');
    const { taskSockets } = await import('../../src/linux/files.js');
    const { k, task } = await fixture(false);
    const a = new AnomalySink();
    const rows = [...taskSockets(k, task, a)];
    assert.deepEqual(rows.map((r) => [r.fd, r.inode]), [[1, 9930n], [2, 77n]]);
    assert.equal(a.counts.fault, 1); // fd 0's unmapped inode
    assert.equal(a.counts['bad-pointer'], 1); // fd 3's inode: named, and no row (nothing says it is a socket)
  });
});
