/**
 * d_path(): the path of a `struct path` (vfsmount + dentry), walking dentry
 * parents and crossing mount points upwards (mount->mnt_mountpoint,
 * mnt_parent) as fs/d_path.c's prepend_path() does, plus the pseudo names
 * of d_dname() file systems (`socket:[ino]`, `pipe:[ino]`,
 * `anon_inode:[eventpoll]`) and the " (deleted)" suffix of unlinked files.
 *
 * Bounded: at most MAX_COMPONENTS names, each at most NAME_MAX bytes; a
 * dentry or mount reached twice is a cycle. Anomalies go to the sink; the
 * path built so far is returned with a leading '…' when cut.
 *
 * @example
 * const paths = new PathResolver(kernel, ctx.anomalies);
 * paths.filePath(vma.ptr('vm_file'));        // '/usr/lib/libc.so.6'
 */
import { FaultError, ProfileError } from '../core/errors.js';
import type { AnomalySink } from './anomaly.js';
import type { Kernel } from './kernel.js';
import type { ObjValue } from '../profile/typed.js';
import { isKernelPointer } from './walk/common.js';

export const MAX_COMPONENTS = 256;
export const NAME_MAX = 255;

/** The names d_dname() implementations print, by the function's symbol name. */
const D_DNAME: Record<string, (name: string, ino: bigint) => string> = {
  sockfs_dname: (_n, ino) => `socket:[${ino}]`,
  pipefs_dname: (_n, ino) => `pipe:[${ino}]`,
  anon_inodefs_dname: (n) => `anon_inode:${n}`,
  simple_dname: (n) => `${n}`,
};

export interface PathRoot {
  /** `struct vfsmount *` */
  readonly mnt: bigint;
  /** `struct dentry *` */
  readonly dentry: bigint;
}

/**
 * Resolves paths with a per-instance cache (one per plugin run: a live
 * guest's dentries change between runs). Reads each dentry and mount once.
 */
export class PathResolver {
  private readonly cache = new Map<string, string>();
  private readonly dnameCache = new Map<bigint, string | undefined>();
  private readonly hasDHash: boolean;

  /**
   * @param root stop at this (vfsmount, dentry), like a process's fs->root; default: the top of the mount tree
   */
  constructor(
    readonly kernel: Kernel,
    readonly anomalies: AnomalySink,
    readonly root?: PathRoot,
  ) {
    this.hasDHash = kernel.types.hasMember('dentry', 'd_hash.pprev');
  }

  /** Path of a `struct file *` (its f_path); '' for NULL. */
  filePath(file: bigint): string {
    if (file === 0n) return '';
    const t = this.kernel.typed;
    const off = BigInt(t.db.offsetOf('file', 'f_path'));
    try {
      const p = t.obj('path', file + off).read();
      return this.dPath(p.ptr('mnt'), p.ptr('dentry'));
    } catch (e) {
      if (!(e instanceof FaultError)) throw e;
      this.anomalies.add({ kind: 'fault', where: 'file.f_path', address: file, detail: e.message });
      return '';
    }
  }

  /**
   * d_path() of (vfsmount, dentry).
   * @param mnt `struct vfsmount *`
   * @param dentry `struct dentry *`
   */
  dPath(mnt: bigint, dentry: bigint): string {
    const key = `${mnt}:${dentry}`;
    const hit = this.cache.get(key);
    if (hit !== undefined) return hit;
    const path = this.build(mnt, dentry);
    this.cache.set(key, path);
    return path;
  }

  /** The final component of a dentry (d_name), bounded. */
  dentryName(dentry: bigint): string {
    try {
      return this.nameOf(this.kernel.typed.obj('dentry', dentry).read());
    } catch (e) {
      if (!(e instanceof FaultError)) throw e;
      this.anomalies.add({ kind: 'fault', where: 'dentry.d_name', address: dentry, detail: e.message });
      return '?';
    }
  }

