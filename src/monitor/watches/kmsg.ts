/**
 * Kernel log: every new printk record, in sequence order (kmsg's rows, keyed by sequence number). Wakes on
 * the ring buffer's descriptor ring head (`prb->desc_ring.head_id` moves on every record), with a sweep for
 * kernels with the legacy log buffer. A burst larger than the ring wraps past records we never saw: the
 * gap in sequence numbers is reported as an anomaly event, not lost silently.
 */
import kmsg, { type KmsgRow } from '../../linux/plugins/kmsg.js';
import type { EventDraft } from '../events.js';
import type { WatchContext } from '../watcher.js';
import type { WatchRange } from '../watch-set.js';
import { PluginWatch, rangesOf } from './plugin-watch.js';

function headRange(ctx: WatchContext): WatchRange[] {
  const k = ctx.kernel;
  try {
    if (!k.hasSymbol('prb') || !k.types.hasMember('printk_ringbuffer', 'desc_ring')) return [];
    const prb = k.space.readU64(k.symbol('prb'));
    const off = k.types.offsetOf('printk_ringbuffer', 'desc_ring') + k.types.offsetOf('prb_desc_ring', 'head_id');
    return rangesOf(ctx, prb + BigInt(off), 8);
  } catch {
    return [];
  }
}

export function kmsgWatch(sweepMs = 1000): PluginWatch<KmsgRow> {
  let lastSeq: bigint | undefined;
  return new PluginWatch<KmsgRow>({
    name: 'kmsg',
    plugin: kmsg,
    emits: ['kernel-log'],
    sweepMs,
    sentinels: headRange,
    diff(_prev, next) {
      const out: EventDraft[] = [];
      const rows = [...next.values()].sort((a, b) => (a.seq < b.seq ? -1 : a.seq > b.seq ? 1 : 0));
      if (lastSeq === undefined) {
        lastSeq = rows.at(-1)?.seq ?? -1n;
        return out;
      }
      const fresh = rows.filter((r) => r.seq > lastSeq!);
      if (fresh.length && fresh[0]!.seq > lastSeq + 1n)
        out.push({ type: 'anomaly', watch: 'kmsg', data: { what: 'kernel log records overwritten before they were read', lost: Number(fresh[0]!.seq - lastSeq - 1n) } });
      for (const r of fresh)
        out.push({ type: 'kernel-log', watch: 'kmsg', key: r.seq.toString(), data: { seq: Number(r.seq), time: r.time, level: r.level, facility: r.facility, caller: r.caller, text: r.text } });
      if (fresh.length) lastSeq = fresh.at(-1)!.seq;
      return out;
    },
  });
}
