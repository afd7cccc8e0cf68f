/**
 * A monotonic clock in milliseconds, for timing steps. Node's global `performance` loads node:perf_hooks
 * and its eight internal modules on first use, 3 ms of a cold plugin run that only wants a difference of
 * two readings; process.hrtime is already there.
 */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}
