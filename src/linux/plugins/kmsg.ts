/**
 * kmsg: the kernel log from the printk ring buffer (every committed or
 * finalized record, the newest included), or log_buf on older kernels.
 */
import { UsageError } from '../../core/errors.js';
import { definePlugin } from '../plugin.js';
import { readKernelLog } from '../printk.js';

export interface KmsgRow {
  seq: bigint;
  /** Seconds since boot, microsecond precision (as dmesg prints it). */
  time: number;
  level: number;
  facility: number;
  caller: string;
  text: string;
}

export default definePlugin<KmsgRow>()({
  name: 'kmsg',
  aliases: ['dmesg', 'linux.kmsg', 'linux.kmsg.Kmsg'],
  version: '1.0.0',
  summary: 'Kernel log records from the printk ring buffer (like dmesg)',
  requires: { anyOf: [[['printk_ringbuffer', 'desc_ring'], ['printk_log', 'text_len']]] },
  options: { limit: { type: 'string', valueName: 'N', description: 'only the last N records', byDefault: 'every record in the ring' } },
  columns: [
    { key: 'seq', kind: 'int' },
    { key: 'time', kind: 'float', decimals: 6 },
    { key: 'level', kind: 'int' },
    { key: 'facility', kind: 'int' },
    { key: 'caller', kind: 'str' },
    { key: 'text', kind: 'str' },
  ],
  key: (r) => r.seq.toString(),
  *run(k, { options, anomalies }) {
    let limit: number | undefined;
    if (typeof options['limit'] === 'string') {
      if (!/^\d+$/.test(options['limit'])) throw new UsageError(`--limit expects a number of records, got '${options['limit']}'`);
      limit = Number(options['limit']);
    }
    for (const r of readKernelLog(k, anomalies, limit !== undefined ? { limit } : {})) {
      yield {
        seq: r.seq,
        time: Number(r.tsNsec / 1000n) / 1e6,
        level: r.level,
        facility: r.facility,
        caller: `${r.callerIsCpu ? 'C' : 'T'}${r.caller}`,
        text: r.text,
      };
    }
  },
});
