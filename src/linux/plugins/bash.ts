/**
 * bash: command history of bash processes, recovered from each one's heap
 * ([start_brk, brk)) as readline keeps it (entries carrying a HISTTIMEFORMAT
 * timestamp; see linux/bash-history.ts). Like Volatility's linux.bash, it
 * looks at processes named bash unless --pid names others.
 */
import { forEachProcessMm } from '../mm.js';
import { scanBashHistory } from '../bash-history.js';
import { definePlugin } from '../plugin.js';
import { PID_OPTION, pidFilter } from '../tasks.js';
import { processSpace, readUserRange } from '../user-memory.js';

/** Most heap bytes read per process. */
export const MAX_HEAP_BYTES = 64 << 20;

export interface BashRow {
  pid: number;
  comm: string;
  time: bigint;
  command: string;
  entry: bigint;
}

export default definePlugin<BashRow>()({
  name: 'bash',
  aliases: ['linux.bash', 'linux.bash.Bash'],
  version: '1.0.0',
  summary: 'Command history of bash processes from their heaps (readline entries with HISTTIMEFORMAT timestamps)',
  requires: {
    symbols: ['init_task'],
    fields: [
      ['mm_struct', 'start_brk'],
      ['mm_struct', 'brk'],
      ['mm_struct', 'pgd'],
    ],
  },
  options: PID_OPTION,
  columns: [
    { key: 'pid', kind: 'int' },
    { key: 'comm', kind: 'str' },
    { key: 'time', kind: 'int' },
    { key: 'command', kind: 'str' },
    { key: 'entry', kind: 'hex' },
  ],
  key: (r) => `${r.pid}:${r.entry.toString(16)}`,
  *run(k, { options, anomalies }) {
    const pids = pidFilter(options.pid);
    for (const p of forEachProcessMm(k, anomalies, pids)) {
      if (!pids && p.comm !== 'bash') continue;
      const start = p.mm.u64('start_brk');
      const end = p.mm.u64('brk');
      if (end <= start) continue;
      const space = processSpace(k, p.mm, anomalies);
      if (!space) continue;
      const heap = readUserRange(space, start, end, anomalies, 'bash heap', MAX_HEAP_BYTES);
      if (!(heap instanceof Uint8Array)) continue;
      for (const h of scanBashHistory(heap, start)) yield { pid: p.pid, comm: p.comm, time: h.time, command: h.command, entry: h.address };
    }
  },
});
