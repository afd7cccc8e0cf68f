/**
 * Tasks: iteration over processes and threads, and the facts /proc shows
 * per task (pid, tgid, ppid, comm, state, start time, credentials, kernel
 * thread or not), read from one snapshot of each task_struct (R6).
 *
 * Layout differences are chosen by presence in the profile (R8), each
 * citing the kernel commit that introduced them.
 *
 * @example
 * for (const task of forEachProcess(kernel, anomalies)) {
 *   const info = taskInfo(kernel, task, anomalies);   // { pid, ppid, comm, state, uid, ... }
 * }
 */
import { FaultError, UsageError } from '../core/errors.js';
import { globalRef } from '../profile/globals.js';
import type { ObjValue } from '../profile/typed.js';
import type { AnomalySink } from './anomaly.js';
import type { Kernel } from './kernel.js';
import { isKernelPointer, type WalkOptions } from './walk/common.js';
import { listForEach, listForEachEntry } from './walk/list.js';

/** PF_KTHREAD in include/linux/sched.h. */
export const PF_KTHREAD = 0x0020_0000;
/** USER_HZ: /proc/<pid>/stat start times are in these ticks. */
export const USER_HZ = 100n;

/** Reads a whole object, recording a fault instead of throwing; undefined when unreadable. */
export function readObject(k: Kernel, type: string, va: bigint, anomalies: AnomalySink, where: string): ObjValue | undefined {
  if (!isKernelPointer(va)) {
    anomalies.add({ kind: 'bad-pointer', where, address: va, detail: `${type} pointer is not a kernel address` });
    return undefined;
  }
  try {
    return k.typed.obj(type, va).read();
  } catch (e) {
    if (e instanceof FaultError) {
      // unmapped, or a ShortReadError (the object runs past what the source holds)
      anomalies.add({ kind: 'fault', where, address: va, detail: e.message });
      return undefined;
    }
    throw e;
  }
}

/** Address of init_task (the swapper, pid 0, head of the task list). */
export function initTask(k: Kernel): bigint {
  return globalRef(k.typed, k.symbols, 'init_task').address;
}

/**
 * for_each_process(): thread-group leaders on the init_task.tasks list, in
 * list order, each read once. The swapper (init_task, pid 0) is excluded
 * unless `withSwapper`, as /proc excludes it.
 */
export function* forEachProcess(k: Kernel, anomalies: AnomalySink, opts: WalkOptions & { withSwapper?: boolean } = {}): Generator<ObjValue> {
  const init = initTask(k);
  if (opts.withSwapper) {
    const t = readObject(k, 'task_struct', init, anomalies, 'init_task');
    if (t) yield t;
  }
  const head = k.typed.obj('task_struct', init).addrOf('tasks');
  for (const ref of listForEachEntry(k.typed, head, 'task_struct', 'tasks', { ...opts, anomalies, where: 'task_struct.tasks' })) {
    const t = readObject(k, 'task_struct', ref.address, anomalies, 'task_struct.tasks');
    if (t) yield t;
  }
}

/**
 * for_each_thread(): every thread of a process, the leader included.
 * Uses signal->thread_head / task->thread_node, which exist since Linux
 * kernel commit 0c740d0afc3b ("introduce for_each_thread() to replace the
 * buggy while_each_thread()") (in v3.14); task->thread_group, removed by
 * commit 8e1f385104ac ("kill task_struct->thread_group") (in v6.7), is the
 * fallback for profiles without them.
 * @param leader `struct task_struct` value of the thread-group leader
 */
