/**
 * The study's cross-view check (the "object seen in one view and not the
 * other" anomaly of issue 9): within one run, the task list against the pid
 * allocator's IDR (thread-group leaders both ways), and sockets held in fd
 * tables against the kernel's socket hash tables (a TCP socket ESTABLISHED
 * or LISTEN, or a bound UDP socket, is hashed while it is in that state).
 * A live read racing fork/exit or connect/close sees one view updated and
 * not yet the other; a paused guest mid-update shows the same (intrinsic).
 * One row per mismatch, with its kind.
 */
import { taskFiles } from '../../linux/files.js';
import { PathResolver } from '../../linux/fs-path.js';
import { kernelTableSocks } from '../../linux/net/inet-hashtables.js';
import { decodeSocket } from '../../linux/net/sock.js';
import { pidIdrTasks } from '../../linux/pids.js';
import { definePlugin } from '../../linux/plugin.js';
import { forEachProcess, readObject } from '../../linux/tasks.js';

export type CrossViewKind = 'task-not-in-list' | 'task-not-in-pid-idr' | 'socket-not-in-table';

export interface CrossViewRow {
  kind: CrossViewKind;
  /** task_struct or struct sock address. */
  object: bigint;
  pid: number;
  detail: string;
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
    const paths = new PathResolver(k, anomalies);
    const listed = new Map<bigint, number>();
    const fdSocks = new Map<bigint, { pid: number; what: string }>();
    for (const task of forEachProcess(k, anomalies)) {
      const pid = task.s32('pid');
      listed.set(task.address, pid);
      for (const f of taskFiles(k, task, paths, anomalies)) {
        if (f.kind !== 'socket' || f.socket === undefined) continue;
        const info = decodeSocket(k, f.socket, anomalies);
        if (info && mustBeHashed(info.proto, info.stateName, info.local?.port)) fdSocks.set(info.sock, { pid, what: `${info.proto} ${info.stateName} port ${info.local?.port ?? '?'}` });
      }
    }
    const leaders = new Set<bigint>();
    for (const { nr, task } of pidIdrTasks(k, anomalies)) {
      const t = readObject(k, 'task_struct', task, anomalies, 'xview: pid.tasks');
      if (!t || t.s32('pid') !== t.s32('tgid')) continue; // a thread: not on the task list by design
      leaders.add(task);
      if (!listed.has(task)) yield { kind: 'task-not-in-list', object: task, pid: nr, detail: `pid ${nr} (${t.str('comm')}) has its pid but is not on init_task.tasks` };
    }
    for (const [task, pid] of listed) {
      if (pid > 0 && !leaders.has(task)) yield { kind: 'task-not-in-pid-idr', object: task, pid, detail: `pid ${pid} is on the task list but not in init_pid_ns.idr` };
    }
    if (fdSocks.size) {
      const hashed = new Set<bigint>();
      for (const { sk } of kernelTableSocks(k, anomalies)) hashed.add(sk);
      for (const [sk, s] of fdSocks) if (!hashed.has(sk)) yield { kind: 'socket-not-in-table', object: sk, pid: s.pid, detail: `${s.what} held by pid ${s.pid} is in no hash table` };
    }
  },
});
