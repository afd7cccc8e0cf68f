/**
 * Memory maps of a process (/proc/<pid>/maps): the VMAs of an mm_struct in
 * address order, their permissions, offsets, backing file (dev, inode, path)
 * and the names /proc gives anonymous ones ([heap], [stack], [vdso], [anon:x]).
 *
 * Since Linux kernel commit d4af56c5c7c6 ("mm: start tracking VMAs with
 * maple tree") (in v6.1) VMAs live in mm->mm_mt; before, in the sorted
 * mm->mmap list (vm_next/vm_prev), which commit 763ecb035029 ("mm: remove the
 * vma linked list") (in v6.1) removed. Chosen by presence.
 *
 * @example
 * // the per-mapping loop of maps, elfs and malfind:
 * for (const m of forEachMapping(kernel, anomalies, { pids: pidFilter(options.pid), paths: new PathResolver(kernel, anomalies) }))
 *   console.log(m.pid, m.entry.perms, m.entry.path, m.space()?.readU32(m.entry.start));
 */
import { taskKey, taskStartTimeNs } from './identity.js';
import { FaultError, ProfileError } from '../core/errors.js';
import type { AddressSpace } from '../arch/address-space.js';
import type { ObjValue } from '../profile/typed.js';
import type { AnomalySink } from './anomaly.js';
import type { PathResolver } from './fs-path.js';
import type { Kernel } from './kernel.js';
import type { Column } from './schema.js';
import { readObject, snapshotProcesses } from './tasks.js';
import { processSpace } from './user-memory.js';
import { DEFAULT_WALK_LIMIT, isKernelPointer, WalkBudget, WalkContext } from './walk/common.js';
import { mtForEach } from './walk/maple-tree.js';

export const VM_READ = 0x1n;
export const VM_WRITE = 0x2n;
export const VM_EXEC = 0x4n;
export const VM_SHARED = 0x8n;
export const VM_MAYSHARE = 0x80n;
export const VM_GROWSDOWN = 0x100n;

/** What forEachVma walks, for a plugin's `requires.anyOf`: the maple tree (6.1+) or the vm_next list. */
export const VMA_CONTAINERS: readonly (readonly [string, string])[] = [
  ['mm_struct', 'mm_mt'],
  ['mm_struct', 'mmap'],
];

/** Bound on VMAs per process (the kernel's default vm.max_map_count is 65530). */
export const MAX_VMAS = 1 << 17;

/** vm_area_struct.vm_flags (a const alias of __vm_flags in a union since v6.3; same offset). */
export function vmaFlags(vma: ObjValue): bigint {
  return vma.has('vm_flags') ? vma.int('vm_flags') : vma.int('__vm_flags');
}

/** 'r-xp' etc. as /proc/<pid>/maps prints them. */
export function vmaPerms(flags: bigint): string {
  return (
    (flags & VM_READ ? 'r' : '-') + (flags & VM_WRITE ? 'w' : '-') + (flags & VM_EXEC ? 'x' : '-') + (flags & VM_MAYSHARE ? 's' : 'p')
  );
}

/** A thread-group leader that owns a user address space. */
export interface ProcessMm {
  readonly task: ObjValue;
  readonly pid: number;
  readonly comm: string;
  /** `struct mm_struct` value (task->mm). */
  readonly mm: ObjValue;
}

/**
 * Thread-group leaders with an mm_struct, in task-list order, each mm read
 * once. Kernel threads (mm 0) are skipped silently; an unreadable mm is
 * recorded as an anomaly and its process skipped.
 * @param pids only these pids (from pidFilter); every process when undefined
 */
export function* forEachProcessMm(k: Kernel, anomalies: AnomalySink, pids?: ReadonlySet<number>): Generator<ProcessMm> {
  const { leaders } = snapshotProcesses(k, anomalies);
  for (const task of leaders) {
    const pid = task.s32('pid');
    if (pids && !pids.has(pid)) continue;
    const mmVa = task.ptr('mm');
    if (mmVa === 0n) continue;
    const mm = readObject(k, 'mm_struct', mmVa, anomalies, 'task_struct.mm');
    if (!mm) continue;
    yield { task, pid, comm: task.str('comm'), mm };
  }
}

/**
 * The VMAs of an mm in address order, each read once.
 * @param mm `struct mm_struct` value
 * @param budget shared by every mm of one run (hostile trees cannot multiply)
 */