export function* forEachThread(k: Kernel, leader: ObjValue, anomalies: AnomalySink, opts: WalkOptions = {}): Generator<ObjValue> {
  const db = k.types;
  if (db.hasMember('signal_struct', 'thread_head') && db.hasMember('task_struct', 'thread_node')) {
    const signal = leader.ptr('signal');
    if (!isKernelPointer(signal)) {
      if (signal !== 0n) anomalies.add({ kind: 'bad-pointer', where: 'task_struct.signal', address: signal });
      yield leader; // an exiting task may have lost its signal struct
      return;
    }
    const head = k.typed.obj('signal_struct', signal).addrOf('thread_head');
    for (const ref of listForEachEntry(k.typed, head, 'task_struct', 'thread_node', { ...opts, anomalies, where: 'signal_struct.thread_head' })) {
      if (ref.address === leader.address) {
        yield leader;
        continue;
      }
      const t = readObject(k, 'task_struct', ref.address, anomalies, 'signal_struct.thread_head');
      if (t) yield t;
    }
    return;
  }
  yield leader;
  for (const node of listForEach(k.typed, leader.addrOf('thread_group'), { ...opts, anomalies, where: 'task_struct.thread_group' })) {
    const t = readObject(k, 'task_struct', k.typed.containerOf(node, 'task_struct', 'thread_group').address, anomalies, 'task_struct.thread_group');
    if (t) yield t;
  }
}

/** Every task (all threads of all processes). */
export function* forEachTask(k: Kernel, anomalies: AnomalySink, opts: WalkOptions = {}): Generator<ObjValue> {
  for (const p of forEachProcess(k, anomalies, opts)) yield* forEachThread(k, p, anomalies, opts);
}

// ------------------------------------------------------------------ state

/** task_state_to_char(): the /proc letter of a task. */
export function taskStateLetter(task: ObjValue): string {
  return TASK_STATE_CHARS[taskStateIndex(task)] ?? '?';
}

const TASK_STATE_CHARS = 'RSDTtXZPI';
const TASK_REPORT = 0x7f;
const TASK_UNINTERRUPTIBLE = 0x2;
const TASK_NOLOAD = 0x400;
const TASK_RTLOCK_WAIT = 0x1000;

/**
 * __task_state_index(). The state word is `__state` since Linux kernel
 * commit 2f064a59a11f ("sched: Change task_struct::state") (in v5.14),
 * `state` before. TASK_RTLOCK_WAIT (v5.15+) reports as D.
 */
export function taskStateIndex(task: ObjValue): number {
  const raw = Number(BigInt.asUintN(32, task.has('__state') ? task.int('__state') : task.int('state')));
  const exit = Number(BigInt.asUintN(32, task.int('exit_state')));
  let state = (raw | exit) & TASK_REPORT;
  if ((raw & (TASK_UNINTERRUPTIBLE | TASK_NOLOAD)) === (TASK_UNINTERRUPTIBLE | TASK_NOLOAD)) state = TASK_REPORT + 1;
  if (raw & TASK_RTLOCK_WAIT) state = TASK_UNINTERRUPTIBLE; // never set before v5.15 (was TASK_STATE_MAX)
  return state === 0 ? 0 : 32 - Math.clz32(state);
}

// ------------------------------------------------------------------ time

/**
 * Start time in nanoseconds since boot, as /proc/<pid>/stat counts it
 * (boot time, suspend included): `start_boottime` since Linux kernel commit
 * cf25e24db61c ("time: Rename tsk->real_start_time to ->start_boottime")
 * (in v5.5), `real_start_time` before; `start_time` (monotonic) otherwise.
 */
export function taskStartTimeNs(task: ObjValue): bigint {
  if (task.has('start_boottime')) return task.u64('start_boottime');
  if (task.has('real_start_time')) return task.u64('real_start_time');
  return task.u64('start_time');
}

// ------------------------------------------------------------------ credentials

export interface Creds {
  /** `struct cred *` */
  readonly address: bigint;
  readonly uid: number;
  readonly gid: number;
  readonly suid: number;
  readonly sgid: number;
  readonly euid: number;
  readonly egid: number;
  readonly fsuid: number;
  readonly fsgid: number;
  readonly capInheritable: bigint;
  readonly capPermitted: bigint;
  readonly capEffective: bigint;
  readonly capBounding: bigint;
  readonly capAmbient: bigint;
  /** `struct user_namespace *` */
  readonly userNs: bigint;
}

