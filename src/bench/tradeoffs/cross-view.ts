/**
 * The study's cross-view check (the "object seen in one view and not the
 * other" anomaly of issue 9): within one run, the task list against the pid
 * allocator's IDR (thread-group leaders both ways), and sockets held in fd
 * tables against the kernel's socket hash tables (a TCP socket ESTABLISHED
 * or LISTEN, or a bound UDP socket, is hashed while it is in that state).
 * A live read racing fork/exit or connect/close sees one view updated and
 * not yet the other; a paused guest mid-update shows the same (intrinsic).
 * A task mismatch is looked at again before it counts (recheckTasks): both
 * views re-walked back to back, links only, a little apart — a task forked
 * or reaped between the first two walks (milliseconds apart, every fd table
 * in between) is then in both views or in neither; a hidden one stays.
 * One row per mismatch, with its kind.
 */
import { taskSockets } from '../../linux/files.js';
import { kernelTableSocks } from '../../linux/net/inet-hashtables.js';
import { decodeSocket } from '../../linux/net/sock.js';
import { pidIdrTasks } from '../../linux/pids.js';
import { definePlugin } from '../../linux/plugin.js';
import { forEachProcess, initTask, readObject } from '../../linux/tasks.js';
import type { Kernel } from '../../linux/kernel.js';
import { AnomalySink } from '../../linux/anomaly.js';
import { listForEach } from '../../linux/walk/list.js';
import { sleepBriefly } from '../../linux/walk/common.js';

export type CrossViewKind = 'task-not-in-list' | 'task-not-in-pid-idr' | 'socket-not-in-table';

export interface CrossViewRow {
  kind: CrossViewKind;
  /** task_struct or struct sock address. */
  object: bigint;
  pid: number;
  detail: string;
}

/** The tasks each view holds (task_struct addresses): processes on the task list, thread-group leaders in the pid IDR. */
export interface TaskViews {
  readonly listed: ReadonlySet<bigint>;
  readonly leaders: ReadonlySet<bigint>;
}

export interface TaskMismatch {
  readonly kind: 'task-not-in-list' | 'task-not-in-pid-idr';
  readonly task: bigint;
}

/** Waits (ms) before the 2nd and 3rd fresh look at task mismatches. */
export const RECHECK_WAITS_MS = [0.2, 1] as const;

/**
 * The task mismatches that persist over fresh looks (`look` re-walks both
 * views; one look now, then one after each wait): a mismatch is cleared by
 * the first look in which its task is in both views or in neither — fork or
 * exit had finished — and persists when every look still shows it (a task
 * unlinked from one view by a rootkit, a corrupt list). A look that fails
 * (undefined) clears nothing. Bounded: 1 + waits looks, only when there is a
 * mismatch.
 */
export function recheckTasks(mismatches: readonly TaskMismatch[], look: () => TaskViews | undefined, waitsMs: readonly number[] = RECHECK_WAITS_MS): { persistent: TaskMismatch[]; cleared: number } {
  let left = [...mismatches];
  for (let i = 0; i <= waitsMs.length && left.length; i++) {
    if (i > 0) sleepBriefly(waitsMs[i - 1]!);
    const v = look();
    if (!v) continue;
    left = left.filter((m) => (m.kind === 'task-not-in-list' ? v.leaders.has(m.task) && !v.listed.has(m.task) : v.listed.has(m.task) && !v.leaders.has(m.task)));
  }
  return { persistent: left, cleared: mismatches.length - left.length };
}

/** Both task views, walked back to back (links and the pid/tgid of IDR tasks only); their anomalies go to `sink`. */
function taskViews(k: Kernel, sink: AnomalySink): TaskViews {
  const tasksOff = BigInt(k.types.offsetOf('task_struct', 'tasks'));
  const listed = new Set<bigint>();
  for (const node of listForEach(k.typed, k.typed.obj('task_struct', initTask(k)).addrOf('tasks'), { anomalies: sink, where: 'task_struct.tasks' })) listed.add(node - tasksOff);
  const leaders = new Set<bigint>();
  for (const { task } of pidIdrTasks(k, sink)) {
    const t = readObject(k, 'task_struct', task, sink, 'xview: pid.tasks');
    if (t && t.s32('pid') === t.s32('tgid')) leaders.add(task);
  }
  return { listed, leaders };
}