export function* forEachVma(k: Kernel, mm: ObjValue, anomalies: AnomalySink, budget?: WalkBudget): Generator<ObjValue> {
  if (mm.has('mm_mt')) {
    let last = -1n;
    for (const { first, entry } of mtForEach(k.typed, mm.addrOf('mm_mt'), { anomalies, where: 'mm_struct.mm_mt', limit: MAX_VMAS, ...(budget ? { budget } : {}) })) {
      const vma = readObject(k, 'vm_area_struct', entry, anomalies, 'mm_struct.mm_mt');
      if (!vma) continue;
      const start = vma.u64('vm_start');
      if (start !== first || start <= last) {
        // The tree and the VMA disagree: a live guest changed it under us, or it was forged.
        anomalies.add({ kind: 'invalid', where: 'mm_struct.mm_mt', address: entry, detail: `vm_start 0x${start.toString(16)} at index 0x${first.toString(16)}` });
        if (start <= last) continue;
      }
      last = start;
      yield vma;
    }
    return;
  }
  // The sorted vm_next list (rb tree mm_rb indexes the same VMAs).
  const ctx = new WalkContext(k.typed, 'mm_struct.mmap', { anomalies, limit: Math.min(MAX_VMAS, DEFAULT_WALK_LIMIT), ...(budget ? { budget } : {}) });
  const seen = new Set<bigint>();
  let prev = 0n;
  let lastEnd = 0n;
  for (let va = mm.ptr('mmap'); va !== 0n; ) {
    if (!ctx.checkPointer(va, 'vm_next')) return;
    if (seen.has(va)) return ctx.anomaly('cycle', va, 'VMA list leads back to an earlier VMA');
    if (!ctx.step(va)) return;
    seen.add(va);
    const vma = readObject(k, 'vm_area_struct', va, anomalies, 'mm_struct.mmap');
    if (!vma) return;
    if (vma.ptr('vm_prev') !== prev) ctx.anomaly('broken-link', va, `vm_prev is not 0x${prev.toString(16)}`);
    const start = vma.u64('vm_start');
    if (start < lastEnd) ctx.anomaly('invalid', va, 'VMAs out of order');
    lastEnd = vma.u64('vm_end');
    yield vma;
    prev = va;
    va = vma.ptr('vm_next');
  }
}

/** One mapping of one process, as forEachMapping yields it. */
export interface Mapping extends ProcessMm {
  readonly vma: ObjValue;
  readonly entry: MapsEntry;
  /** The process's address space (built on first use, once per process); undefined (anomaly) when mm->pgd is unusable. */
  space(): AddressSpace | undefined;
}

export interface MappingOptions {
  /** Only these pids (from pidFilter); every process when undefined. */
  readonly pids?: ReadonlySet<number> | undefined;
  readonly paths: PathResolver;
  /** Shared by every mm of one run (hostile trees cannot multiply); one is made when omitted. */
  readonly budget?: WalkBudget;
  /**
   * Only the VMAs this accepts, by their flags and `struct file *` (0 for anonymous), asked before their
   * maps entry is built: a plugin that wants a few mappings (malfind) then resolves no other VMA's path.
   */
  readonly where?: (flags: bigint, file: bigint) => boolean;
}

/**
 * Every mapping of every process (thread-group leaders with an mm), in
 * task-list then address order, with its /proc/<pid>/maps facts: the one
 * per-mapping loop of maps, elfs and malfind.
 */
export function* forEachMapping(k: Kernel, anomalies: AnomalySink, opts: MappingOptions): Generator<Mapping> {
  const budget = opts.budget ?? new WalkBudget();
  for (const p of forEachProcessMm(k, anomalies, opts.pids)) {
    let space: AddressSpace | undefined | null = null;
    const lazySpace = (): AddressSpace | undefined => (space === null ? (space = processSpace(k, p.mm, anomalies)) : space);
    for (const vma of forEachVma(k, p.mm, anomalies, budget)) {
      if (opts.where && !opts.where(vmaFlags(vma), vma.ptr('vm_file'))) continue;
      yield { ...p, vma, entry: mapsEntry(k, p.mm, vma, opts.paths, anomalies), space: lazySpace };
    }
  }
}

/** What every per-mapping row carries (maps, elfs, malfind). */
export interface MappingRow {
  /** The process's task_struct and start time: its identity across passes (not columns). */
  task: bigint;
  startTime: bigint;
  pid: number;
  comm: string;
  start: bigint;
  end: bigint;
  perms: string;
  path: string;
}

/** The leading columns of every per-mapping plugin. */
export const MAPPING_COLUMNS: readonly Column<MappingRow>[] = [
  { key: 'pid', kind: 'int' },
  { key: 'comm', kind: 'str' },
  { key: 'start', kind: 'hex' },
  { key: 'end', kind: 'hex' },
  { key: 'perms', kind: 'str' },
];

/** A per-mapping row's stable key: the process (pid, task, start time: a reused pid is another key) and a start address. */
export const mappingKey = (r: MappingRow): string => `${taskKey(r.pid, r.task, r.startTime)}:${r.start.toString(16)}`;

/** The identity fields of a mapping's rows. */
export function mappingIdentity(m: Pick<Mapping, 'task'>): Pick<MappingRow, 'task' | 'startTime'> {
  return { task: m.task.address, startTime: taskStartTimeNs(m.task) };
}

export interface MapsEntry {
  readonly vma: bigint;
  readonly start: bigint;
  readonly end: bigint;
  readonly flags: bigint;
  readonly perms: string;
  /** File offset in bytes (0 for anonymous mappings, as /proc prints). */
  readonly offset: bigint;
  /** 'major:minor' in hex, as /proc prints ('00:00' for anonymous). */
  readonly dev: string;
  readonly inode: number;
  /** Path, pseudo name ('[heap]', '[stack]', '[vdso]', '[anon:x]') or ''. */
  readonly path: string;
  /** `struct file *` (0 for anonymous). */
  readonly file: bigint;
}