/**
 * kernel_cap_t as a 64-bit mask: `u32 cap[2]` before Linux kernel commit
 * f122a08b197d ("capability: just use a 'u64' instead of a 'u32[2]' array")
 * (in v6.3), `u64 val` after. Both are the same 8 little-endian bytes.
 */
function capMask(cred: ObjValue, field: string): bigint {
  const b = cred.raw(field);
  return new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true);
}

/** Reads a `struct cred *`. */
export function readCreds(k: Kernel, credVa: bigint, anomalies: AnomalySink): Creds | undefined {
  const c = readObject(k, 'cred', credVa, anomalies, 'task_struct.cred');
  if (!c) return undefined;
  const id = (f: string): number => c.u32(`${f}.val`);
  return {
    address: credVa,
    uid: id('uid'),
    gid: id('gid'),
    suid: id('suid'),
    sgid: id('sgid'),
    euid: id('euid'),
    egid: id('egid'),
    fsuid: id('fsuid'),
    fsgid: id('fsgid'),
    capInheritable: capMask(c, 'cap_inheritable'),
    capPermitted: capMask(c, 'cap_permitted'),
    capEffective: capMask(c, 'cap_effective'),
    capBounding: capMask(c, 'cap_bset'),
    capAmbient: c.has('cap_ambient') ? capMask(c, 'cap_ambient') : 0n,
    userNs: c.ptr('user_ns'),
  };
}

// ------------------------------------------------------------------ summary

export interface TaskInfo {
  /** `struct task_struct *` */
  readonly task: bigint;
  readonly pid: number;
  readonly tgid: number;
  /** tgid of real_parent (0 for pid 1, 2 and the swapper). */
  readonly ppid: number;
  readonly comm: string;
  readonly state: string;
  readonly flags: number;
  readonly kthread: boolean;
  readonly startTimeNs: bigint;
  /** Start time in USER_HZ ticks, as /proc/<pid>/stat field 22. */
  readonly startTicks: bigint;
  /** `struct mm_struct *` (0 for kernel threads), read when asked. */
  readonly mm: bigint;
  readonly creds: Creds | undefined;
  readonly realParent: bigint;
  readonly parent: bigint;
}

/**
 * The /proc facts of one task. `tgidOf` resolves real_parent's tgid without a
 * read when the caller already knows the parent (pass a map filled during the walk).
 */
export function taskInfo(k: Kernel, task: ObjValue, anomalies: AnomalySink, tgidOf?: ReadonlyMap<bigint, number>): TaskInfo {
  const flags = task.u32('flags');
  const realParent = task.ptr('real_parent');
  const credVa = task.ptr('cred');
  const start = taskStartTimeNs(task);
  return {
    task: task.address,
    pid: task.s32('pid'),
    tgid: task.s32('tgid'),
    ppid: parentTgid(k, task, realParent, anomalies, tgidOf),
    comm: task.str('comm'),
    state: taskStateLetter(task),
    flags,
    kthread: (flags & PF_KTHREAD) !== 0,
    startTimeNs: start,
    startTicks: start / (1_000_000_000n / USER_HZ),
    // Read when asked: a pointer read is a link a validated run watches (linux/pass.ts), and a listing that
    // never follows `mm` (pslist) should not be retried because a process exec'd and got a new one.
    get mm(): bigint {
      return task.ptr('mm');
    },
    // readCreds records why a cred is unreadable (readObject); a NULL cred never happens in a sane kernel.
    creds: credVa === 0n ? nullCred(task, anomalies) : readCreds(k, credVa, anomalies),
    realParent,
    get parent(): bigint {
      return task.ptr('parent');
    },
  };
}

function nullCred(task: ObjValue, anomalies: AnomalySink): undefined {
  anomalies.add({ kind: 'bad-pointer', where: 'task_struct.cred', address: task.address, detail: 'cred is NULL' });
  return undefined;
}

