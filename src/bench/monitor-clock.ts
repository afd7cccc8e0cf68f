/**
 * Host time → guest CLOCK_MONOTONIC, for the monitor benchmark's detection latencies.
 *
 * The guest's timekeeper (shadow_timekeeper, a copy of tk_core.timekeeper that every tick updates first)
 * holds the monotonic time at its last clocksource read: tkr_mono.base + (tkr_mono.xtime_nsec >> shift).
 * Polling it tightly from the host, a change seen at host instant `now` proves guest ≥ g at now, so
 * every tick gives a lower bound on offset = guest − host, and the largest over many ticks is the estimate
 * (calibrate with the guest busy, so it ticks every 4 ms). An upper bound cannot come from the timekeeper
 * on this machine: under TCG on a loaded host a tick's write lands up to ~10 ms after its clock read, so
 * the upper side comes from the guest reporting its clock for a host request (`vmi-helper now` through lab
 * exec: guest t ≤ offset + host send time), loose by the exec channel's latency. Calibrating before and after
 * a measured window and interpolating removes the drift between the two clocks.
 */
import type { Kernel } from '../linux/kernel.js';
import { GuestView } from '../monitor/guest-view.js';

export interface ClockFix {
  /** Host process.hrtime ns at the middle of the calibration. */
  readonly hostNs: number;
  /** guest CLOCK_MONOTONIC − host hrtime, ns: the largest proven lower bound. */
  readonly offsetNs: number;
  /** How far above offsetNs the true offset may lie (from the exec round trips), ns. */
  readonly errorNs: number;
  /** Ticks seen (each one bracket). */
  readonly ticks: number;
}

export interface ClockMap {
  readonly before: ClockFix;
  readonly after: ClockFix;
  /** Guest-clock drift against the host clock, parts per million. */
  readonly driftPpm: number;
  /** Guest ns at a host hrtime ns. */
  guestAt(hostNs: number): number;
  /** guestAt may be early by at most this (never late): measured latencies are low by at most this, ns. */
  readonly errorNs: number;
}

const hr = (): number => Number(process.hrtime.bigint());

/** Reads the guest's monotonic time at its timekeeper's last update, straight from guest memory. */
export class GuestClock {
  private readonly dv: DataView;
  private readonly at: number;
  private readonly base: number;
  private readonly xtime: number;
  private readonly shift: number;

  constructor(kernel: Kernel) {
    const db = kernel.types;
    let tk: bigint;
    try {
      tk = kernel.symbol('shadow_timekeeper');
    } catch {
      tk = kernel.symbol('tk_core') + 8n; // struct { seqcount_raw_spinlock_t seq; struct timekeeper timekeeper; }
    }
    const mono = db.offsetOf('timekeeper', 'tkr_mono');
    this.base = mono + db.offsetOf('tk_read_base', 'base');
    this.xtime = mono + db.offsetOf('tk_read_base', 'xtime_nsec');
    this.shift = mono + db.offsetOf('tk_read_base', 'shift');
    const view = new GuestView(kernel);
    const len = Math.max(this.base, this.xtime, this.shift) + 8;
    const pa = view.pa(tk);
    const w = pa === undefined ? undefined : view.window(pa, len);
    if (!w || !view.zeroCopy) throw new Error('bench monitor: the guest timekeeper is not in a mapped view (needs the live map)');
    this.dv = w.dv;
    this.at = w.at;
  }

  /** The guest's monotonic ns at the timekeeper's last clock read, or undefined on a torn read. */
  read(): number | undefined {
    const b1 = this.u64(this.base);
    const x = this.u64(this.xtime);
    const s = this.dv.getUint32(this.at + this.shift, true);
    const b2 = this.u64(this.base);
    if (b1 !== b2 || s > 63) return undefined;
    return b1 + Math.floor(x / 2 ** s);
  }

  /** Polls tightly for `ms` (blocking the event loop on purpose); `upperNs` is a proven upper bound on the offset. */
  calibrate(ms: number, upperNs = Infinity): ClockFix {
    let lo = -Infinity;
    let ticks = 0;
    const start = hr();
    const end = start + ms * 1e6;
    let last = this.read();
    let prevHost = hr();
    for (;;) {
      const g = this.read();
      const now = hr();
      if (g !== undefined && last !== undefined && g !== last) {
        // g is the guest time at cycle_last: at or before the tick's clock read, which was before now.
        lo = Math.max(lo, g - now);
        ticks++;
      }
      if (g !== undefined) last = g;
      prevHost = now;
      if (now >= end) break;
    }
    if (!ticks) throw new Error(`bench monitor: the guest timekeeper did not tick in ${ms} ms`);
    return { hostNs: (start + end) / 2, offsetNs: lo, errorNs: Math.max(0, upperNs - lo), ticks };
  }

  private u64(off: number): number {
    return this.dv.getUint32(this.at + off + 4, true) * 4294967296 + this.dv.getUint32(this.at + off, true);
  }
}

/** A linear host→guest map from two calibrations around a measured window. */
export function clockMap(before: ClockFix, after: ClockFix): ClockMap {
  const span = after.hostNs - before.hostNs;
  const slope = span > 0 ? (after.offsetNs - before.offsetNs) / span : 0;
  return {
    before,
    after,
    driftPpm: slope * 1e6,
    guestAt: (h) => h + before.offsetNs + slope * (h - before.hostNs),
    errorNs: Math.max(before.errorNs, after.errorNs),
  };
}

export const hostNs = hr;
