/**
 * psxview: cross-view process detection. Each task is looked up in
 * independent kernel structures: the task list (and the thread lists of the
 * processes on it), the pid allocator's IDR, the parents' children lists,
 * and the CPUs' run queues. A task that some view has but the task list
 * lacks is flagged hidden (a rootkit unlinking itself from init_task.tasks).
 */
import { FaultError } from '../../core/errors.js';
import type { ObjValue } from '../../profile/typed.js';
import { definePlugin } from '../plugin.js';
import { pidIdrTasks } from '../pids.js';
import { runQueueTasks } from '../sched.js';
import { forEachThread, initTask, readObject, snapshotProcesses } from '../tasks.js';
import { listForEachEntry } from '../walk/list.js';
import { WalkBudget } from '../walk/common.js';
import { taskKey, taskStartTimeNs } from '../identity.js';

export interface PsxviewRow {
  offset: bigint;
  /** task->start_boottime: with offset, the task's identity across passes (not a column). */
  startTime: bigint;
  pid: number;
  tgid: number;
  comm: string;
  /** On init_task.tasks, or a thread of a process that is. */
  pslist: boolean;
  pidIdr: boolean;
  children: boolean;
  runQueue: boolean;
  /** In another view but not in the task list. */
  hidden: boolean;
}

export default definePlugin<PsxviewRow>()({
  name: 'psxview',
  aliases: ['linux.psxview', 'linux.psxview.PsXView'],
  version: '1.0.0',
  summary: 'Cross-view process listing: task list vs pid IDR vs children lists vs run queues (hidden processes)',
  requires: {
    symbols: ['init_task', 'init_pid_ns'],
    fields: [
      ['task_struct', 'tasks'],
      ['task_struct', 'children'],
      ['task_struct', 'sibling'],
      ['task_struct', 'pid_links'],
      ['pid_namespace', 'idr'],
      ['pid', 'tasks'],
    ],
  },
  options: {},
  columns: [
    { key: 'offset', kind: 'hex' },
    { key: 'pid', kind: 'int' },
    { key: 'tgid', kind: 'int' },
    { key: 'comm', kind: 'str' },
    { key: 'pslist', kind: 'bool' },
    { key: 'pidIdr', title: 'pid_idr', kind: 'bool' },
    { key: 'children', kind: 'bool' },
    { key: 'runQueue', title: 'run_queue', kind: 'bool' },
    { key: 'hidden', kind: 'bool' },
  ],
  key: (r) => taskKey(r.pid, r.offset, r.startTime),
  *run(k, { anomalies }) {
    const budget = new WalkBudget(); // one node budget for every walk of this run
    const tasks = new Map<bigint, ObjValue | undefined>();
    const pslist = new Set<bigint>();
    const { leaders } = snapshotProcesses(k, anomalies);
    for (const leader of leaders) {
      for (const t of forEachThread(k, leader, anomalies, { budget })) {
        pslist.add(t.address);
        tasks.set(t.address, t);
      }
    }
    const idr = new Set<bigint>();
    for (const { task } of pidIdrTasks(k, anomalies)) {
      idr.add(task);
      if (!tasks.has(task)) tasks.set(task, undefined);
    }
    // Children lists of every task known so far (and of tasks found that way).
    const children = new Set<bigint>();
    const parents = [initTask(k), ...tasks.keys()]; // the swapper parents pid 1 and kthreadd
    const visited = new Set<bigint>();
    for (let i = 0; i < parents.length && i < 1 << 20; i++) {
      const p = parents[i]!;
      if (visited.has(p)) continue;
      visited.add(p);
      const head = k.typed.obj('task_struct', p).addrOf('children');
      for (const child of listForEachEntry(k.typed, head, 'task_struct', 'sibling', { anomalies, where: 'task_struct.children', limit: 65536, budget })) {
        children.add(child.address);
        if (!tasks.has(child.address)) {
          tasks.set(child.address, undefined);
          parents.push(child.address);
        }
      }
    }
    let rq = new Set<bigint>();
    try {
      rq = runQueueTasks(k, anomalies);
    } catch (e) {
      if (!(e instanceof FaultError)) throw e;
      anomalies.add({ kind: 'fault', where: 'runqueues', detail: e.message });
    }
    for (const t of rq) if (!tasks.has(t)) tasks.set(t, undefined);
    const rows: PsxviewRow[] = [];
    for (const [addr, known] of tasks) {
      const t = known ?? readObject(k, 'task_struct', addr, anomalies, 'psxview');
      if (!t) continue;
      const pid = t.s32('pid');
      if (pid === 0) continue; // idle tasks (swapper/N) are on no list by design
      const inList = pslist.has(addr);
      const row: PsxviewRow = {
        offset: addr,
        startTime: taskStartTimeNs(t),
        pid,
        tgid: t.s32('tgid'),
        comm: t.str('comm'),
        pslist: inList,
        pidIdr: idr.has(addr),
        children: children.has(addr),
        runQueue: rq.has(addr),
        hidden: false,
      };
      // Threads are not on children lists; a leader missing from the task list is hidden if any other view has it.
      row.hidden = !inList && (row.pidIdr || row.children || row.runQueue);
      rows.push(row);
    }
    rows.sort((a, b) => a.pid - b.pid);
    yield* rows;
  },
});
