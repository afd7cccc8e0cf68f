/**
 * A tiny live guest for monitor unit tests: flat RAM (guest-physical 0…size) mapped zero-copy, a direct map
 * at BASE (kernel VA = BASE + PA), task_struct/cred/signal layouts from the synthetic kernel's types, and
 * helpers that fork, exit, exec, unlink and re-cred tasks the way the kernel writes them — so the watch set
 * and the watches see real memory changes between ticks.
 */
import { AnomalySink } from '../../../src/linux/anomaly.js';
import { Kernel, type KernelProfile } from '../../../src/linux/kernel.js';
import type { AddressSpace } from '../../../src/arch/address-space.js';
import type { PhysicalMemory, ReadOp } from '../../../src/memory/types.js';
import { SymbolTableBuilder } from '../../../src/profile/symbols.js';
import type { EventDraft } from '../../../src/monitor/events.js';
import { GuestView } from '../../../src/monitor/guest-view.js';
import { WatchSet } from '../../../src/monitor/watch-set.js';
import type { WatchContext } from '../../../src/monitor/watcher.js';
import type { Pass } from '../../../src/linux/pass.js';
import { buildTypes, C, T } from '../../linux/helpers/synthetic-kernel.js';
import { gpa } from '../../../src/core/address.js';

export const BASE = 0xffff_8880_0000_0000n;
const RAM = 4 << 20;
const INIT_PA = 0x1000;
const FORKS_PA = 0x2000;
const NR_THREADS_PA = 0x2008;

export class FakeGuest {
  readonly ram = new Uint8Array(RAM);
  private readonly dv = new DataView(this.ram.buffer);
  readonly kernel: Kernel;
  private next = 0x10_0000;
  private forks = 0;
  private gen = 0;
  /** Guest-physical ranges [start, end) that reads fail on (a page that went away); copying sources only. */
  readonly holes: Array<[number, number]> = [];
  /** Runs before every read of a copying source: a guest that changes memory while it is being read. */
  onRead: (() => void) | undefined;

  /**
   * `extra`: more symbols, by guest-physical address (e.g. a global string at 0x3000). `zeroCopy: false`
   * makes the source copy through readv (as live read does), so `holes` and `onRead` apply.
   */
  constructor(extra: Readonly<Record<string, number>> = {}, options: { zeroCopy?: boolean } = {}) {
    const zeroCopy = options.zeroCopy ?? true;
    const b = buildTypes('new');
    const builder = new SymbolTableBuilder();
    for (const [name, pa] of Object.entries(extra)) builder.add(name, BASE + BigInt(pa), 'D');
    const symbols = builder
      .add('init_task', BASE + BigInt(INIT_PA), 'D')
      .add('total_forks', BASE + BigInt(FORKS_PA), 'D')
      .add('nr_threads', BASE + BigInt(NR_THREADS_PA), 'D')
      .build('fake');
    const profile: KernelProfile = {
      release: 'fake',
      banner: 'Linux version fake',
      kaslr: { virtualShift: 0n, physBase: 0n },
      pagingLevels: 4,
      symbols,
      types: b.db(),
      sources: {},
    };
    const ram = this.ram;
    const self = this;
    const memory: PhysicalMemory = {
      technique: { class: zeroCopy ? 'live-map' : 'live-read', name: 'fake', live: true, haltsGuest: false, zeroCopy },
      target: 'fake',
      size: RAM,
      ranges: () => [{ start: gpa(0), end: gpa(RAM) }],
      get generation() {
        return self.gen;
      },
      readv(ops: ReadOp[]) {
        self.onRead?.();
        const failures = [];
        for (const op of ops) {
          op.dst ??= new Uint8Array(op.len);
          if (op.addr < 0 || op.addr + op.len > RAM) failures.push({ addr: op.addr, len: op.len, reason: 'outside RAM' });
          else if (self.holes.some(([a, b]) => op.addr < b && op.addr + op.len > a)) failures.push({ addr: op.addr, len: op.len, reason: 'not mapped' });
          else op.dst.set(ram.subarray(op.addr, op.addr + op.len));
        }
        return failures;
      },
      ...(zeroCopy ? { mapped: () => [{ start: 0, bytes: ram }] } : {}),
      refresh: async () => {
        self.gen++;
      },
      close: async () => undefined,
    };
    const space = {
      directMapBase: BASE,
      tryTranslate: (va: bigint) => (va >= BASE && va < BASE + BigInt(RAM) ? { pa: Number(va - BASE) } : undefined),
      readU64: (va: bigint) => this.dv.getBigUint64(Number(va - BASE), true),
      flush: () => undefined,
    } as unknown as AddressSpace;
    this.kernel = new Kernel(memory, space, profile);
    // init_task: pid 0, an empty task list.
    this.writeTask(INIT_PA, 0, 0, 'swapper/0', INIT_PA, 0);
    this.setLinks(INIT_PA, INIT_PA, INIT_PA);
  }