function parentTgid(k: Kernel, task: ObjValue, parent: bigint, anomalies: AnomalySink, known?: ReadonlyMap<bigint, number>): number {
  if (parent === task.address) return 0;
  const hit = known?.get(parent);
  if (hit !== undefined) return hit;
  if (!isKernelPointer(parent)) {
    anomalies.add({ kind: 'bad-pointer', where: 'task_struct.real_parent', address: parent });
    return -1;
  }
  try {
    return k.typed.obj('task_struct', parent).field('tgid').s32();
  } catch (e) {
    if (!(e instanceof FaultError)) throw e;
    anomalies.add({ kind: 'fault', where: 'task_struct.real_parent', address: parent, detail: e.message });
    return -1;
  }
}

// ------------------------------------------------------------------ snapshots

export interface ProcessSnapshot {
  /** Thread-group leaders in task-list order (swapper excluded). */
  readonly leaders: ObjValue[];
  /** tgid of every task read, by task address (init_task included): resolves ppid without reads. */
  readonly tgidOf: Map<bigint, number>;
}

/** Reads every process once. */
export function snapshotProcesses(k: Kernel, anomalies: AnomalySink, opts: WalkOptions = {}): ProcessSnapshot {
  const leaders: ObjValue[] = [];
  const tgidOf = new Map<bigint, number>([[initTask(k), 0]]);
  for (const t of forEachProcess(k, anomalies, opts)) {
    leaders.push(t);
    tgidOf.set(t.address, t.s32('tgid'));
  }
  return { leaders, tgidOf };
}

/**
 * Announces the objects the tasks' pointer `fields` lead to ([field, struct type] pairs, e.g.
 * ['cred', 'cred']), so a source read in pass blocks fetches them in one batch before the per-task
 * reads; other sources read nothing. Pointers that are not kernel addresses are left to the reads
 * that follow (which report them).
 */
export function prefetchPointees(k: Kernel, tasks: readonly ObjValue[], fields: readonly (readonly [field: string, type: string])[]): void {
  // Synthetic kernels of the tests may have a space without a page-table reader.
  if ((k.space as Partial<Pick<typeof k.space, 'translator'>>).translator?.tables.phys.passBlocks === undefined) return;
  const ranges: { va: bigint; len: number }[] = [];
  for (const [field, type] of fields) {
    if (!k.types.hasMember('task_struct', field)) continue;
    const len = k.typed.obj(type, 0n).size;
    for (const t of tasks) {
      const va = t.ptr(field);
      if (isKernelPointer(va)) ranges.push({ va, len });
    }
  }
  k.space.prefetch(ranges);
}

/** The `--pid PID[,PID…]` option (repeatable) shared by the per-process plugins: spread it into `options`. */
export const PID_OPTION = {
  pid: { type: 'string', multiple: true, valueName: 'PID[,PID…]', description: 'only these processes (repeatable)', byDefault: 'every process' },
} as const;

/**
 * The `--pid` option as a set of pids ('1,2' and repeated flags both work);
 * undefined when absent. Throws UsageError naming a non-numeric value.
 */
export function pidFilter(value: string | boolean | readonly string[] | undefined): Set<number> | undefined {
  if (value === undefined || value === false) return undefined;
  const words = (Array.isArray(value) ? value : [String(value)]).flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean);
  const out = new Set<number>();
  for (const w of words) {
    if (!/^\d+$/.test(w)) throw new UsageError(`--pid expects process ids, got '${w}'`);
    out.add(Number(w));
  }
  return out;
}

/** signal->nr_threads of a process (one small read); undefined when unreadable. */
export function threadCount(k: Kernel, task: ObjValue, anomalies: AnomalySink): number | undefined {
  const sig = task.ptr('signal');
  if (!isKernelPointer(sig)) {
    anomalies.add({ kind: 'bad-pointer', where: 'task_struct.signal', address: task.address, detail: `signal 0x${sig.toString(16)} is not a kernel address` });
    return undefined;
  }
  try {
    return k.typed.obj('signal_struct', sig).field('nr_threads').s32();
  } catch (e) {
    if (!(e instanceof FaultError)) throw e;
    anomalies.add({ kind: 'fault', where: 'task_struct.signal', address: sig, detail: e.message });
    return undefined;
  }
}
