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
  /** Guest-physical address of the task_struct: the walk's identity (task_structs live in the direct map). */
  readonly pa: number;
  /** Its kernel virtual address, for reports. */
  readonly task: bigint;
  /** pa:startNs — unique across pid reuse, stable while the task lives. */
  readonly id: string;
  readonly pid: number;
  readonly tgid: number;
  /** tgid of real_parent (0 for the swapper's children). */
  ppid: number;
  readonly comm: string;
  readonly flags: number;
  readonly kthread: boolean;
  /** Boot-time ns (exact below 2^53 ns, 104 days of uptime). */
  readonly startNs: number;
  /** Guest-physical addresses of mm_struct and cred (-1 when none or unreadable). */
  readonly mm: number;
  readonly cred: number;
  readonly realParent: number;
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

const MAX_COMM = 64;

/** ASCII fast path for comm (kernel comm is almost always ASCII); UTF-8 otherwise. */
function commAt(dv: DataView, at: number, len: number): string {
  let out = '';
  for (let i = 0; i < len; i++) {
    const c = dv.getUint8(at + i);
    if (c === 0) return out;
    if (c >= 0x80) return new TextDecoder().decode(new Uint8Array(dv.buffer, dv.byteOffset + at, len)).split('\0')[0]!;
    out += String.fromCharCode(c);
  }
  return out;
}

export class TaskScanner {
  readonly plan: TaskPlan;
  /** A bounded span of each task_struct read in one piece: [lo, hi) around the planned fields. */
  private readonly lo: number;
  private readonly span: number;
  private readonly initPa: number;

  constructor(
    private readonly k: Kernel,
    private readonly view: GuestView,
  ) {
    this.plan = compileTaskPlan(k);
    const p = this.plan;
    const offs = [p.tasks, p.pid, p.tgid, p.comm + p.commLen, p.flags, p.realParent, p.cred, p.mm, p.exitState, p.start, p.signal, p.threadNode];
    this.lo = Math.min(...offs);
    this.span = Math.max(...offs) + 16 - this.lo;
    const pa = view.pa(p.initTask);
    if (pa === undefined) throw new Error('init_task is not mapped');
    this.initPa = pa;
  }

  /** Every process (threads too when `threads`), in list order. */
  scan(anomalies: AnomalySink, threads: boolean): TaskScan {
    const p = this.plan;
    const out: TaskFacts[] = [];
    const seen = new Set<number>();
    const tgidOf = new Map<number, number>([[this.initPa, 0]]);
    let complete = true;
    const headPa = this.initPa + p.tasks;
    let prevPa = headPa;
    let nodePa = this.next(headPa);
    let steps = 0;
    while (nodePa !== headPa) {
      if (nodePa < 0) {
        anomalies.add({ kind: 'fault', where: 'task_struct.tasks', detail: `next pointer of node at guest-physical 0x${prevPa.toString(16)} unreadable or not a kernel address` });
        complete = false;
        break;
      }
      if (++steps > MAX_TASKS) {
        anomalies.add({ kind: 'limit', where: 'task_struct.tasks', detail: `more than ${MAX_TASKS} tasks` });
        complete = false;
        break;
      }
      if (seen.has(nodePa)) {
        anomalies.add({ kind: 'cycle', where: 'task_struct.tasks', detail: `back at guest-physical 0x${nodePa.toString(16)}` });
        complete = false;
        break;
      }
      seen.add(nodePa);
      if (this.prev(nodePa) !== prevPa) {
        // A list being changed under us (or a tampered one): a torn read, retried by the caller.
        anomalies.add({ kind: 'broken-link', where: 'task_struct.tasks', detail: 'next->prev does not point back' });
        complete = false;
      }
      const t = this.readAt(nodePa - p.tasks, anomalies);
      if (!t) {
        complete = false;
        break;
      }
      out.push(t);
      tgidOf.set(t.pa, t.tgid);
      if (threads && !this.threadsOf(t, out, tgidOf, anomalies)) complete = false;
      prevPa = nodePa;
      nodePa = this.next(nodePa);
    }
    for (const t of out) t.ppid = t.realParent === t.pa ? 0 : (tgidOf.get(t.realParent) ?? this.tgidAt(t.realParent));
    return { tasks: out, complete };
  }

