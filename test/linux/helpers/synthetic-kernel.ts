/**
 * A synthetic kernel for object-model and plugin tests: hand-laid
 * task_struct / cred / signal_struct / mm_struct / vm_area_struct types in
 * two variants (R8: 'new' = 6.x names: __state, start_boottime,
 * signal->thread_head, mm_mt; 'old' = older names: state, real_start_time,
 * thread_group, the mmap list), processes written into FakeMemory, and a
 * Kernel over it (the fake memory stands in for the kernel address space).
 */
import type { AddressSpace, VirtualReadFailure, VirtualReadOp } from '../../../src/arch/address-space.js';
import { FaultError } from '../../../src/core/errors.js';
import { Kernel, type KernelProfile } from '../../../src/linux/kernel.js';
import type { PhysicalMemory } from '../../../src/memory/types.js';
import { SymbolTableBuilder } from '../../../src/profile/symbols.js';
import { enode, LEAF_64, mapleTypes, writeNode } from './maple.js';
import { FakeMemory, KBASE, TypeBuilder } from './synthetic.js';
import { gva } from '../../../src/core/address.js';

export type Variant = 'new' | 'old';

/** Field offsets used by the writers below (same in both variants; only names differ). */
export const T = {
  size: 0x100,
  state: 0x00,
  flags: 0x04,
  tasks: 0x08,
  pid: 0x18,
  tgid: 0x1c,
  realParent: 0x20,
  parent: 0x28,
  cred: 0x30,
  comm: 0x38,
  exitState: 0x48,
  start: 0x50,
  mm: 0x58,
  signal: 0x60,
  thread: 0x68, // thread_node (new) or thread_group (old)
  children: 0x78,
  sibling: 0x88,
} as const;
export const C = { size: 0x60, uid: 0x04, capEff: 0x38, userNs: 0x50 } as const;
export const MM = { size: 0x100, mt: 0x00, mmap: 0x00, pgd: 0x18, startBrk: 0x20, brk: 0x28, startStack: 0x30, argStart: 0x38, argEnd: 0x40, envStart: 0x48, envEnd: 0x50 } as const;
export const VMA = { size: 0x80, start: 0x00, end: 0x08, next: 0x10, prev: 0x18, flags: 0x20, pgoff: 0x28, file: 0x30, ops: 0x38, priv: 0x40 } as const;

/** Tasks, creds, signals and mms live here. */
export const TASKS = KBASE + 0x10_0000n;
export const INIT_TASK = KBASE + 0x0f_0000n;