  private u64(pa: number, v: bigint | number): void {
    this.dv.setBigUint64(pa, BigInt(v), true);
  }
  private u32(pa: number, v: number): void {
    this.dv.setUint32(pa, v >>> 0, true);
  }
  private va(pa: number): bigint {
    return BASE + BigInt(pa);
  }
  private alloc(size: number): number {
    const pa = this.next;
    this.next += Math.ceil(size / 0x400) * 0x400;
    return pa;
  }

  private setLinks(taskPa: number, nextTaskPa: number, prevTaskPa: number): void {
    this.u64(taskPa + T.tasks, this.va(nextTaskPa + T.tasks));
    this.u64(taskPa + T.tasks + 8, this.va(prevTaskPa + T.tasks));
  }

  private writeTask(pa: number, pid: number, tgid: number, comm: string, parentPa: number, credPa: number, signalPa = 0): void {
    this.u32(pa + T.pid, pid);
    this.u32(pa + T.tgid, tgid);
    this.u64(pa + T.realParent, this.va(parentPa));
    this.u64(pa + T.cred, credPa ? this.va(credPa) : 0);
    this.comm(pa, comm);
    this.u64(pa + T.start, BigInt(pid) * 1_000_000n + 1n);
    this.u64(pa + T.signal, signalPa ? this.va(signalPa) : 0);
  }

  comm(taskPa: number, comm: string): void {
    this.ram.fill(0, taskPa + T.comm, taskPa + T.comm + 16);
    this.ram.set(Buffer.from(comm.slice(0, 15), 'latin1'), taskPa + T.comm);
  }

  cred(uid: number): number {
    const pa = this.alloc(C.size);
    for (const off of [0x04, 0x08, 0x0c, 0x10, 0x14, 0x18, 0x1c, 0x20]) this.u32(pa + off, uid);
    this.u64(pa + C.capEff, uid === 0 ? 0x1ff_ffff_ffffn : 0n);
    this.u64(pa + 0x30, uid === 0 ? 0x1ff_ffff_ffffn : 0n);
    return pa;
  }

  /** fork(): a new process appended at the tail of the task list; total_forks and nr_threads move. */
  fork(pid: number, comm: string, uid = 0, parentPa = INIT_PA): number {
    const pa = this.alloc(T.size);
    const signal = this.alloc(0x40);
    this.writeTask(pa, pid, pid, comm, parentPa, this.cred(uid), signal);
    // signal->thread_head holds just the leader
    this.u64(signal + 8, this.va(pa + T.thread));
    this.u64(signal + 16, this.va(pa + T.thread));
    this.u64(pa + T.thread, this.va(signal + 8));
    this.u64(pa + T.thread + 8, this.va(signal + 8));
    const tail = Number(this.dv.getBigUint64(INIT_PA + T.tasks + 8, true) - BASE) - T.tasks;
    this.setLinks(pa, INIT_PA, tail);
    this.u64(tail + T.tasks, this.va(pa + T.tasks));
    this.u64(INIT_PA + T.tasks + 8, this.va(pa + T.tasks));
    this.countFork(1);
    this.u32(NR_THREADS_PA, this.dv.getUint32(NR_THREADS_PA, true) + 1);
    return pa;
  }

