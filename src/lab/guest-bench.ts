/**
 * In-guest benchmarks for the VMI trade-off study: `vmi-helper bench KIND
 * SECONDS` runs a workload inside the lab guest and prints one line
 * `VMI-BENCH kind=K seconds=S ops=N rate=R unit=U`; runGuestBench runs it
 * through the exec channel and parses that line.
 */
import { LabError } from '../core/errors.js';
import { labExec } from './exec.js';
import type { LabGuest } from './guests.js';

export const GUEST_BENCH_KINDS = ['cpu', 'mem', 'fork', 'net', 'file'] as const;
export type GuestBenchKind = (typeof GUEST_BENCH_KINDS)[number];

export interface GuestBenchResult {
  kind: GuestBenchKind;
  /** Work per second in `unit` (MB/s for cpu, mem, net and file; forks/s for fork). */
  rate: number;
  unit: string;
  /** Seconds the workload actually ran (measured in the guest on CLOCK_MONOTONIC). */
  seconds: number;
  ops: number;
}

const LINE = /^VMI-BENCH kind=(\S+) seconds=([0-9.]+) ops=(\d+) rate=([0-9.]+) unit=(\S+)$/m;

/** The VMI-BENCH line of a bench run's output, or undefined when there is none. */
export function parseBenchLine(text: string): GuestBenchResult | undefined {
  const m = LINE.exec(text);
  if (!m) return undefined;
  const kind = m[1] as GuestBenchKind;
  if (!GUEST_BENCH_KINDS.includes(kind)) return undefined;
  const seconds = Number(m[2]);
  const rate = Number(m[4]);
  const ops = Number(m[3]);
  if (![seconds, rate, ops].every(Number.isFinite)) return undefined;
  return { kind, rate, unit: m[5]!, seconds, ops };
}

/** Runs one in-guest benchmark for about `seconds` and returns its result. */
export async function runGuestBench(guest: LabGuest | string, kind: GuestBenchKind, seconds: number): Promise<GuestBenchResult> {
  if (!GUEST_BENCH_KINDS.includes(kind)) throw new LabError(`unknown guest bench '${String(kind)}'`, { hint: `use one of ${GUEST_BENCH_KINDS.join(', ')}` });
  if (!(seconds > 0 && seconds <= 3600)) throw new LabError(`guest bench seconds ${seconds} must be in (0, 3600]`);
  const r = await labExec(guest, ['/bin/vmi-helper', 'bench', kind, String(seconds)], { timeoutMs: seconds * 1000 + 120_000 });
  const parsed = parseBenchLine(r.stdout.toString('utf8'));
  if (r.exitCode !== 0 || !parsed) {
    const why = r.stderr.toString('utf8').trim() || (r.timedOut ? 'timed out' : `exit ${r.exitCode ?? `signal ${r.signal}`}`);
    throw new LabError(`guest bench ${kind} failed: ${why}`);
  }
  return parsed;
}
