/**
 * The wall-clock time the guest booted, from the kernel's own timekeeping, so that start times counted from
 * boot (task->start_boottime) read as dates, as Volatility 3 shows them.
 *
 * The kernel keeps realtime = monotonic + offs_real and boottime = monotonic + offs_boot in the timekeeper
 * (`tk_core.timekeeper`), so the realtime at boottime zero is offs_real - offs_boot: the value /proc/stat
 * reports as btime (getboottime64). tk_core is an anonymous struct, { seqcount; struct timekeeper; }, which
 * BTF does not describe as a variable: the timekeeper's offset in it is found by trying the offsets its
 * layout allows and keeping the one whose fields agree with each other (xtime_sec, the realtime seconds at
 * the last update, must equal tkr_mono.base + offs_real at that update, to the second).
 */
import type { AnomalySink } from './anomaly.js';
import type { Kernel } from './kernel.js';
import { absent, type Absent } from './plugin.js';
import { readObject } from './tasks.js';

const NS = 1_000_000_000n;
/** Where struct timekeeper can sit in tk_core: after a 4-byte seqcount padded to 8, or on the next cache line. */
const CANDIDATE_OFFSETS = [8n, 16n, 64n] as const;
/** Years a guest's clock may plausibly read (a garbled timekeeper gives seconds far outside). */
const MIN_EPOCH_S = 946_684_800n; // 2000-01-01
const MAX_EPOCH_S = 7_258_118_400n; // 2200-01-01

/** Boot time as nanoseconds since the Unix epoch, or why it is not known. */
export function bootWallClockNs(k: Kernel, anomalies: AnomalySink): bigint | Absent {
  if (!k.hasSymbol('tk_core')) return absent('not-available', 'no tk_core symbol (kallsyms without data symbols)');
  for (const f of ['offs_real', 'offs_boot', 'xtime_sec', 'tkr_mono.base'] as const)
    if (!k.types.hasMember('timekeeper', f)) return absent('not-available', `struct timekeeper has no ${f}`);
  const base = k.symbol('tk_core');
  for (const off of CANDIDATE_OFFSETS) {
    const tk = readObject(k, 'timekeeper', base + off, anomalies, 'tk_core.timekeeper');
    if (!tk) return absent('unreadable', 'tk_core.timekeeper could not be read');
    const xtimeSec = tk.u64('xtime_sec');
    const realAtUpdate = tk.s64('tkr_mono.base') + tk.s64('offs_real');
    if (xtimeSec < MIN_EPOCH_S || xtimeSec > MAX_EPOCH_S) continue;
    if (realAtUpdate / NS - xtimeSec > 1n || xtimeSec - realAtUpdate / NS > 1n) continue;
    return tk.s64('offs_real') - tk.s64('offs_boot');
  }
  anomalies.add({ kind: 'invalid', where: 'tk_core.timekeeper', address: base, detail: 'no offset where xtime_sec agrees with tkr_mono.base + offs_real' });
  return absent('unparsable', 'the timekeeper fields do not agree with each other');
}

/** Nanoseconds since the epoch as Volatility 3 prints a datetime: `2026-12-01 22:50:01.123456 UTC`. */
export function formatWallClock(ns: bigint): string {
  const ms = ns / 1_000_000n;
  const iso = new Date(Number(ms)).toISOString(); // 2026-12-01T22:50:01.123Z
  const micros = ((ns % NS) + NS) % NS / 1000n;
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}.${micros.toString().padStart(6, '0')} UTC`;
}

/** A start time counted from boot, as a wall-clock date (absent when the boot time is). */
export function startedAt(bootNs: bigint | Absent, sinceBootNs: bigint): string | Absent {
  return typeof bootNs === 'bigint' ? formatWallClock(bootNs + sinceBootNs) : bootNs;
}
