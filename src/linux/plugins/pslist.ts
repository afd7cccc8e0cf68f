/**
 * pslist: processes from the init_task.tasks list (threads on request),
 * with the facts /proc/<pid>/stat and status show.
 */
import { bootWallClockNs, startedAt } from '../boot-time.js';
import { definePlugin, absent, type Absent } from '../plugin.js';
import type { ObjValue } from '../../profile/typed.js';
import { forEachThread, PID_OPTION, pidFilter, prefetchPointees, snapshotProcesses, taskInfo, threadCount } from '../tasks.js';
import { WalkBudget } from '../walk/common.js';
import { taskKey } from '../identity.js';

export interface PslistRow {
  offset: bigint;
  pid: number;
  tgid: number;
  ppid: number;
  uid: number | Absent;
  gid: number | Absent;
  euid: number | Absent;
  comm: string;
  state: string;
  /** Nanoseconds since boot. */
  startTime: bigint;
  /** The start as a wall-clock date (boot time from the kernel's timekeeper + startTime), as Volatility 3 shows it. */
  started: string | Absent;
  kthread: boolean;
  /** Threads in the group (1 per row with --threads). */
  threads: number | Absent;
}

export default definePlugin<PslistRow>()({
  name: 'pslist',
  aliases: ['linux.pslist', 'linux.pslist.PsList'],
  version: '1.0.0',
  summary: 'Processes from the kernel task list (pid, ppid, uids, comm, state, start time)',
  requires: {
    symbols: ['init_task'],
    fields: [
      ['task_struct', 'tasks'],
      ['task_struct', 'pid'],
      ['task_struct', 'tgid'],
      ['task_struct', 'comm'],
      ['task_struct', 'real_parent'],
      ['task_struct', 'cred'],
      ['cred', 'euid'],
    ],
    anyOf: [[['task_struct', '__state'], ['task_struct', 'state']]],
  },
  options: {
    ...PID_OPTION,
    threads: { type: 'boolean', description: 'also list every thread of each process', byDefault: 'thread group leaders only' },
  },
  columns: [
    { key: 'offset', kind: 'hex' },
    { key: 'pid', kind: 'int' },
    { key: 'tgid', kind: 'int' },
    { key: 'ppid', kind: 'int' },
    { key: 'uid', kind: 'int' },
    { key: 'gid', kind: 'int' },
    { key: 'euid', kind: 'int' },
    { key: 'state', kind: 'str' },
    { key: 'startTime', title: 'start_ns', kind: 'int' },
    { key: 'started', kind: 'str' },
    { key: 'threads', kind: 'int' },
    { key: 'kthread', kind: 'bool' },
    { key: 'comm', kind: 'str' },
  ],
  key: (r) => taskKey(r.pid, r.offset, r.startTime),
  *run(k, { options, anomalies }) {
    const budget = new WalkBudget(); // one node budget for every walk of this run
    const pids = pidFilter(options.pid);
    const { leaders, tgidOf } = snapshotProcesses(k, anomalies);
    // Every leader's cred and signal_struct are read next: one batch, on a source read in pass blocks.
    prefetchPointees(k, leaders, [
      ['cred', 'cred'],
      ['signal', 'signal_struct'],
    ]);
    const boot = bootWallClockNs(k, anomalies);
    const none = absent('unreadable', 'cred unreadable');
    const row = (t: ObjValue, threads: () => number | Absent): PslistRow | undefined => {
      if (pids && !pids.has(t.s32('pid')) && !pids.has(t.s32('tgid'))) return undefined;
      const info = taskInfo(k, t, anomalies, tgidOf);
      const c = info.creds;
      return {
        offset: info.task,
        pid: info.pid,
        tgid: info.tgid,
        ppid: info.ppid,
        uid: c ? c.uid : none,
        gid: c ? c.gid : none,
        euid: c ? c.euid : none,
        comm: info.comm,
        state: info.state,
        startTime: info.startTimeNs,
        started: startedAt(boot, info.startTimeNs),
        kthread: info.kthread,
        threads: threads(),
      };
    };
    for (const leader of leaders) {
      if (options.threads) {
        for (const t of forEachThread(k, leader, anomalies, { budget })) {
          const r = row(t, () => 1);
          if (r) yield r;
        }
      } else {
        const r = row(leader, () => threadCount(k, leader, anomalies) ?? absent('unreadable'));
        if (r) yield r;
      }
    }
  },
});
