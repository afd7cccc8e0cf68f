/**
 * envars: the environment of each process (mm->env_start..env_end from user
 * memory through the process's page tables), one row per variable.
 */
import { definePlugin, isAbsent } from '../plugin.js';
import { pidFilter, readObject, snapshotProcesses } from '../tasks.js';
import { processEnviron } from '../user-memory.js';

export interface EnvarsRow {
  offset: bigint;
  pid: number;
  comm: string;
  /** Position in the environment block. */
  index: number;
  key: string;
  value: string;
}

export default definePlugin<EnvarsRow>({
  name: 'envars',
  aliases: ['linux.envars', 'linux.envars.Envars'],
  version: '1.0.0',
  summary: 'Environment variables of each process (from user memory)',
  requires: { symbols: ['init_task'], fields: [['task_struct', 'mm'], ['mm_struct', 'env_start'], ['mm_struct', 'env_end'], ['mm_struct', 'pgd']] },
  options: { pid: { type: 'string', multiple: true } },
  columns: [
    { key: 'pid', kind: 'int' },
    { key: 'comm', kind: 'str' },
    { key: 'key', kind: 'str' },
    { key: 'value', kind: 'str' },
  ],
  key: (r) => `${r.pid}:${r.offset.toString(16)}:${r.index}`,
  *run(k, { options, anomalies }) {
    const pids = pidFilter(options.pid);
    const { leaders } = snapshotProcesses(k, anomalies);
    for (const t of leaders) {
      const pid = t.s32('pid');
      if (pids && !pids.has(pid)) continue;
      const mmVa = t.ptr('mm');
      if (mmVa === 0n) continue;
      const mm = readObject(k, 'mm_struct', mmVa, anomalies, 'task_struct.mm');
      if (!mm) continue;
      const env = processEnviron(k, mm, anomalies);
      if (isAbsent(env)) continue;
      const comm = t.str('comm');
      let index = 0;
      for (const entry of env) {
        if (entry === '') {
          index++;
          continue;
        }
        const eq = entry.indexOf('=');
        yield { offset: t.address, pid, comm, index: index++, key: eq < 0 ? entry : entry.slice(0, eq), value: eq < 0 ? '' : entry.slice(eq + 1) };
      }
    }
  },
});
