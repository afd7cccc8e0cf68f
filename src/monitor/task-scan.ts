/**
 * The monitor's task walk: every task (process and thread) with the facts events need, read field by field
 * through a plan compiled once from the BTF layout, from zero-copy views of guest RAM when the source maps
 * it. A general typed walk (linux/tasks.ts) snapshots whole task_structs (~9 KiB each); at 1 kHz the monitor
 * reads only the ~60 bytes it compares. Bounded and cycle-checked like every walk: a torn or hostile list
 * yields a partial result flagged `complete: false`, never a hang.
 *
 * Layout choices by presence (R8): `__state` since 2f064a59a11f (v5.14), `state` before; start time from
 * `start_boottime` (v5.5, cf25e24db61c), `real_start_time` before; threads through signal->thread_head /
 * task->thread_node (v3.14, 0c740d0afc3b), else task->thread_group (removed in v6.7, 8e1f385104ac).
 */
import type { AnomalySink } from '../linux/anomaly.js';
import type { Kernel } from '../linux/kernel.js';
import { PF_KTHREAD } from '../linux/tasks.js';
import type { GuestView } from './guest-view.js';

/** Bounds: a hostile list cannot make a walk longer than this. */
export const MAX_TASKS = 32_768;
export const MAX_THREADS_PER_PROCESS = 8_192;

export interface TaskFacts {
  readonly task: bigint;
  readonly pid: number;
  readonly tgid: number;
  /** tgid of real_parent (0 for the swapper's children). */
  ppid: number;
  readonly comm: string;
  readonly flags: number;
  readonly kthread: boolean;
  readonly startNs: bigint;
  readonly mm: bigint;
  readonly cred: bigint;
  readonly realParent: bigint;
  readonly exitState: number;
  readonly leader: boolean;
}

export interface CredFacts {
  readonly uid: number;
  readonly gid: number;
  readonly euid: number;
  readonly egid: number;
  readonly suid: number;
  readonly fsuid: number;
  readonly capEffective: bigint;
  readonly capPermitted: bigint;
}

export interface TaskScan {
  readonly tasks: TaskFacts[];
  /** False when the walk met a broken link, a cycle, a fault or its bound: do not infer exits from it. */
  readonly complete: boolean;
}

/** Byte offsets inside task_struct and friends, from the profile. */
export interface TaskPlan {
  readonly tasks: number;
  readonly pid: number;
  readonly tgid: number;
  readonly comm: number;
  readonly commLen: number;
  readonly flags: number;
  readonly realParent: number;
  readonly cred: number;
  readonly mm: number;
  readonly exitState: number;
  readonly start: number;
  readonly signal: number;
  /** signal_struct.thread_head and task_struct.thread_node, or thread_group on old kernels. */
  readonly threadHead: number | undefined;
  readonly threadNode: number;
  readonly cred_: { uid: number; gid: number; euid: number; egid: number; suid: number; fsuid: number; capEff: number; capPrm: number };
  readonly initTask: bigint;
}

export function compileTaskPlan(k: Kernel): TaskPlan {
  const db = k.types;
  const off = (t: string, f: string): number => db.offsetOf(t, f);
  const start = db.hasMember('task_struct', 'start_boottime')
    ? off('task_struct', 'start_boottime')
    : db.hasMember('task_struct', 'real_start_time')
      ? off('task_struct', 'real_start_time')
      : off('task_struct', 'start_time');
  const newThreads = db.hasMember('signal_struct', 'thread_head') && db.hasMember('task_struct', 'thread_node');
  return {
    tasks: off('task_struct', 'tasks'),
    pid: off('task_struct', 'pid'),
    tgid: off('task_struct', 'tgid'),
    comm: off('task_struct', 'comm'),
    commLen: Math.min(db.field('task_struct', 'comm').size || 16, 64),
    flags: off('task_struct', 'flags'),
    realParent: off('task_struct', 'real_parent'),
    cred: off('task_struct', 'cred'),
    mm: off('task_struct', 'mm'),
    exitState: off('task_struct', 'exit_state'),
    start,
    signal: off('task_struct', 'signal'),
    threadHead: newThreads ? off('signal_struct', 'thread_head') : undefined,
    threadNode: newThreads ? off('task_struct', 'thread_node') : off('task_struct', 'thread_group'),
    cred_: {
      uid: off('cred', 'uid'),
      gid: off('cred', 'gid'),
      euid: off('cred', 'euid'),
      egid: off('cred', 'egid'),
      suid: off('cred', 'suid'),
      fsuid: off('cred', 'fsuid'),
      capEff: off('cred', 'cap_effective'),
      capPrm: off('cred', 'cap_permitted'),
    },
    initTask: k.symbol('init_task'),
  };
}