  /** One task by guest-physical address (incremental re-read); undefined when unreadable. */
  readAt(pa: number, anomalies: AnomalySink): TaskFacts | undefined {
    const p = this.plan;
    const w = this.view.window(pa + this.lo, this.span);
    if (!w) {
      anomalies.add({ kind: 'fault', where: 'task_struct', detail: `task_struct at guest-physical 0x${pa.toString(16)} unreadable` });
      return undefined;
    }
    const { dv } = w;
    const base = w.at - this.lo;
    const flags = dv.getUint32(base + p.flags, true);
    const pid = dv.getInt32(base + p.pid, true);
    const tgid = dv.getInt32(base + p.tgid, true);
    const startNs = dv.getUint32(base + p.start + 4, true) * 4294967296 + dv.getUint32(base + p.start, true);
    const va = pa === this.initPa ? p.initTask : (this.view.directVa(pa) ?? 0n);
    return {
      pa,
      task: va,
      id: `${pa}:${startNs}`,
      pid,
      tgid,
      ppid: -1,
      comm: commAt(dv, base + p.comm, Math.min(p.commLen, MAX_COMM)),
      flags,
      kthread: (flags & PF_KTHREAD) !== 0,
      startNs,
      mm: this.ptrOrNone(dv, base + p.mm),
      cred: this.ptrOrNone(dv, base + p.cred),
      realParent: this.view.pointerPa(dv, base + p.realParent),
      exitState: dv.getInt32(base + p.exitState, true),
      leader: pid === tgid,
    };
  }

  /** The credentials at a `struct cred`'s guest-physical address; undefined when unreadable. */
  creds(credPa: number): CredFacts | undefined {
    if (credPa < 0) return undefined;
    const c = this.plan.cred_;
    const hi = Math.max(c.uid, c.gid, c.euid, c.egid, c.suid, c.fsuid, c.capEff, c.capPrm) + 8;
    const w = this.view.window(credPa, hi);
    if (!w) return undefined;
    const { dv, at } = w;
    return {
      uid: dv.getUint32(at + c.uid, true),
      gid: dv.getUint32(at + c.gid, true),
      euid: dv.getUint32(at + c.euid, true),
      egid: dv.getUint32(at + c.egid, true),
      suid: dv.getUint32(at + c.suid, true),
      fsuid: dv.getUint32(at + c.fsuid, true),
      capEffective: dv.getBigUint64(at + c.capEff, true),
      capPermitted: dv.getBigUint64(at + c.capPrm, true),
    };
  }

  /** Guest-physical addresses of the fields the monitor compares, per task (for the watch set). */
  ranges(t: TaskFacts): { links: number; comm: number; cred: number; mm: number } {
    const p = this.plan;
    return { links: t.pa + (t.leader ? p.tasks : p.threadNode), comm: t.pa + p.comm, cred: t.pa + p.cred, mm: t.pa + p.mm };
  }

  private ptrOrNone(dv: DataView, at: number): number {
    if (dv.getUint32(at, true) === 0 && dv.getUint32(at + 4, true) === 0) return -1;
    return this.view.pointerPa(dv, at);
  }

  private next(nodePa: number): number {
    const w = this.view.window(nodePa, 16);
    return w ? this.view.pointerPa(w.dv, w.at) : -1;
  }

  private prev(nodePa: number): number {
    const w = this.view.window(nodePa, 16);
    return w ? this.view.pointerPa(w.dv, w.at + 8) : -1;
  }

  private tgidAt(taskPa: number): number {
    if (taskPa < 0) return -1;
    const w = this.view.window(taskPa + this.plan.tgid, 4);
    return w ? w.dv.getInt32(w.at, true) : -1;
  }

  /** Appends the non-leader threads of `leader`; false when the thread list was torn. */
  private threadsOf(leader: TaskFacts, out: TaskFacts[], tgidOf: Map<number, number>, anomalies: AnomalySink): boolean {
    const p = this.plan;
    let headPa: number;
    if (p.threadHead !== undefined) {
      const w = this.view.window(leader.pa + p.signal, 8);
      const signalPa = w ? this.ptrOrNone(w.dv, w.at) : -1;
      if (signalPa < 0) return leader.exitState !== 0 || w !== undefined; // an exiting task may have lost its signal struct
      headPa = signalPa + p.threadHead;
    } else headPa = leader.pa + p.threadNode;
    let nodePa = this.next(headPa);
    const seen = new Set<number>();
    let steps = 0;
    while (nodePa !== headPa) {
      if (nodePa < 0 || ++steps > MAX_THREADS_PER_PROCESS || seen.has(nodePa)) {
        anomalies.add({ kind: nodePa < 0 ? 'fault' : seen.has(nodePa) ? 'cycle' : 'limit', where: 'signal_struct.thread_head', address: leader.task });
        return false;
      }
      seen.add(nodePa);
      const taskPa = nodePa - p.threadNode;
      if (taskPa !== leader.pa) {
        const t = this.readAt(taskPa, anomalies);
        if (!t) return false;
        out.push(t);
        tgidOf.set(taskPa, t.tgid);
      }
      nodePa = this.next(nodePa);
    }
    return true;
  }
}