  /** Forks the kernel counted but that no list holds any more (a short-lived process). */
  countFork(n: number): void {
    this.forks += n;
    this.u64(FORKS_PA, this.forks);
  }

  /** Unlinks a task from the task list; `dead` marks it exited (EXIT_DEAD), else it stays alive (hidden). */
  unlink(pa: number, dead: boolean): void {
    const next = Number(this.dv.getBigUint64(pa + T.tasks, true) - BASE) - T.tasks;
    const prev = Number(this.dv.getBigUint64(pa + T.tasks + 8, true) - BASE) - T.tasks;
    this.u64(prev + T.tasks, this.va(next + T.tasks));
    this.u64(next + T.tasks + 8, this.va(prev + T.tasks));
    if (dead) {
      this.u32(pa + T.exitState, 0x10);
      this.u32(NR_THREADS_PA, this.dv.getUint32(NR_THREADS_PA, true) - 1);
    }
  }

  /** Breaks a node's back link (what a reader sees while the kernel is half-way through a list update). */
  tearBackLink(pa: number): void {
    this.u64(pa + T.tasks + 8, this.va(0x3000));
  }

  /** Points a task's back link at another task (e.g. to heal a torn one). */
  setPrev(taskPa: number, prevTaskPa: number): void {
    this.u64(taskPa + T.tasks + 8, this.va(prevTaskPa + T.tasks));
  }

  /** Writes a raw next pointer (a cycle, or garbage). */
  setNextRaw(taskPa: number, value: bigint): void {
    this.u64(taskPa + T.tasks, value);
  }

  /** The list node address of a task, as the kernel stores it in a neighbour's next pointer. */
  node(taskPa: number): bigint {
    return this.va(taskPa + T.tasks);
  }

  /** clone(CLONE_THREAD): a thread of `leaderPa`'s process, at the tail of its signal->thread_head list. */
  thread(leaderPa: number, tid: number, comm: string): number {
    const pa = this.alloc(T.size);
    const signal = Number(this.dv.getBigUint64(leaderPa + T.signal, true) - BASE);
    const tgid = this.dv.getInt32(leaderPa + T.tgid, true);
    const parent = Number(this.dv.getBigUint64(leaderPa + T.realParent, true) - BASE);
    this.writeTask(pa, tid, tgid, comm, parent, this.cred(0), signal);
    const head = signal + 8;
    const tail = Number(this.dv.getBigUint64(head + 8, true) - BASE);
    this.u64(pa + T.thread, this.va(head));
    this.u64(pa + T.thread + 8, this.va(tail));
    this.u64(tail, this.va(pa + T.thread));
    this.u64(head + 8, this.va(pa + T.thread));
    this.u32(NR_THREADS_PA, this.dv.getUint32(NR_THREADS_PA, true) + 1);
    return pa;
  }

  /** Writes a raw next pointer into a task's thread node (a cycle, or garbage). */
  setThreadNextRaw(taskPa: number, value: bigint): void {
    this.u64(taskPa + T.thread, value);
  }

  /** The thread node address of a task, as the kernel stores it in a neighbour's next pointer. */
  threadNode(taskPa: number): bigint {
    return this.va(taskPa + T.thread);
  }

  setCred(taskPa: number, uid: number): void {
    this.u64(taskPa + T.cred, this.va(this.cred(uid)));
  }

  setMm(taskPa: number, mmPa: number): void {
    this.u64(taskPa + T.mm, this.va(mmPa));
  }

  /** A watch context over this guest, collecting the events drafted. */
  context(events: EventDraft[], incremental = true): WatchContext & { anomalies: AnomalySink } {
    const view = new GuestView(this.kernel);
    const anomalies = new AnomalySink();
    return {
      kernel: this.kernel,
      view,
      watchSet: new WatchSet(view),
      pass: { anomalies } as unknown as Pass,
      anomalies,
      window: { from: 0, to: 1 },
      incremental,
      emit: (d) => events.push(d),
    };
  }
}
