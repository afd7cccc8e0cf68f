/** threads: every thread of every process (signal->thread_head), with its own state. */
import { bootWallClockNs, startedAt } from '../boot-time.js';
import { definePlugin, type Absent } from '../plugin.js';
import { forEachThread, PID_OPTION, pidFilter, snapshotProcesses, taskStateLetter } from '../tasks.js';
import { WalkBudget } from '../walk/common.js';
import { taskKey, taskStartTimeNs } from '../identity.js';

export interface ThreadsRow {
  offset: bigint;
  /** task->start_boottime (ns since boot): with offset, the task's identity across passes. */
  startTime: bigint;
  /** The start as a wall-clock date (boot time from the kernel's timekeeper + startTime), as Volatility 3 shows it. */
  started: string | Absent;
  pid: number;
  tid: number;
  comm: string;
  state: string;
  leader: boolean;
}

export default definePlugin<ThreadsRow>()({
  name: 'threads',
  aliases: ['linux.pslist.threads'],
  version: '1.0.0',
  summary: 'Threads of each process (tid, comm, state)',
  requires: { symbols: ['init_task'], fields: [['task_struct', 'tasks'], ['task_struct', 'signal']], anyOf: [[['signal_struct', 'thread_head'], ['task_struct', 'thread_group']]] },
  options: PID_OPTION,
  columns: [
    { key: 'offset', kind: 'hex' },
    { key: 'pid', kind: 'int' },
    { key: 'tid', kind: 'int' },
    { key: 'startTime', title: 'start_ns', kind: 'int' },
    { key: 'started', kind: 'str' },
    { key: 'state', kind: 'str' },
    { key: 'leader', kind: 'bool' },
    { key: 'comm', kind: 'str' },
  ],
  key: (r) => taskKey(r.tid, r.offset, r.startTime),
  *run(k, { options, anomalies }) {
    const budget = new WalkBudget(); // one node budget for every walk of this run
    const pids = pidFilter(options.pid);
    const { leaders } = snapshotProcesses(k, anomalies);
    const boot = bootWallClockNs(k, anomalies);
    for (const leader of leaders) {
      const pid = leader.s32('tgid');
      if (pids && !pids.has(pid)) continue;
      for (const t of forEachThread(k, leader, anomalies, { budget })) {
        const startTime = taskStartTimeNs(t);
        yield { offset: t.address, startTime, started: startedAt(boot, startTime), pid, tid: t.s32('pid'), comm: t.str('comm'), state: taskStateLetter(t), leader: t.address === leader.address };
      }
    }
  },
});
