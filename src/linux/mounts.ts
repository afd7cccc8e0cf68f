/**
 * Mounts of a mount namespace, like /proc/PID/mountinfo: mount id, parent
 * id, major:minor, root inside the file system, mount point, per-mount
 * options, fs type (super_block->s_type->name) and source (mnt_devname).
 *
 * The namespace holds its mounts on `list` (struct mount.mnt_list) or, since
 * Linux kernel commit 2eea9ce4310d ("mounts: keep list of mounts in an
 * rbtree") (in v6.8), in the `mounts` rb_root (struct mount.mnt_node) —
 * chosen by presence (R8).
 */
import { FaultError } from '../core/errors.js';
import type { ObjRef, ObjValue } from '../profile/typed.js';
import type { AnomalySink } from './anomaly.js';
import { devName } from './files.js';
import { MAX_COMPONENTS, NAME_MAX, PathResolver } from './fs-path.js';
import type { Kernel } from './kernel.js';
import { isKernelPointer } from './walk/common.js';
import { listForEachEntry } from './walk/list.js';
import { rbtreeInorderEntry } from './walk/rbtree.js';

/** include/linux/mount.h MNT_* flags shown per mount in mountinfo. */
const MNT_FLAGS: [number, string][] = [
  [0x01, 'nosuid'],
  [0x02, 'nodev'],
  [0x04, 'noexec'],
  [0x08, 'noatime'],
  [0x10, 'nodiratime'],
  [0x20, 'relatime'],
];
const MNT_READONLY = 0x40;

/** The per-mount options column of mountinfo (show_mnt_opts + rw/ro). */
export function mountOptions(mntFlags: number): string {
  const parts = [mntFlags & MNT_READONLY ? 'ro' : 'rw'];
  for (const [bit, name] of MNT_FLAGS) if (mntFlags & bit) parts.push(name);
  return parts.join(',');
}

export interface MountInfo {
  /** struct mount address. */
  readonly mount: bigint;
  readonly id: number;
  readonly parentId: number;
  readonly dev: string;
  /** Path of mnt_root inside its file system ('/' for a whole-fs mount). */
  readonly root: string;
  readonly mountPoint: string;
  readonly options: string;
  readonly fsType: string;
  readonly source: string;
}

/** Mounts in a namespace, by the container the profile has. */
export function* namespaceMounts(kernel: Kernel, mntNs: bigint, anomalies: AnomalySink): Generator<ObjRef> {
  const { typed } = kernel;
  const ns = typed.obj('mnt_namespace', mntNs);
  const opts = { anomalies, limit: 100_000 };
  // Before v6.8 `mounts` is a counter, so test for the list first.
  if (typed.has('mnt_namespace', 'list')) {
    yield* listForEachEntry(typed, ns.addrOf('list'), 'mount', 'mnt_list', opts);
  } else {
    yield* rbtreeInorderEntry(typed, ns.addrOf('mounts'), 'mount', 'mnt_node', opts);
  }
}

/** The mount namespace of a task (task->nsproxy->mnt_ns); undefined for a task without nsproxy. */
export function taskMountNamespace(kernel: Kernel, task: ObjValue): bigint | undefined {
  const nsproxy = task.ptr('nsproxy');
  if (!isKernelPointer(nsproxy)) return undefined;
  return kernel.typed.obj('nsproxy', nsproxy).field('mnt_ns').ptr();
}

/**
 * dentry_path of `dentry` up to its file system root (d_parent == itself):
 * the "root" column of mountinfo.
 */
export function dentryPath(kernel: Kernel, paths: PathResolver, dentry: bigint, anomalies: AnomalySink): string {
  const parts: string[] = [];
  const seen = new Set<bigint>();
  let d = dentry;
  try {
    for (let n = 0; n <= MAX_COMPONENTS; n++) {
      if (!isKernelPointer(d) || seen.has(d)) {
        anomalies.add({ kind: seen.has(d) ? 'cycle' : 'bad-pointer', where: 'dentry.d_parent', address: d });
        return '…/' + parts.reverse().join('/');
      }
      seen.add(d);
      const parent = kernel.typed.obj('dentry', d).field('d_parent').ptr();
      if (parent === d) return '/' + parts.reverse().join('/');
      parts.push(paths.dentryName(d).slice(0, NAME_MAX));
      d = parent;
    }
  } catch (e) {
    if (!(e instanceof FaultError)) throw e;
    anomalies.add({ kind: 'fault', where: 'dentry.d_parent', address: d, detail: e.message });
  }
  return '…/' + parts.reverse().join('/');
}

/**
 * mountinfo rows of a mount namespace, in the namespace's order.
 * @param mntNs `struct mnt_namespace *`
 */
export function* mountInfo(kernel: Kernel, mntNs: bigint, anomalies: AnomalySink, paths = new PathResolver(kernel, anomalies)): Generator<MountInfo> {
  const { typed } = kernel;
  const nsRoot = typed.obj('mnt_namespace', mntNs).field('root').ptr();
  for (const ref of namespaceMounts(kernel, mntNs, anomalies)) {
    try {
      const m = ref.read();
      const vfs = m.member('mnt');
      const mntRoot = vfs.ptr('mnt_root');
      const sb = typed.obj('super_block', vfs.ptr('mnt_sb')).read();
      const fsType = sb.obj('s_type')?.read().cstr('name', 64) ?? '?';
      const parent = m.ptr('mnt_parent');
      let parentId = m.s32('mnt_id');
      if (parent !== ref.address && isKernelPointer(parent)) parentId = typed.obj('mount', parent).field('mnt_id').s32();
      yield {
        mount: ref.address,
        id: m.s32('mnt_id'),
        parentId,
        dev: devName(sb.u32('s_dev')),
        root: dentryPath(kernel, paths, mntRoot, anomalies),
        mountPoint: ref.address === nsRoot ? '/' : paths.dPath(vfs.address, mntRoot),
        options: mountOptions(vfs.s32('mnt_flags')),
        fsType,
        source: m.cstr('mnt_devname', 256) ?? 'none',
      };
    } catch (e) {
      if (!(e instanceof FaultError)) throw e;
      anomalies.add({ kind: 'fault', where: 'struct mount', address: ref.address, detail: e.message });
    }
  }
}
