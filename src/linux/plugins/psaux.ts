/**
 * psaux: processes with their full command line, read from user memory
 * (mm->arg_start..arg_end) through each process's own page tables.
 */
import { bootWallClockNs, startedAt } from '../boot-time.js';
import { absent, definePlugin, isAbsent, type Absent } from '../plugin.js';
import { PID_OPTION, pidFilter, readObject, snapshotProcesses, taskInfo } from '../tasks.js';
import { processArgv } from '../user-memory.js';
import { taskKey } from '../identity.js';

export interface PsauxRow {
  offset: bigint;
  /** task->start_boottime (ns since boot): with offset, the task's identity across passes. */
  startTime: bigint;
  /** The start as a wall-clock date (boot time from the kernel's timekeeper + startTime), as Volatility 3 shows it. */
  started: string | Absent;
  pid: number;
  ppid: number;
  comm: string;
  /** argv, or [comm] in brackets for kernel threads as ps shows them. */
  argv: string[] | Absent;
  args: string;
}

export default definePlugin<PsauxRow>()({
  name: 'psaux',
  aliases: ['linux.psaux', 'linux.psaux.PsAux'],
  version: '1.0.0',
  summary: 'Processes with their full command line (argv from user memory)',
  requires: { symbols: ['init_task'], fields: [['task_struct', 'mm'], ['mm_struct', 'arg_start'], ['mm_struct', 'arg_end'], ['mm_struct', 'pgd']] },
  options: PID_OPTION,
  columns: [
    { key: 'offset', kind: 'hex' },
    { key: 'pid', kind: 'int' },
    { key: 'ppid', kind: 'int' },
    { key: 'comm', kind: 'str' },
    { key: 'startTime', title: 'start_ns', kind: 'int' },
    { key: 'started', kind: 'str' },
    { key: 'args', kind: 'str' },
    { key: 'argv', kind: 'str', jsonOnly: true },
  ],
  key: (r) => taskKey(r.pid, r.offset, r.startTime),
  *run(k, { options, anomalies }) {
    const pids = pidFilter(options.pid);
    const { leaders, tgidOf } = snapshotProcesses(k, anomalies);
    const boot = bootWallClockNs(k, anomalies);
    for (const t of leaders) {
      const info = taskInfo(k, t, anomalies, tgidOf);
      if (pids && !pids.has(info.pid)) continue;
      let argv: string[] | Absent = absent('not-applicable', 'kernel thread');
      if (info.mm !== 0n) {
        const mm = readObject(k, 'mm_struct', info.mm, anomalies, 'task_struct.mm');
        argv = mm ? processArgv(k, mm, anomalies) : absent('unreadable', 'mm unreadable');
      }
      const args = isAbsent(argv) ? `[${info.comm}]` : argv.join(' ');
      yield { offset: info.task, startTime: info.startTimeNs, started: startedAt(boot, info.startTimeNs), pid: info.pid, ppid: info.ppid, comm: info.comm, argv, args };
    }
  },
});
