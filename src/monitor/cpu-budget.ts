import { monotonicMs } from '../core/clock.js';
/**
 * The monitor's CPU budget: the largest share of one core its process may use, held by stretching the
 * sleep between ticks. Measured with the process's own CPU time (process.cpuUsage: the loop, the sinks'
 * JSON and SQLite work, timers, GC), not with the wall time of a tick: on a loaded host a tick's wall time
 * includes time spent descheduled, and a sink's work happens outside the tick.
 *
 * Accounted over a sliding window of about WINDOW_MS: when it is older, half of what it spent is kept as the
 * start of the next, so a sustained storm keeps its debt while one slow tick (a plugin sweep) in a calm
 * second stretches no sleep.
 */

/** Length of the accounting window. */
const WINDOW_MS = 1000;

export class CpuBudget {
  /** Start of the window (ms) and the CPU ms spent in it. */
  private from: number;
  private spentMs = 0;
  private cpuAt: NodeJS.CpuUsage;
  /** Sleeps stretched beyond the interval to stay within the budget (an event storm). */
  stretched = 0;

  constructor(
    /** Share of one core, 0 < budget ≤ 1. */
    readonly budget: number,
    private readonly now: () => number = () => monotonicMs(),
    private readonly cpu: (since?: NodeJS.CpuUsage) => NodeJS.CpuUsage = (since) => process.cpuUsage(since),
  ) {
    this.from = now() - WINDOW_MS / 2;
    this.cpuAt = cpu();
  }

  /** How long to sleep now (ms): at least `intervalMs`, longer while the process is over its budget. */
  rest(intervalMs: number): number {
    const t = this.now();
    const used = this.cpu(this.cpuAt);
    this.cpuAt = { user: this.cpuAt.user + used.user, system: this.cpuAt.system + used.system };
    this.spentMs += (used.user + used.system) / 1000;
    if (t - this.from > WINDOW_MS) {
      this.spentMs /= 2;
      this.from = t - WINDOW_MS / 2;
    }
    const owed = this.spentMs / this.budget - (t - this.from);
    if (owed > intervalMs) {
      this.stretched++;
      return owed;
    }
    return intervalMs;
  }
}