  private build(mnt: bigint, dentry: bigint): string {
    const k = this.kernel;
    const t = k.typed;
    const parts: string[] = [];
    const seen = new Set<bigint>();
    let suffix = '';
    let first = true;
    try {
      if (!isKernelPointer(dentry) || !isKernelPointer(mnt)) {
        this.anomalies.add({ kind: 'bad-pointer', where: 'path', address: isKernelPointer(dentry) ? mnt : dentry, detail: 'path has a non-kernel pointer' });
        return '?';
      }
      let mount = t.containerOf(mnt, 'mount', 'mnt').read();
      let vfs = mount.member('mnt');
      for (let n = 0; ; n++) {
        if (n > MAX_COMPONENTS) {
          this.anomalies.add({ kind: 'truncated', where: 'd_path', address: dentry, detail: `more than ${MAX_COMPONENTS} components` });
          return '…/' + parts.reverse().join('/') + suffix;
        }
        if (this.root && dentry === this.root.dentry && vfs.address === this.root.mnt) break;
        if (seen.has(dentry)) {
          this.anomalies.add({ kind: 'cycle', where: 'd_path', address: dentry, detail: 'dentry reached twice' });
          break;
        }
        seen.add(dentry);
        const d = t.obj('dentry', dentry).read();
        if (first) {
          first = false;
          const pseudo = this.pseudoName(d);
          if (pseudo !== undefined) return pseudo;
          // d_unlinked(): unhashed and not a root
          if (this.hasDHash && d.ptr('d_hash.pprev') === 0n && d.ptr('d_parent') !== dentry) suffix = ' (deleted)';
        }
        const parent = d.ptr('d_parent');
        if (dentry === vfs.ptr('mnt_root') || parent === dentry) {
          // At the root of this mount: continue from its mount point, or stop at the tree top.
          const up = mount.ptr('mnt_parent');
          if (up === mount.address || up === 0n) break;
          if (!isKernelPointer(up)) {
            this.anomalies.add({ kind: 'bad-pointer', where: 'mount.mnt_parent', address: up });
            break;
          }
          dentry = mount.ptr('mnt_mountpoint');
          mount = t.obj('mount', up).read();
          vfs = mount.member('mnt');
          continue;
        }
        parts.push(this.nameOf(d));
        if (!isKernelPointer(parent)) {
          this.anomalies.add({ kind: 'bad-pointer', where: 'dentry.d_parent', address: parent });
          return '…/' + parts.reverse().join('/') + suffix;
        }
        dentry = parent;
      }
    } catch (e) {
      if (!(e instanceof FaultError)) throw e;
      this.anomalies.add({ kind: 'fault', where: 'd_path', address: e.address, detail: e.message });
      return '…/' + parts.reverse().join('/') + suffix;
    }
    return '/' + parts.reverse().join('/') + suffix;
  }

  /** d_name as a string, length-bounded; short names are in d_iname but d_name.name points there anyway. */
  private nameOf(d: ObjValue): string {
    let len = d.u32('d_name.len');
    const ptr = d.ptr('d_name.name');
    if (len > NAME_MAX) {
      this.anomalies.add({ kind: 'invalid', where: 'dentry.d_name', address: d.address, detail: `name length ${len} > ${NAME_MAX}` });
      len = NAME_MAX;
    }
    if (len === 0) return '';
    if (!isKernelPointer(ptr & ~7n)) {
      this.anomalies.add({ kind: 'bad-pointer', where: 'dentry.d_name.name', address: ptr });
      return '?';
    }
    const b = this.kernel.typed.mem.read(ptr, len);
    const end = b.indexOf(0);
    return Buffer.from(b.buffer, b.byteOffset, end < 0 ? len : end).toString('utf8');
  }

  /** The d_dname() name of a pseudo-fs dentry (sockets, pipes, anon inodes), else undefined. */
  private pseudoName(d: ObjValue): string | undefined {
    const ops = d.ptr('d_op');
    if (ops === 0n) return undefined;
    let fn = this.dnameCache.get(ops);
    if (!this.dnameCache.has(ops)) {
      fn = undefined;
      try {
        const dname = this.kernel.typed.obj('dentry_operations', ops).field('d_dname').ptr();
        if (dname !== 0n) fn = this.kernel.symbols.nameOf(dname, 0n)?.name;
      } catch (e) {
        if (!(e instanceof FaultError) && !(e instanceof ProfileError)) throw e;
      }
      this.dnameCache.set(ops, fn);
    }
    if (fn === undefined) return undefined;
    const make = D_DNAME[fn];
    const inode = d.ptr('d_inode');
    let ino = 0n;
    if (inode !== 0n) ino = this.kernel.typed.obj('inode', inode).field('i_ino').int();
    const name = this.nameOf(d);
    return make ? make(name, ino) : `${name}:[${ino}]`;
  }
}