/** One /proc/<pid>/maps line of a VMA. */
export function mapsEntry(k: Kernel, mm: ObjValue | undefined, vma: ObjValue, paths: PathResolver, anomalies: AnomalySink): MapsEntry {
  const start = vma.u64('vm_start');
  const end = vma.u64('vm_end');
  const flags = vmaFlags(vma);
  const file = vma.ptr('vm_file');
  let offset = 0n;
  let dev = '00:00';
  let inode = 0;
  let path = '';
  if (file !== 0n) {
    offset = vma.u64('vm_pgoff') << 12n;
    path = paths.filePath(file);
    const id = fileIdentity(k, file, anomalies);
    if (id) ({ dev, inode } = id);
  } else {
    path = specialName(k, vma, anomalies) ?? '';
    if (!path && mm) {
      if (start <= mm.u64('brk') && end >= mm.u64('start_brk')) path = '[heap]';
      else if (start <= mm.u64('start_stack') && end >= mm.u64('start_stack')) path = '[stack]';
    }
    if (!path && vma.has('anon_name')) {
      const an = vma.ptr('anon_name');
      if (an !== 0n && isKernelPointer(an)) {
        try {
          const off = BigInt(k.types.offsetOf('anon_vma_name', 'name'));
          const b = k.typed.mem.read(an + off, 80);
          const z = b.indexOf(0);
          path = `[anon:${Buffer.from(b.buffer, b.byteOffset, z < 0 ? b.length : z).toString('utf8')}]`;
        } catch (e) {
          if (!(e instanceof FaultError) && !(e instanceof ProfileError)) throw e;
        }
      }
    }
  }
  return { vma: vma.address, start, end, flags, perms: vmaPerms(flags), offset, dev, inode, path, file };
}

/** inode->i_sb->s_dev and inode->i_ino of a file. */
export function fileIdentity(k: Kernel, file: bigint, anomalies: AnomalySink): { dev: string; inode: number; inodeVa: bigint } | undefined {
  try {
    const ino = k.typed.obj('file', file).field('f_inode').ptr();
    if (!isKernelPointer(ino)) return undefined;
    const i = k.typed.obj('inode', ino).read();
    const sb = i.ptr('i_sb');
    const sdev = isKernelPointer(sb) ? k.typed.obj('super_block', sb).field('s_dev').u32() : 0;
    const hex2 = (n: number): string => n.toString(16).padStart(2, '0');
    return { dev: `${hex2(sdev >>> 20)}:${hex2(sdev & 0xfffff)}`, inode: Number(i.int('i_ino')), inodeVa: ino };
  } catch (e) {
    if (!(e instanceof FaultError)) throw e;
    anomalies.add({ kind: 'fault', where: 'file.f_inode', address: file, detail: e.message });
    return undefined;
  }
}

/**
 * vma->vm_ops->name(): special mappings ([vdso], [vvar]) name themselves
 * through special_mapping_name(), which returns vm_special_mapping.name
 * from vm_private_data; the vsyscall gate through gate_vma_name().
 */
function specialName(k: Kernel, vma: ObjValue, anomalies: AnomalySink): string | undefined {
  const ops = vma.ptr('vm_ops');
  if (ops === 0n || !isKernelPointer(ops)) return undefined;
  try {
    const fn = k.typed.obj('vm_operations_struct', ops).field('name').ptr();
    if (fn === 0n) return undefined;
    const fname = k.symbols.nameOf(fn, 0n)?.name;
    if (fname === 'gate_vma_name') return '[vsyscall]';
    if (fname !== 'special_mapping_name') return undefined;
    const sm = vma.ptr('vm_private_data');
    if (!isKernelPointer(sm)) return undefined;
    return k.typed.obj('vm_special_mapping', sm).read().cstr('name', 64) ?? undefined;
  } catch (e) {
    if (!(e instanceof FaultError)) throw e;
    anomalies.add({ kind: 'fault', where: 'vm_area_struct.vm_ops', address: ops, detail: e.message });
    return undefined;
  }
}

/**
 * The x86-64 vsyscall page /proc appends to every process's maps
 * (get_gate_vma(): the static gate_vma, unless vsyscall=none).
 */
export function gateVma(k: Kernel, anomalies: AnomalySink): ObjValue | undefined {
  if (!k.hasSymbol('gate_vma')) return undefined;
  if (k.hasSymbol('vsyscall_mode')) {
    try {
      // static enum { EMULATE, XONLY, NONE } vsyscall_mode
      if (k.space.readU32(k.symbol('vsyscall_mode')) === 2) return undefined;
    } catch (e) {
      if (!(e instanceof FaultError)) throw e;
    }
  }
  return readObject(k, 'vm_area_struct', k.symbol('gate_vma'), anomalies, 'gate_vma');
}