const decoder = new TextDecoder('utf-8', { fatal: false });
const isKernelVa = (v: bigint): boolean => v >= 0xff00_0000_0000_0000n && v !== 0xffff_ffff_ffff_ffffn;

export class TaskScanner {
  readonly plan: TaskPlan;
  /** A bounded span of each task_struct read in one piece: [lo, hi) around the planned fields. */
  private readonly lo: number;
  private readonly hi: number;

  constructor(
    private readonly k: Kernel,
    private readonly view: GuestView,
  ) {
    this.plan = compileTaskPlan(k);
    const p = this.plan;
    const offs = [p.tasks, p.pid, p.tgid, p.comm + p.commLen, p.flags, p.realParent, p.cred, p.mm, p.exitState, p.start, p.signal, p.threadNode];
    this.lo = Math.min(...offs);
    this.hi = Math.max(...offs) + 16;
  }

  /** Every process (threads too when `threads`), in list order. */
  scan(anomalies: AnomalySink, threads: boolean): TaskScan {
    const p = this.plan;
    const out: TaskFacts[] = [];
    const seen = new Set<bigint>();
    const tgidOf = new Map<bigint, number>([[p.initTask, 0]]);
    let complete = true;
    const headVa = p.initTask + BigInt(p.tasks);
    let prevNode = headVa;
    let node = this.view.u64(headVa);
    let steps = 0;
    while (node !== undefined && node !== headVa) {
      if (++steps > MAX_TASKS) {
        anomalies.add({ kind: 'limit', where: 'task_struct.tasks', detail: `more than ${MAX_TASKS} tasks` });
        complete = false;
        break;
      }
      if (!isKernelVa(node)) {
        anomalies.add({ kind: 'bad-pointer', where: 'task_struct.tasks', address: node });
        complete = false;
        break;
      }
      if (seen.has(node)) {
        anomalies.add({ kind: 'cycle', where: 'task_struct.tasks', address: node });
        complete = false;
        break;
      }
      seen.add(node);
      const back = this.view.u64(node + 8n);
      if (back !== prevNode) {
        // A list being changed under us (or a tampered one): a torn read, retried by the caller.
        anomalies.add({ kind: 'broken-link', where: 'task_struct.tasks', address: node, detail: 'next->prev does not point back' });
        complete = false;
      }
      const task = node - BigInt(p.tasks);
      const t = this.read(task, anomalies);
      if (!t) {
        complete = false;
        break;
      }
      out.push(t);
      tgidOf.set(task, t.tgid);
      if (threads) {
        if (!this.threadsOf(t, out, tgidOf, anomalies)) complete = false;
      }
      prevNode = node;
      node = this.view.u64(node);
    }
    if (node === undefined) {
      anomalies.add({ kind: 'fault', where: 'task_struct.tasks', address: prevNode, detail: 'next pointer unreadable' });
      complete = false;
    }
    for (const t of out) t.ppid = t.realParent === t.task ? 0 : (tgidOf.get(t.realParent) ?? this.tgidAt(t.realParent));
    return { tasks: out, complete };
  }