/** Sockets that are hashed while in this state: TCP established or listening, UDP bound to a port. */
function mustBeHashed(proto: string, stateName: string, localPort: number | undefined): boolean {
  if (proto === 'tcp' || proto === 'tcp6') return stateName === 'ESTABLISHED' || stateName === 'LISTEN';
  if (proto === 'udp' || proto === 'udp6') return (localPort ?? 0) !== 0;
  return false;
}

export const crossView = definePlugin<CrossViewRow>()({
  name: 'xview',
  version: '1.0.0',
  summary: 'study check: tasks in the task list vs the pid IDR, fd-table sockets vs the socket hash tables',
  requires: {
    symbols: ['init_task', 'init_pid_ns'],
    fields: [
      ['task_struct', 'tasks'],
      ['task_struct', 'pid_links'],
      ['pid_namespace', 'idr'],
      ['socket', 'sk'],
    ],
  },
  options: {},
  columns: [
    { key: 'kind', kind: 'str' },
    { key: 'object', kind: 'hex' },
    { key: 'pid', kind: 'int' },
    { key: 'detail', kind: 'str' },
  ],
  key: (r) => `${r.kind}:${r.object.toString(16)}`,
  *run(k, { anomalies }) {
    const listed = new Map<bigint, number>();
    const fdSocks = new Map<bigint, { pid: number; what: string }>();
    for (const task of forEachProcess(k, anomalies)) {
      const pid = task.s32('pid');
      listed.set(task.address, pid);
      for (const f of taskSockets(k, task, anomalies)) {
        const info = decodeSocket(k, f.socket, anomalies);
        if (info && mustBeHashed(info.proto, info.stateName, info.local?.port)) fdSocks.set(info.sock, { pid, what: `${info.proto} ${info.stateName} port ${info.local?.port ?? '?'}` });
      }
    }
    const leaders = new Map<bigint, { nr: number; comm: string }>();
    for (const { nr, task } of pidIdrTasks(k, anomalies)) {
      const t = readObject(k, 'task_struct', task, anomalies, 'xview: pid.tasks');
      if (!t || t.s32('pid') !== t.s32('tgid')) continue; // a thread: not on the task list by design
      leaders.set(task, { nr, comm: t.str('comm') });
    }
    const mismatches: TaskMismatch[] = [];
    for (const task of leaders.keys()) if (!listed.has(task)) mismatches.push({ kind: 'task-not-in-list', task });
    for (const [task, pid] of listed) if (pid > 0 && !leaders.has(task)) mismatches.push({ kind: 'task-not-in-pid-idr', task });
    if (mismatches.length) {
      // The fresh looks' own anomalies are not this run's: the first walks reported theirs.
      const look = (): TaskViews | undefined => {
        try {
          return taskViews(k, new AnomalySink(16));
        } catch {
          return undefined; // a look that cannot be taken clears nothing
        }
      };
      const { persistent, cleared } = recheckTasks(mismatches, look);
      anomalies.settled += cleared;
      for (const m of persistent) {
        if (m.kind === 'task-not-in-list') {
          const l = leaders.get(m.task)!;
          yield { kind: m.kind, object: m.task, pid: l.nr, detail: `pid ${l.nr} (${l.comm}) has its pid but is not on init_task.tasks` };
        } else {
          const pid = listed.get(m.task)!;
          yield { kind: m.kind, object: m.task, pid, detail: `pid ${pid} is on the task list but not in init_pid_ns.idr` };
        }
      }
    }
    if (fdSocks.size) {
      const hashed = new Set<bigint>();
      for (const { sk } of kernelTableSocks(k, anomalies)) hashed.add(sk);
      for (const [sk, s] of fdSocks) if (!hashed.has(sk)) yield { kind: 'socket-not-in-table', object: sk, pid: s.pid, detail: `${s.what} held by pid ${s.pid} is in no hash table` };
    }
  },
});
