/** threads: every thread of every process (signal->thread_head), with its own state. */
import { definePlugin } from '../plugin.js';
import { forEachThread, PID_OPTION, pidFilter, snapshotProcesses, taskStateLetter } from '../tasks.js';
import { WalkBudget } from '../walk/common.js';
import { taskKey, taskStartTimeNs } from '../identity.js';

export interface ThreadsRow {
  offset: bigint;
  /** task->start_boottime: with offset, the task's identity across passes (not a column). */
  startTime: bigint;
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
    { key: 'state', kind: 'str' },
    { key: 'leader', kind: 'bool' },
    { key: 'comm', kind: 'str' },
  ],
  key: (r) => taskKey(r.tid, r.offset, r.startTime),
  *run(k, { options, anomalies }) {
    const budget = new WalkBudget(); // one node budget for every walk of this run
    const pids = pidFilter(options.pid);
    const { leaders } = snapshotProcesses(k, anomalies);
    for (const leader of leaders) {
      const pid = leader.s32('tgid');
      if (pids && !pids.has(pid)) continue;
      for (const t of forEachThread(k, leader, anomalies, { budget })) {
        yield { offset: t.address, startTime: taskStartTimeNs(t), pid, tid: t.s32('pid'), comm: t.str('comm'), state: taskStateLetter(t), leader: t.address === leader.address };
      }
    }
  },
});