export function buildTypes(variant: Variant): TypeBuilder {
  const b = new TypeBuilder();
  const { listHead } = b.listTypes();
  const kuid = b.typedef('kuid_t', b.struct('', 4, [['val', b.uint, 0]]));
  const kgid = b.typedef('kgid_t', b.struct('', 4, [['val', b.uint, 0]]));
  const capT = b.typedef('kernel_cap_t', b.struct('', 8, [['val', b.u64, 0]]));
  const userNs = b.declare('user_namespace');
  b.define(userNs, 8, []);
  b.struct('cred', C.size, [
    ['usage', b.int_, 0],
    ['uid', kuid, 0x04],
    ['gid', kgid, 0x08],
    ['suid', kuid, 0x0c],
    ['sgid', kgid, 0x10],
    ['euid', kuid, 0x14],
    ['egid', kgid, 0x18],
    ['fsuid', kuid, 0x1c],
    ['fsgid', kgid, 0x20],
    ['cap_inheritable', capT, 0x28],
    ['cap_permitted', capT, 0x30],
    ['cap_effective', capT, 0x38],
    ['cap_bset', capT, 0x40],
    ['cap_ambient', capT, 0x48],
    ['user_ns', b.ptr(userNs), 0x50],
  ]);
  const task = b.declare('task_struct');
  const signal = b.struct('signal_struct', 0x40, [['nr_threads', b.int_, 0], ...(variant === 'new' ? ([['thread_head', listHead, 8]] as const) : [])]);
  mapleTypes(b);
  const vma = b.declare('vm_area_struct');
  const mm = b.struct('mm_struct', MM.size, [
    variant === 'new' ? ['mm_mt', b.store.lookup('maple_tree')[0]!, MM.mt] : ['mmap', b.ptr(vma), MM.mmap],
    ['pgd', b.voidp, MM.pgd],
    ['start_brk', b.ulong, MM.startBrk],
    ['brk', b.ulong, MM.brk],
    ['start_stack', b.ulong, MM.startStack],
    ['arg_start', b.ulong, MM.argStart],
    ['arg_end', b.ulong, MM.argEnd],
    ['env_start', b.ulong, MM.envStart],
    ['env_end', b.ulong, MM.envEnd],
  ]);
  b.define(vma, VMA.size, [
    ['vm_start', b.ulong, VMA.start],
    ['vm_end', b.ulong, VMA.end],
    ...(variant === 'old' ? ([['vm_next', b.ptr(vma), VMA.next], ['vm_prev', b.ptr(vma), VMA.prev]] as const) : []),
    ['vm_flags', b.ulong, VMA.flags],
    ['vm_pgoff', b.ulong, VMA.pgoff],
    ['vm_file', b.voidp, VMA.file],
    ['vm_ops', b.voidp, VMA.ops],
    ['vm_private_data', b.voidp, VMA.priv],
  ]);
  b.define(task, T.size, [
    [variant === 'new' ? '__state' : 'state', b.uint, T.state],
    ['flags', b.uint, T.flags],
    ['tasks', listHead, T.tasks],
    ['pid', b.int_, T.pid],
    ['tgid', b.int_, T.tgid],
    ['real_parent', b.ptr(task), T.realParent],
    ['parent', b.ptr(task), T.parent],
    ['cred', b.ptr(b.store.lookup('cred')[0]!), T.cred],
    ['comm', b.array(b.char, 16), T.comm],
    ['exit_state', b.int_, T.exitState],
    [variant === 'new' ? 'start_boottime' : 'real_start_time', b.u64, T.start],
    ['mm', b.ptr(mm), T.mm],
    ['signal', b.ptr(signal), T.signal],
    [variant === 'new' ? 'thread_node' : 'thread_group', listHead, T.thread],
    ['children', listHead, T.children],
    ['sibling', listHead, T.sibling],
  ]);
  return b;
}

/** FakeMemory as the kernel address space (typed reads plus the scalar helpers Kernel users call). */
export class FakeSpace extends FakeMemory {
  directMapBase: bigint | undefined = undefined;
  readU32(va: bigint): number {
    const b = this.read(va, 4);
    return new DataView(b.buffer, b.byteOffset, 4).getUint32(0, true);
  }
  readU64(va: bigint): bigint {
    const b = this.read(va, 8);
    return new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true);
  }
  /** One flat space stands in for the kernel's and every process's page tables. */
  tryTranslate(_va: bigint): { pa: number } {
    return { pa: 0 };
  }
  withDtb(): this {
    return this;
  }
  /** AddressSpace.mappings: the mapped 4 KiB pages of [start, end) in VA order, the flat space's VA as physical address. */
  *mappings(o: { start?: bigint; end?: bigint; limit?: number } = {}): Generator<{ va: bigint; pa: number; size: number; level: number; flags: number; nx: boolean }> {
    const start = o.start ?? 0n;
    const end = o.end ?? 1n << 64n;
    const vas = [...this.pages.keys()].filter((va) => va >= (start & ~0xfffn) && va < end).sort((a, b) => (a < b ? -1 : 1));
    for (const va of vas.slice(0, o.limit ?? vas.length)) yield { va, pa: Number(va & 0xf_ffff_ffff_ffffn), size: 4096, level: 1, flags: 1, nx: false };
  }
  /** AddressSpace.readv semantics: unreadable ranges are zero-filled and reported. */
  readv(ops: VirtualReadOp[]): VirtualReadFailure[] {
    const failures: VirtualReadFailure[] = [];
    for (const op of ops) {
      const dst = (op.dst ??= new Uint8Array(op.len));
      for (let done = 0; done < op.len; ) {
        const va = op.va + BigInt(done);
        const n = Math.min(4096 - Number(va & 0xfffn), op.len - done);
        try {
          dst.set(this.read(va, n), done);
        } catch (e) {
          if (!(e instanceof FaultError)) throw e;
          dst.fill(0, done, done + n);
          failures.push({ va: gva(va), len: n, reason: e.message });
        }
        done += n;
      }
    }
    return failures;
  }
}

