import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressSpace } from '../../src/arch/address-space.js';
import { AnomalySink } from '../../src/linux/anomaly.js';
import { PathResolver } from '../../src/linux/fs-path.js';
import { Kernel } from '../../src/linux/kernel.js';
import type { PhysicalMemory } from '../../src/memory/types.js';
import { SymbolTableBuilder } from '../../src/profile/symbols.js';
import { FakeSpace } from './helpers/synthetic-kernel.js';
import { KBASE, TypeBuilder } from './helpers/synthetic.js';

/** dentry / mount / file types with the member names d_path reads. */
function setup() {
  const b = new TypeBuilder();
  const dentry = b.declare('dentry');
  const qstr = b.struct('qstr', 16, [['hash', b.uint, 0], ['len', b.uint, 4], ['name', b.ptr(b.u8), 8]]);
  const bl = b.struct('hlist_bl_node', 16, [['next', b.voidp, 0], ['pprev', b.voidp, 8]]);
  const inode = b.struct('inode', 16, [['i_ino', b.ulong, 0]]);
  b.struct('dentry_operations', 8, [['d_dname', b.voidp, 0]]);
  b.define(dentry, 0x40, [['d_parent', b.ptr(dentry), 0], ['d_name', qstr, 8], ['d_inode', b.ptr(inode), 0x18], ['d_op', b.voidp, 0x20], ['d_hash', bl, 0x28]]);
  const vfsmount = b.struct('vfsmount', 16, [['mnt_root', b.ptr(dentry), 0], ['mnt_sb', b.voidp, 8]]);
  const mount = b.declare('mount');
  b.define(mount, 0x30, [['mnt_parent', b.ptr(mount), 0], ['mnt_mountpoint', b.ptr(dentry), 8], ['mnt', vfsmount, 0x10]]);
  const path = b.struct('path', 16, [['mnt', b.ptr(vfsmount), 0], ['dentry', b.ptr(dentry), 8]]);
  b.struct('file', 0x20, [['f_path', path, 0], ['f_inode', b.ptr(inode), 0x10]]);
  const mem = new FakeSpace();
  const symbols = new SymbolTableBuilder().add('sockfs_dname', KBASE + 0x9000n, 't').build('synthetic');
  const kernel = new Kernel(mem as unknown as PhysicalMemory, mem as unknown as AddressSpace, {
    release: 'x', banner: 'x', kaslr: { virtualShift: 0n, physBase: 0n }, pagingLevels: 4, symbols, types: b.db(), sources: {},
  });
  let next = KBASE + 0x10000n;
  const alloc = (n: number) => {
    const va = next;
    next += 0x100n;
    mem.map(va, n);
    return va;
  };
  const mkDentry = (name: string, parent: bigint | 'self', opts: { hashed?: boolean } = {}) => {
    const d = alloc(0x40);
    const n = alloc(64);
    mem.wstr(n, name);
    mem.w64(d, parent === 'self' ? d : parent);
    mem.w32(d + 12n, Buffer.byteLength(name));
    mem.w64(d + 16n, n);
    mem.w64(d + 0x28n + 8n, opts.hashed === false ? 0n : KBASE + 0x8000n);
    return d;
  };
  const mkMount = (root: bigint, parent: bigint | 'self', mountpoint: bigint) => {
    const m = alloc(0x30);
    mem.w64(m, parent === 'self' ? m : parent);
    mem.w64(m + 8n, mountpoint);
    mem.w64(m + 0x10n, root);
    return { mount: m, vfs: m + 0x10n };
  };
  // rootfs: / -> usr -> lib -> libc.so ; mnt (mount point of a second fs)
  const root = mkDentry('/', 'self');
  const usr = mkDentry('usr', root);
  const lib = mkDentry('lib', usr);
  const libc = mkDentry('libc.so.6', lib);
  const mnt = mkDentry('mnt', root);
  const top = mkMount(root, 'self', root);
  const root2 = mkDentry('/', 'self');
  const data = mkDentry('data.txt', root2);
  const sub = mkMount(root2, top.mount, mnt);
  return { mem, kernel, alloc, mkDentry, top, sub, root, usr, lib, libc, data };
}

test('dPath builds paths and crosses mount points upwards', () => {
  const s = setup();
  const sink = new AnomalySink();
  const p = new PathResolver(s.kernel, sink);
  assert.equal(p.dPath(s.top.vfs, s.libc), '/usr/lib/libc.so.6');
  assert.equal(p.dPath(s.sub.vfs, s.data), '/mnt/data.txt');
  assert.equal(p.dPath(s.top.vfs, s.root), '/');
  assert.equal(sink.total, 0);
});

test('unlinked files get " (deleted)"; d_dname file systems get their pseudo name', () => {
  const s = setup();
  const gone = s.mkDentry('old.log', s.lib, { hashed: false });
  const p = new PathResolver(s.kernel, new AnomalySink());
  assert.equal(p.dPath(s.top.vfs, gone), '/usr/lib/old.log (deleted)');
  const ops = s.alloc(8);
  s.mem.w64(ops, KBASE + 0x9000n); // d_dname = sockfs_dname
  const ino = s.alloc(16);
  s.mem.w64(ino, 4242n);
  const sock = s.mkDentry('', s.root);
  s.mem.w64(sock + 0x20n, ops);
  s.mem.w64(sock + 0x18n, ino);
  assert.equal(p.dPath(s.top.vfs, sock), 'socket:[4242]');
});

test('a d_parent cycle, an absurd name length and a bad pointer are bounded and named', () => {
  const s = setup();
  // lib's parent -> libc (whose parent is lib): a loop that never reaches the root
  s.mem.w64(s.lib, s.libc);
  let sink = new AnomalySink();
  let p = new PathResolver(s.kernel, sink);
  const looped = p.dPath(s.top.vfs, s.libc);
  assert.equal(sink.counts.cycle, 1);
  assert.ok(looped.endsWith('libc.so.6'));
  const s2 = setup();
  s2.mem.w32(s2.usr + 12n, 1 << 30);
  sink = new AnomalySink();
  p = new PathResolver(s2.kernel, sink);
  const long = p.dPath(s2.top.vfs, s2.libc);
  assert.equal(sink.counts.invalid, 1);
  assert.ok(long.length < 400);
  s2.mem.w64(s2.lib, 0x1234n);
  sink = new AnomalySink();
  p = new PathResolver(s2.kernel, sink);
  assert.equal(p.dPath(s2.top.vfs, s2.libc), '…/lib/libc.so.6');
  assert.equal(sink.counts['bad-pointer'], 1);
});

test('a mount-parent loop terminates', () => {
  const s = setup();
  // the sub mount's parent is itself no longer: top's parent -> sub, sub's parent -> top, both mountpoints at their roots
  s.mem.w64(s.top.mount, s.sub.mount);
  s.mem.w64(s.top.mount + 8n, s.data);
  const sink = new AnomalySink();
  const p = new PathResolver(s.kernel, sink);
  const out = p.dPath(s.sub.vfs, s.data);
  assert.ok(typeof out === 'string');
  assert.ok(sink.total >= 1);
});
