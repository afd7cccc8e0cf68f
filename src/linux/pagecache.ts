/**
 * The page cache seen from the file side (fs/super.c, fs/inode.c,
 * include/linux/fs.h): every super_block on `super_blocks`, every inode on
 * its `s_inodes` list, and each inode's address_space (`i_mapping`): how
 * many pages it caches (`nrpages`) and, for extraction, which (the
 * `i_pages` xarray, index = page offset in the file, entries are struct
 * page pointers; value entries are swap/shadow entries, not in memory).
 * A cached page's bytes are read through the direct map: pfn = (page -
 * vmemmap_base) / sizeof(struct page). Walks are bounded as a whole.
 */
import { gva } from '../core/address.js';
import { FaultError } from '../core/errors.js';
import type { ObjValue } from '../profile/typed.js';
import type { AnomalySink } from './anomaly.js';
import type { Kernel } from './kernel.js';
import { readKernelString } from './kstring.js';
import { namespaceMounts } from './mounts.js';
import { PathResolver } from './fs-path.js';
import { hlistForEach, listForEach, listForEachEntry } from './walk/list.js';
import { isKernelPointer, WalkBudget } from './walk/common.js';
import { xaForEach } from './walk/xarray.js';

export const MAX_SUPER_BLOCKS = 4096;
/** Inodes visited over all super blocks in one run. */
export const MAX_INODES = 1 << 20;
/** Pages read when extracting one file (1 GiB). */
export const MAX_FILE_PAGES = 1 << 18;
const PAGE = 4096;

export interface CachedInode {
  readonly inode: bigint;
  readonly superBlock: bigint;
  /** file_system_type name ("tmpfs", "ext4"). */
  readonly fs: string;
  /** s_id ("tmpfs", "vda1"). */
  readonly device: string;
  readonly ino: bigint;
  readonly mode: number;
  readonly size: bigint;
  readonly nrpages: bigint;
  readonly mapping: bigint;
  /** Path through a mount of the file system when one mounts its root, else relative to the fs root; undefined when the inode has no dentry. */
  readonly path: string | undefined;
}

interface SuperInfo {
  readonly address: bigint;
  readonly fs: string;
  readonly device: string;
  /** `struct vfsmount *` mounting this file system's root, when the initial namespace has one. */
  readonly mnt: bigint | undefined;
}

function superInfo(k: Kernel, sb: ObjValue, mounts: ReadonlyMap<bigint, bigint>, anomalies: AnomalySink): SuperInfo {
  let fs = '?';
  const type = sb.ptr('s_type');
  if (isKernelPointer(type)) {
    try {
      const name = k.typed.obj('file_system_type', type).field('name').ptr();
      if (isKernelPointer(name & ~7n)) fs = readKernelString(k.typed.mem, name, 64).text;
    } catch (e) {
      if (!(e instanceof FaultError)) throw e;
      anomalies.add({ kind: 'fault', where: 'super_block.s_type', address: type, detail: e.message });
    }
  }
  return { address: sb.address, fs, device: sb.str('s_id'), mnt: mounts.get(sb.ptr('s_root')) };
}

/** Root dentry → vfsmount of the initial mount namespace's mounts (the first mount of each root). */
function rootMounts(k: Kernel, anomalies: AnomalySink): Map<bigint, bigint> {
  const out = new Map<bigint, bigint>();
  if (!k.hasSymbol('init_task')) return out;
  try {
    const nsproxy = k.typed.obj('task_struct', k.symbol('init_task')).field('nsproxy').ptr();
    if (!isKernelPointer(nsproxy)) return out;
    const ns = k.typed.obj('nsproxy', nsproxy).field('mnt_ns').ptr();
    if (!isKernelPointer(ns)) return out;
    for (const m of namespaceMounts(k, ns, anomalies)) {
      const vfs = m.member('mnt');
      const root = vfs.field('mnt_root').ptr();
      if (!out.has(root)) out.set(root, vfs.address);
    }
  } catch (e) {
    if (!(e instanceof FaultError)) throw e;
    anomalies.add({ kind: 'fault', where: 'init mount namespace', detail: e.message });
  }
  return out;
}

/**
 * Every inode of every super block that has pages in the page cache. Most inodes have none (sysfs, proc,
 * sockets: ~11k of them against a dozen cached files on a small guest), so an inode costs a view of its
 * bytes and its address_space's nrpages (inside the same view when i_mapping is the inode's own i_data,
 * as it is but for block devices and some filesystems); only an inode with pages is decoded further.
 */
