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
import type { AddressSpace } from '../../arch/address-space.js';
import { gva } from '../../core/address.js';
import type { AnomalySink } from '../anomaly.js';
import { processSpace } from '../user-memory.js';

/** Most heap bytes read per process. */
export const MAX_HEAP_BYTES = 64 << 20;

/** Highest user-space address (5-level paging). */
const USER_TOP = 1n << 56n;

/**
 * The heap's bytes: only its present pages are read (pages bash never touched have no frame and
 * read as zeros, which is what they hold); a present page that cannot be read is a fault.
 */
function readPresent(space: AddressSpace, start: bigint, end: bigint, anomalies: AnomalySink): Uint8Array | undefined {
  if (end > USER_TOP || start >= end) {
    anomalies.add({ kind: 'invalid', where: 'mm_struct.brk', address: start, detail: `heap 0x${start.toString(16)}..0x${end.toString(16)} is not a user range` });
    return undefined;
  }
  if (end - start > BigInt(MAX_HEAP_BYTES)) {
    anomalies.add({ kind: 'truncated', where: 'bash heap', address: start, detail: `${end - start} bytes, read ${MAX_HEAP_BYTES}` });
    end = start + BigInt(MAX_HEAP_BYTES);
  }
  const heap = new Uint8Array(Number(end - start));
  const ops = [];
  for (const m of space.mappings({ start, end, limit: MAX_HEAP_BYTES / 4096 })) {
    const from = m.va > start ? m.va : start;
    const to = m.va + BigInt(m.size) < end ? m.va + BigInt(m.size) : end;
    if (to <= from) continue;
    ops.push({ va: gva(from), len: Number(to - from), dst: heap.subarray(Number(from - start), Number(to - start)) });
  }
  for (const f of space.readv(ops)) anomalies.add({ kind: 'fault', where: 'bash heap', address: f.va, detail: f.reason });
  return heap;
}

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
      const heap = readPresent(space, start, end, anomalies);
      if (!heap) continue;
      for (const h of scanBashHistory(heap, start)) yield { pid: p.pid, comm: p.comm, time: h.time, command: h.command, entry: h.address };
    }
  },
});
