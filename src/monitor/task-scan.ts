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
/** nextOf: the list node itself could not be read (a pointer that points nowhere is -1). */
const UNREADABLE = -2;

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

/**
 * One task's facts. The kernel VA and the key string are derived on first use (most tasks of a re-walk are
 * compared by their numbers and never need them), so a walk allocates one object and its comm per task.
 */
class ScannedTask implements TaskFacts {
  ppid = -1;
  private key: string | undefined;
  constructor(
    readonly pa: number,
    readonly pid: number,
    readonly tgid: number,
    readonly comm: string,
    readonly flags: number,
    readonly startNs: number,
    readonly mm: number,
    readonly cred: number,
    readonly realParent: number,
    readonly exitState: number,
    private readonly scanner: TaskScanner,
  ) {}
  get kthread(): boolean {
    return (this.flags & PF_KTHREAD) !== 0;
  }
  get leader(): boolean {
    return this.pid === this.tgid;
  }
  get task(): bigint {
    return this.scanner.vaOf(this.pa);
  }
  get id(): string {
    return (this.key ??= `${this.pa}:${this.startNs}`);
  }
}

export class TaskScanner {
  readonly plan: TaskPlan;
  /** A bounded span of each task_struct read in one piece: [lo, hi) around the planned fields. */
  private readonly lo: number;
  private readonly span: number;
  private readonly initPa: number;
  /** init_task's VA in 32-bit halves and its size: pointers into it (the list head, pid 1's real_parent) are
   * resolved by arithmetic, not through the page tables (it lives in the kernel image, not the direct map). */
  private readonly initHi: number;
  private readonly initLo: number;
  private readonly taskSize: number;
  /** A list node's next pointer, read by nodeAt (fields, so the hot path allocates nothing). */
  private nodeNext = -1;
  private nodePrev = -1;

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
    this.initHi = Number(p.initTask >> 32n);
    this.initLo = Number(p.initTask & 0xffffffffn);
    this.taskSize = k.types.sizeOf('task_struct');
  }

  /** The kernel VA of a task_struct at guest-physical `pa` (init_task is in the image, the rest in the direct map). */
  vaOf(pa: number): bigint {
    return pa === this.initPa ? this.plan.initTask : (this.view.directVa(pa) ?? 0n);
  }

  /**
   * Every process (threads too when `threads`), in list order. Cycles are caught by Brent's method (one
   * saved node, compared each step: no set of visited nodes), within about twice the cycle's length; the
   * nodes walked twice before that are dropped from the result.
   */
  scan(anomalies: AnomalySink, threads: boolean): TaskScan {
    const p = this.plan;
    let out: TaskFacts[] = [];
    let complete = true;
    const headPa = this.initPa + p.tasks;
    let prevPa = headPa;
    let nodePa = this.nodeAt(headPa) ? this.nodeNext : -1;
    let steps = 0;
    let saved = -1;
    let power = 1;
    let since = 0;
    while (nodePa !== headPa) {
      if (nodePa < 0 || !this.nodeAt(nodePa)) {
        anomalies.add({ kind: 'fault', where: 'task_struct.tasks', detail: `next pointer of node at guest-physical 0x${prevPa.toString(16)} unreadable or not a kernel address` });
        complete = false;
        break;
      }
      if (++steps > MAX_TASKS) {
        anomalies.add({ kind: 'limit', where: 'task_struct.tasks', detail: `more than ${MAX_TASKS} tasks` });
        complete = false;
        break;
      }
      if (nodePa === saved) {
        anomalies.add({ kind: 'cycle', where: 'task_struct.tasks', detail: `back at guest-physical 0x${nodePa.toString(16)}` });
        complete = false;
        out = distinct(out);
        break;
      }
      if (++since === power) {
        saved = nodePa;
        power *= 2;
        since = 0;
      }
      const next = this.nodeNext;
      if (this.nodePrev !== prevPa) {
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
      if (threads && !this.threadsOf(t, out, anomalies)) complete = false;
      prevPa = nodePa;
      nodePa = next;
    }
    for (let i = 0; i < out.length; i++) {
      const t = out[i]!;
      t.ppid = t.realParent === t.pa ? 0 : this.tgidAt(t.realParent);
    }
    return { tasks: out, complete };
  }

  /** One task by guest-physical address (incremental re-read); undefined when unreadable. */
  readAt(pa: number, anomalies: AnomalySink): TaskFacts | undefined {
    const p = this.plan;
    const dv = this.view.dv(pa + this.lo, this.span);
    if (!dv) {
      anomalies.add({ kind: 'fault', where: 'task_struct', detail: `task_struct at guest-physical 0x${pa.toString(16)} unreadable` });
      return undefined;
    }
    const base = this.view.at - this.lo;
    const pid = dv.getInt32(base + p.pid, true);
    const startNs = dv.getUint32(base + p.start + 4, true) * 4294967296 + dv.getUint32(base + p.start, true);
    return new ScannedTask(
      pa,
      pid,
      dv.getInt32(base + p.tgid, true),
      commAt(dv, base + p.comm, Math.min(p.commLen, MAX_COMM)),
      dv.getUint32(base + p.flags, true),
      startNs,
      this.ptrOrNone(dv, base + p.mm),
      this.ptrOrNone(dv, base + p.cred),
      this.taskPointerPa(dv, base + p.realParent),
      dv.getInt32(base + p.exitState, true),
      this,
    );
  }

  /** The credentials at a `struct cred`'s guest-physical address; undefined when unreadable. */
  creds(credPa: number): CredFacts | undefined {
    if (credPa < 0) return undefined;
    const c = this.plan.cred_;
    const hi = Math.max(c.uid, c.gid, c.euid, c.egid, c.suid, c.fsuid, c.capEff, c.capPrm) + 8;
    const dv = this.view.dv(credPa, hi);
    if (!dv) return undefined;
    const at = this.view.at;
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

  /**
   * The guest-physical address a pointer into a task_struct (the 8 bytes at `dv[at]`) points to: init_task
   * by arithmetic (its place in the image is fixed at boot), any other through the view. -1 when nowhere.
   */
  private taskPointerPa(dv: DataView, at: number): number {
    const lo = dv.getUint32(at, true);
    const hi = dv.getUint32(at + 4, true);
    if (hi === this.initHi && lo - this.initLo >= 0 && lo - this.initLo < this.taskSize) return this.initPa + (lo - this.initLo);
    return this.view.halvesPa(lo, hi);
  }

  /** The next pointer of the list_head at `nodePa`, guest-physical (-1 when nowhere), or UNREADABLE. */
  private nextOf(nodePa: number): number {
    const dv = this.view.dv(nodePa, 8);
    return dv ? this.taskPointerPa(dv, this.view.at) : UNREADABLE;
  }

  /** Reads the list_head at `nodePa` into nodeNext/nodePrev (guest-physical, -1 when nowhere); false when unreadable. */
  private nodeAt(nodePa: number): boolean {
    const dv = this.view.dv(nodePa, 16);
    if (!dv) return false;
    const at = this.view.at;
    this.nodeNext = this.taskPointerPa(dv, at);
    this.nodePrev = this.taskPointerPa(dv, at + 8);
    return true;
  }

  private tgidAt(taskPa: number): number {
    if (taskPa < 0) return -1;
    const dv = this.view.dv(taskPa + this.plan.tgid, 4);
    return dv ? dv.getInt32(this.view.at, true) : -1;
  }

  /** Appends the non-leader threads of `leader`; false when the thread list was torn. */
  private threadsOf(leader: TaskFacts, out: TaskFacts[], anomalies: AnomalySink): boolean {
    const p = this.plan;
    let headPa: number;
    if (p.threadHead !== undefined) {
      const dv = this.view.dv(leader.pa + p.signal, 8);
      const signalPa = dv ? this.ptrOrNone(dv, this.view.at) : -1;
      if (signalPa < 0) return leader.exitState !== 0 || dv !== undefined; // an exiting task may have lost its signal struct
      headPa = signalPa + p.threadHead;
    } else headPa = leader.pa + p.threadNode;
    // Only next pointers here: the thread list is not checked for torn links (the task list is).
    let nodePa = Math.max(-1, this.nextOf(headPa));
    let steps = 0;
    let saved = -1;
    let power = 1;
    let since = 0;
    const start = out.length;
    while (nodePa !== headPa) {
      const next = nodePa < 0 ? UNREADABLE : this.nextOf(nodePa);
      const bad = next === UNREADABLE ? 'fault' : ++steps > MAX_THREADS_PER_PROCESS ? 'limit' : nodePa === saved ? 'cycle' : undefined;
      if (bad) {
        anomalies.add({ kind: bad, where: 'signal_struct.thread_head', address: leader.task });
        if (bad === 'cycle') out.splice(start, out.length - start, ...distinct(out.slice(start)));
        return false;
      }
      if (++since === power) {
        saved = nodePa;
        power *= 2;
        since = 0;
      }
      const taskPa = nodePa - p.threadNode;
      if (taskPa !== leader.pa) {
        const t = this.readAt(taskPa, anomalies);
        if (!t) return false;
        out.push(t);
      }
      nodePa = next;
    }
    return true;
  }
}

/** The tasks of a list walked past a cycle, each once (first occurrence kept). */
function distinct(tasks: TaskFacts[]): TaskFacts[] {
  const seen = new Set<number>();
  return tasks.filter((t) => !seen.has(t.pa) && (seen.add(t.pa), true));
}