export interface SynthProcess {
  pid: number;
  comm: string;
  /** Index of the parent in the process array, -1 for init_task. */
  parent: number;
  uid?: number;
  state?: number;
  flags?: number;
  start?: bigint;
  /** Extra thread ids (threads share the leader's signal). */
  threads?: number[];
}

export class SyntheticKernel {
  readonly mem = new FakeSpace();
  readonly b: TypeBuilder;
  readonly kernel: Kernel;
  /** task_struct address of process i (leaders) and thread j of process i. */
  readonly taskAddr: bigint[] = [];
  readonly threadAddr = new Map<number, bigint[]>();

  constructor(
    readonly variant: Variant,
    readonly procs: readonly SynthProcess[],
  ) {
    this.b = buildTypes(variant);
    const symbols = new SymbolTableBuilder().add('init_task', INIT_TASK, 'D').build('synthetic');
    const profile: KernelProfile = {
      release: 'synthetic',
      banner: 'Linux version synthetic',
      kaslr: { virtualShift: 0n, physBase: 0n },
      pagingLevels: 4,
      symbols,
      types: this.b.db(),
      sources: { types: 'btf:synthetic' },
    };
    this.kernel = new Kernel(this.mem as unknown as PhysicalMemory, this.mem as unknown as AddressSpace, profile);
    this.write();
  }

  private slot = 0;
  private alloc(size: number): bigint {
    const va = TASKS + BigInt(this.slot++) * 0x400n;
    this.mem.map(va, Math.max(size, 0x400));
    return va;
  }

  private write(): void {
    const m = this.mem;
    m.map(INIT_TASK, T.size);
    this.writeTask(INIT_TASK, { pid: 0, comm: 'swapper/0', parent: -1 }, INIT_TASK, 0n, 0);
    // Leaders first (so parents exist), then link.
    for (const p of this.procs) this.taskAddr.push(this.alloc(T.size));
    const order = [INIT_TASK, ...this.taskAddr];
    for (let i = 0; i < order.length; i++) {
      const here = order[i]! + BigInt(T.tasks);
      m.w64(here, order[(i + 1) % order.length]! + BigInt(T.tasks));
      m.w64(here + 8n, order[(i - 1 + order.length) % order.length]! + BigInt(T.tasks));
    }
    this.procs.forEach((p, i) => {
      const va = this.taskAddr[i]!;
      const parent = p.parent < 0 ? INIT_TASK : this.taskAddr[p.parent]!;
      const cred = this.alloc(C.size);
      m.w32(cred + BigInt(C.uid), p.uid ?? 0);
      m.w32(cred + 0x14n, p.uid ?? 0); // euid
      m.w64(cred + BigInt(C.capEff), p.uid ? 0n : 0x1ff_ffff_ffffn);
      const signal = this.alloc(0x40);
      const threads = [va, ...(p.threads ?? []).map(() => this.alloc(T.size))];
      this.threadAddr.set(i, threads);
      m.w32(signal, threads.length);
      threads.forEach((t, j) => this.writeTask(t, { ...p, pid: j === 0 ? p.pid : p.threads![j - 1]! }, parent, cred, p.pid, signal));
      // thread list: head in signal (new) or a ring through the threads (old)
      const ring = this.variant === 'new' ? [signal + 8n, ...threads.map((t) => t + BigInt(T.thread))] : threads.map((t) => t + BigInt(T.thread));
      ring.forEach((node, j) => {
        m.w64(node, ring[(j + 1) % ring.length]!);
        m.w64(node + 8n, ring[(j - 1 + ring.length) % ring.length]!);
      });
    });
  }