export function* cachedInodes(k: Kernel, anomalies: AnomalySink): Generator<CachedInode> {
  const t = k.typed;
  const mounts = rootMounts(k, anomalies);
  const paths = new PathResolver(k, anomalies);
  const budget = new WalkBudget(MAX_INODES);
  const aliasOffset = BigInt(t.field('dentry', 'd_u.d_alias').offset);
  const ownData = t.has('inode', 'i_data') ? BigInt(t.field('inode', 'i_data').offset) : undefined;
  for (const sbRef of listForEachEntry(t, k.symbol('super_blocks'), 'super_block', 's_list', { anomalies, limit: MAX_SUPER_BLOCKS })) {
    let sb: ObjValue;
    try {
      sb = sbRef.read({ copy: true });
    } catch (e) {
      if (!(e instanceof FaultError)) throw e;
      anomalies.add({ kind: 'fault', where: 'super_block', address: sbRef.address, detail: e.message });
      continue;
    }
    let info: SuperInfo | undefined; // only for a super block with a cached inode
    for (const node of listForEach(t, sb.addrOf('s_inodes'), { anomalies, budget, where: 'inode.i_sb_list' })) {
      const ref = t.containerOf(node, 'inode', 'i_sb_list');
      let mapping: bigint;
      let nrpages: bigint;
      let ino: bigint;
      let mode: number;
      let size: bigint;
      let dentries: bigint;
      try {
        // A view, decoded before the next read (no copy of ~600 bytes per inode).
        const inode = ref.read();
        mapping = inode.ptr('i_mapping');
        if (!isKernelPointer(mapping)) {
          if (mapping !== 0n) anomalies.add({ kind: 'bad-pointer', where: 'inode.i_mapping', address: mapping, detail: `of inode at 0x${ref.address.toString(16)}` });
          continue;
        }
        nrpages = ownData !== undefined && mapping === BigInt.asUintN(64, ref.address + ownData) ? inode.int('i_data.nrpages') : t.obj('address_space', mapping).field('nrpages').int();
        if (nrpages === 0n) continue;
        ino = inode.int('i_ino');
        mode = inode.u16('i_mode');
        size = inode.s64('i_size');
        dentries = inode.addrOf('i_dentry');
      } catch (e) {
        if (!(e instanceof FaultError)) throw e;
        anomalies.add({ kind: 'fault', where: 'inode', address: ref.address, detail: e.message });
        continue;
      }
      info ??= superInfo(k, sb, mounts, anomalies);
      let path: string | undefined;
      // The first alias names the file (hard links have more); an unnamed inode has none.
      for (const alias of hlistForEach(t, dentries, { anomalies, limit: 1, where: 'inode.i_dentry' })) {
        const dentry = alias - aliasOffset;
        path = info.mnt !== undefined ? paths.dPath(info.mnt, dentry) : `${info.fs}:${paths.dentryName(dentry)}`;
        break;
      }
      yield { inode: ref.address, superBlock: info.address, fs: info.fs, device: info.device, ino, mode, size, nrpages, mapping, path };
    }
  }
}

/** Cached pages of an address_space, in file order: page index and the page's bytes. */
export function* cachedPages(k: Kernel, mapping: bigint, anomalies: AnomalySink, maxIndex: bigint): Generator<{ index: bigint; bytes: Uint8Array }> {
  const t = k.typed;
  const vmemmap = k.space.readU64(k.symbol('vmemmap_base'));
  const pageSize = BigInt(t.db.sizeOf(t.typeId('page')));
  const direct = k.directMapBase;
  let n = 0;
  for (const { index, entry } of xaForEach(t, t.obj('address_space', mapping).addrOf('i_pages'), { anomalies, where: 'address_space.i_pages' })) {
    if (index > maxIndex) break;
    if ((entry & 1n) === 1n) continue; // a value entry: swapped out or a shadow of an evicted page
    if (entry < vmemmap || (entry - vmemmap) % pageSize !== 0n) {
      anomalies.add({ kind: 'bad-pointer', where: 'address_space.i_pages', address: entry, detail: `entry at index ${index} is not a struct page` });
      continue;
    }
    if (++n > MAX_FILE_PAGES) {
      anomalies.add({ kind: 'limit', where: 'address_space.i_pages', address: mapping, detail: `stopped after ${MAX_FILE_PAGES} pages` });
      return;
    }
    const pa = ((entry - vmemmap) / pageSize) * BigInt(PAGE);
    try {
      yield { index, bytes: k.space.read(gva(direct + pa), PAGE).slice() };
    } catch (e) {
      if (!(e instanceof FaultError)) throw e;
      anomalies.add({ kind: 'fault', where: 'page cache page', address: entry, detail: e.message });
    }
  }
}
