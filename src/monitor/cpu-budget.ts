/**
 * The monitor's CPU budget: the largest share of one core its process may use, held by stretching the
 * sleep between ticks. Measured with the process's own CPU time (process.cpuUsage: the loop, the sinks'
 * JSON and SQLite work, timers, GC), not with the wall time of a tick: on a loaded host a tick's wall time
 * includes time spent descheduled, and a sink's work happens outside the tick.
 *
 * Over a window of at least WINDOW_MS, the time slept is what makes cpu / wall ≤ budget; the window starts
 * again only when the process is back within the budget, so no debt is forgotten.
 */

/** Shortest accounting window. */
const WINDOW_MS = 1000;

export class CpuBudget {
  private wallAt: number;
  private cpuAt: NodeJS.CpuUsage;
  /** Sleeps stretched beyond the interval to stay within the budget (an event storm). */
  stretched = 0;

  constructor(
    /** Share of one core, 0 < budget ≤ 1. */
    readonly budget: number,
    private readonly now: () => number = () => performance.now(),
    private readonly cpu: (since?: NodeJS.CpuUsage) => NodeJS.CpuUsage = (since) => process.cpuUsage(since),
  ) {
    this.wallAt = now();
    this.cpuAt = cpu();
  }

  /** How long to sleep now (ms): at least `intervalMs`, longer while the process is over its budget. */
  rest(intervalMs: number): number {
    const t = this.now();
    const used = this.cpu(this.cpuAt);
    const cpuMs = (used.user + used.system) / 1000;
    const elapsed = t - this.wallAt;
    const owed = cpuMs / this.budget - elapsed;
    if (owed > intervalMs) {
      this.stretched++;
      return owed;
    }
    if (elapsed >= WINDOW_MS) {
      this.wallAt = t;
      this.cpuAt = this.cpu();
    }
    return intervalMs;
  }
}