  private writeTask(va: bigint, p: SynthProcess, parent: bigint, cred: bigint, tgid: number, signal = 0n): void {
    const m = this.mem;
    m.w32(va + BigInt(T.state), p.state ?? 1);
    m.w32(va + BigInt(T.flags), p.flags ?? 0);
    m.w32(va + BigInt(T.pid), p.pid);
    m.w32(va + BigInt(T.tgid), tgid);
    m.w64(va + BigInt(T.realParent), parent);
    m.w64(va + BigInt(T.parent), parent);
    m.w64(va + BigInt(T.cred), cred);
    m.write(va + BigInt(T.comm), Buffer.from(p.comm.slice(0, 15).padEnd(16, '\0'), 'latin1'));
    m.w64(va + BigInt(T.start), p.start ?? BigInt(p.pid) * 1_000_000_000n);
    m.w64(va + BigInt(T.signal), signal);
    for (const l of [T.children, T.sibling]) {
      m.w64(va + BigInt(l), va + BigInt(l));
      m.w64(va + BigInt(l) + 8n, va + BigInt(l));
    }
  }
}

export interface SynthVma {
  start: bigint;
  end: bigint;
  flags: bigint;
  pgoff?: bigint;
}

/**
 * Gives process `i` an mm with these VMAs (sorted by start): the maple tree
 * (one leaf root, gaps as NULL slots) in the new layout, the vm_next list in
 * the old. Returns the mm and VMA addresses.
 */
export function addMm(s: SyntheticKernel, i: number, vmas: readonly SynthVma[], extra: Partial<Record<'startBrk' | 'brk' | 'startStack' | 'argStart' | 'argEnd' | 'envStart' | 'envEnd', bigint>> = {}): { mm: bigint; vmas: bigint[] } {
  const m = s.mem;
  const mm = TASKS + 0x80_0000n + BigInt(i) * 0x1_0000n;
  m.map(mm, 0x1_0000);
  for (const t of s.threadAddr.get(i)!) m.w64(t + BigInt(T.mm), mm);
  const addrs = vmas.map((_, j) => mm + 0x1000n + BigInt(j) * 0x100n);
  vmas.forEach((v, j) => {
    const a = addrs[j]!;
    m.w64(a + BigInt(VMA.start), v.start);
    m.w64(a + BigInt(VMA.end), v.end);
    m.w64(a + BigInt(VMA.flags), v.flags);
    m.w64(a + BigInt(VMA.pgoff), v.pgoff ?? 0n);
    if (s.variant === 'old') {
      m.w64(a + BigInt(VMA.next), addrs[j + 1] ?? 0n);
      m.w64(a + BigInt(VMA.prev), addrs[j - 1] ?? 0n);
    }
  });
  if (s.variant === 'old') m.w64(mm + BigInt(MM.mmap), addrs[0] ?? 0n);
  else {
    const slots: [bigint, bigint][] = [];
    let at = 0n;
    vmas.forEach((v, j) => {
      if (v.start > at) slots.push([v.start - 1n, 0n]);
      slots.push([v.end - 1n, addrs[j]!]);
      at = v.end;
    });
    slots.push([(1n << 64n) - 1n, 0n]);
    const leaf = mm + 0x8000n;
    writeNode(m, leaf, LEAF_64, (mm + BigInt(MM.mt)) | 1n, slots);
    m.w64(mm + BigInt(MM.mt) + 8n, enode(leaf, LEAF_64) | 2n);
  }
  for (const [k, v] of Object.entries(extra)) m.w64(mm + BigInt(MM[k as keyof typeof MM]), v);
  return { mm, vmas: addrs };
}
