/**
 * pstree: the process tree by real_parent, depth-first from the roots
 * (pid 1, kthreadd, and any process whose parent is not listed).
 */
import { bootWallClockNs, startedAt } from '../boot-time.js';
import { definePlugin, type Absent } from '../plugin.js';
import { PID_OPTION, pidFilter, snapshotProcesses, taskInfo, type TaskInfo } from '../tasks.js';
import { taskKey } from '../identity.js';

export interface PstreeRow {
  offset: bigint;
  /** task->start_boottime (ns since boot): with offset, the task's identity across passes. */
  startTime: bigint;
  /** The start as a wall-clock date (boot time from the kernel's timekeeper + startTime), as Volatility 3 shows it. */
  started: string | Absent;
  pid: number;
  ppid: number;
  depth: number;
  /** comm indented by depth, for the table view. */
  tree: string;
  comm: string;
  /** Key of the parent row ('' for a root): the tree as data. */
  parent: string;
}

/** Bound on tree depth (a forged parent chain cannot recurse forever: every task is emitted once). */
const MAX_DEPTH = 1024;

export default definePlugin<PstreeRow>()({
  name: 'pstree',
  aliases: ['linux.pstree', 'linux.pstree.PsTree'],
  version: '1.0.0',
  summary: 'Process tree (parent/child by real_parent)',
  requires: { symbols: ['init_task'], fields: [['task_struct', 'tasks'], ['task_struct', 'real_parent']] },
  options: PID_OPTION,
  columns: [
    { key: 'offset', kind: 'hex' },
    { key: 'pid', kind: 'int' },
    { key: 'ppid', kind: 'int' },
    { key: 'depth', kind: 'int' },
    { key: 'startTime', title: 'start_ns', kind: 'int' },
    { key: 'started', kind: 'str' },
    { key: 'tree', kind: 'str' },
  ],
  key: (r) => taskKey(r.pid, r.offset, r.startTime),
  *run(k, { options, anomalies }) {
    const pids = pidFilter(options.pid);
    const { leaders, tgidOf } = snapshotProcesses(k, anomalies);
    const boot = bootWallClockNs(k, anomalies);
    const infos = leaders.map((t) => taskInfo(k, t, anomalies, tgidOf));
    const byTask = new Map<bigint, TaskInfo>(infos.map((i) => [i.task, i]));
    const children = new Map<bigint, TaskInfo[]>();
    const roots: TaskInfo[] = [];
    for (const i of infos) {
      if (byTask.has(i.realParent) && i.realParent !== i.task) {
        const list = children.get(i.realParent) ?? [];
        list.push(i);
        children.set(i.realParent, list);
      } else roots.push(i);
    }
    const key = (i: TaskInfo): string => taskKey(i.pid, i.task, i.startTimeNs);
    const emitted = new Set<bigint>();
    // With --pid: the selected processes and their descendants.
    const starts = pids ? infos.filter((i) => pids.has(i.pid)) : roots;
    const stack: { info: TaskInfo; depth: number; parent: string }[] = starts
      .slice()
      .reverse()
      .map((info) => ({ info, depth: 0, parent: byTask.has(info.realParent) && info.realParent !== info.task ? key(byTask.get(info.realParent)!) : '' }));
    while (stack.length) {
      const { info, depth, parent } = stack.pop()!;
      if (emitted.has(info.task)) continue;
      emitted.add(info.task);
      yield { offset: info.task, startTime: info.startTimeNs, started: startedAt(boot, info.startTimeNs), pid: info.pid, ppid: info.ppid, depth, tree: `${'.'.repeat(depth)}${info.comm}`, comm: info.comm, parent };
      if (depth >= MAX_DEPTH) continue;
      const kids = children.get(info.task) ?? [];
      for (let j = kids.length - 1; j >= 0; j--) stack.push({ info: kids[j]!, depth: depth + 1, parent: key(info) });
    }
    // Tasks only reachable through a parent cycle are still shown, as roots.
    if (!pids) {
      for (const i of infos) {
        if (emitted.has(i.task)) continue;
        anomalies.add({ kind: 'cycle', where: 'task_struct.real_parent', address: i.task, detail: `pid ${i.pid} is not reachable from a root` });
        emitted.add(i.task);
        yield { offset: i.task, startTime: i.startTimeNs, started: startedAt(boot, i.startTimeNs), pid: i.pid, ppid: i.ppid, depth: 0, tree: i.comm, comm: i.comm, parent: '' };
      }
    }
  },
});
