/**
 * envars: the environment of each process (mm->env_start..env_end from user
 * memory through the process's page tables), one row per variable.
 */
import { definePlugin, isAbsent } from '../plugin.js';
import { forEachProcessMm } from '../mm.js';
import { PID_OPTION, pidFilter } from '../tasks.js';
import { processEnviron } from '../user-memory.js';
import { taskKey, taskStartTimeNs } from '../identity.js';

export interface EnvarsRow {
  offset: bigint;
  /** task->start_boottime: with offset, the task's identity across passes (not a column). */
  startTime: bigint;
  pid: number;
  comm: string;
  /** Position in the environment block. */
  index: number;
  key: string;
  value: string;
}

export default definePlugin<EnvarsRow>()({
  name: 'envars',
  aliases: ['linux.envars', 'linux.envars.Envars'],
  version: '1.0.0',
  summary: 'Environment variables of each process (from user memory)',
  requires: { symbols: ['init_task'], fields: [['task_struct', 'mm'], ['mm_struct', 'env_start'], ['mm_struct', 'env_end'], ['mm_struct', 'pgd']] },
  options: PID_OPTION,
  columns: [
    { key: 'pid', kind: 'int' },
    { key: 'comm', kind: 'str' },
    { key: 'key', kind: 'str' },
    { key: 'value', kind: 'str' },
  ],
  key: (r) => `${taskKey(r.pid, r.offset, r.startTime)}:${r.index}:${r.key}`,
  *run(k, { options, anomalies }) {
    const pids = pidFilter(options.pid);
    for (const { task, pid, comm, mm } of forEachProcessMm(k, anomalies, pids)) {
      const env = processEnviron(k, mm, anomalies);
      if (isAbsent(env)) continue;
      let index = 0;
      for (const entry of env) {
        if (entry === '') {
          index++;
          continue;
        }
        const eq = entry.indexOf('=');
        yield { offset: task.address, startTime: taskStartTimeNs(task), pid, comm, index: index++, key: eq < 0 ? entry : entry.slice(0, eq), value: eq < 0 ? '' : entry.slice(eq + 1) };
      }
    }
  },
});