  /** One task by address (incremental re-read); undefined when unreadable. */
  read(task: bigint, anomalies: AnomalySink): TaskFacts | undefined {
    const p = this.plan;
    const pa = this.view.pa(task + BigInt(this.lo));
    const len = this.hi - this.lo;
    const b = pa === undefined ? undefined : this.view.bytes(pa, len);
    if (!b) {
      anomalies.add({ kind: 'fault', where: 'task_struct', address: task, detail: 'task_struct unreadable' });
      return undefined;
    }
    const dv = new DataView(b.buffer, b.byteOffset, b.length);
    const at = (o: number): number => o - this.lo;
    const commBytes = b.subarray(at(p.comm), at(p.comm) + p.commLen);
    const nul = commBytes.indexOf(0);
    const flags = dv.getUint32(at(p.flags), true);
    const pid = dv.getInt32(at(p.pid), true);
    const tgid = dv.getInt32(at(p.tgid), true);
    return {
      task,
      pid,
      tgid,
      ppid: -1,
      comm: decoder.decode(nul >= 0 ? commBytes.subarray(0, nul) : commBytes),
      flags,
      kthread: (flags & PF_KTHREAD) !== 0,
      startNs: dv.getBigUint64(at(p.start), true),
      mm: dv.getBigUint64(at(p.mm), true),
      cred: dv.getBigUint64(at(p.cred), true),
      realParent: dv.getBigUint64(at(p.realParent), true),
      exitState: dv.getInt32(at(p.exitState), true),
      leader: pid === tgid,
    };
  }

  /** The credentials a `struct cred *` holds; undefined when unreadable. */
  creds(cred: bigint): CredFacts | undefined {
    if (!isKernelVa(cred)) return undefined;
    const c = this.plan.cred_;
    const hi = Math.max(c.uid, c.gid, c.euid, c.egid, c.suid, c.fsuid, c.capEff, c.capPrm) + 8;
    const pa = this.view.pa(cred);
    const b = pa === undefined ? undefined : this.view.bytes(pa, hi);
    if (!b) return undefined;
    const dv = new DataView(b.buffer, b.byteOffset, b.length);
    return {
      uid: dv.getUint32(c.uid, true),
      gid: dv.getUint32(c.gid, true),
      euid: dv.getUint32(c.euid, true),
      egid: dv.getUint32(c.egid, true),
      suid: dv.getUint32(c.suid, true),
      fsuid: dv.getUint32(c.fsuid, true),
      capEffective: dv.getBigUint64(c.capEff, true),
      capPermitted: dv.getBigUint64(c.capPrm, true),
    };
  }

  /** Physical addresses of the fields the monitor compares, per task (for the watch set). */
  ranges(task: bigint): { links: number | undefined; comm: number | undefined; cred: number | undefined; mm: number | undefined } {
    const p = this.plan;
    return {
      links: this.view.pa(task + BigInt(p.tasks)),
      comm: this.view.pa(task + BigInt(p.comm)),
      cred: this.view.pa(task + BigInt(p.cred)),
      mm: this.view.pa(task + BigInt(p.mm)),
    };
  }

  private tgidAt(task: bigint): number {
    if (!isKernelVa(task)) return -1;
    const pa = this.view.pa(task + BigInt(this.plan.tgid));
    const b = pa === undefined ? undefined : this.view.bytes(pa, 4);
    return b ? new DataView(b.buffer, b.byteOffset, 4).getInt32(0, true) : -1;
  }

  /** Appends the non-leader threads of `leader`; false when the thread list was torn. */
  private threadsOf(leader: TaskFacts, out: TaskFacts[], tgidOf: Map<bigint, number>, anomalies: AnomalySink): boolean {
    const p = this.plan;
    let head: bigint;
    if (p.threadHead !== undefined) {
      const signal = this.view.u64(leader.task + BigInt(p.signal));
      if (signal === undefined || !isKernelVa(signal)) return signal === 0n || leader.exitState !== 0;
      head = signal + BigInt(p.threadHead);
    } else head = leader.task + BigInt(p.threadNode);
    let node = this.view.u64(head);
    const seen = new Set<bigint>();
    let steps = 0;
    while (node !== undefined && node !== head) {
      if (++steps > MAX_THREADS_PER_PROCESS || !isKernelVa(node) || seen.has(node)) {
        anomalies.add({ kind: seen.has(node) ? 'cycle' : !isKernelVa(node) ? 'bad-pointer' : 'limit', where: 'signal_struct.thread_head', address: node });
        return false;
      }
      seen.add(node);
      const task = node - BigInt(p.threadNode);
      if (task !== leader.task) {
        const t = this.read(task, anomalies);
        if (!t) return false;
        out.push(t);
        tgidOf.set(task, t.tgid);
      }
      node = this.view.u64(node);
    }
    return node !== undefined;
  }
}
