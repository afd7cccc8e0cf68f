/** Small measuring helpers of the trade-off study: distributions, host and QEMU CPU, memory. */
import { readFileSync } from 'node:fs';
export { seededRandom } from '../../core/random.js';

export interface Distribution {
  readonly n: number;
  readonly mean: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
}

export function quantile(sorted: readonly number[], q: number): number {
  if (!sorted.length) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i]!;
}

export function distribution(xs: readonly number[]): Distribution {
  const s = [...xs].sort((a, b) => a - b);
  const round = (v: number) => (Number.isFinite(v) ? +v.toFixed(3) : NaN);
  return {
    n: s.length,
    mean: round(s.reduce((a, b) => a + b, 0) / (s.length || NaN)),
    p50: round(quantile(s, 0.5)),
    p90: round(quantile(s, 0.9)),
    p99: round(quantile(s, 0.99)),
    max: round(s[s.length - 1] ?? NaN),
  };
}

export function meanSd(xs: readonly number[]): { mean: number; sd: number } {
  if (!xs.length) return { mean: NaN, sd: NaN };
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd = xs.length > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1)) : 0;
  return { mean, sd };
}

/** Clock ticks per second of /proc/PID/stat times (USER_HZ: 100 on every Linux this runs on). */
const USER_HZ = 100;

/** CPU milliseconds (user + system) the process `pid` has used, from /proc/PID/stat; undefined when it is gone. */
export function processCpuMs(pid: number): number | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name may hold spaces and parentheses: fields are counted after the last ')'.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) return undefined;
  return ((utime + stime) * 1000) / USER_HZ;
}

/** Our own CPU milliseconds (user + system). */
export function selfCpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

export function rssMiB(): number {
  return process.memoryUsage().rss / (1 << 20);
}

/** Peak resident set of this process since it started, MiB (getrusage ru_maxrss). */
export function maxRssMiB(): number {
  return process.resourceUsage().maxRSS / 1024;
}

/** Two-sided 95 % Student t quantiles for 1…30 degrees of freedom (beyond: the normal 1.96). */
const T95 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145, 2.131, 2.12, 2.11, 2.101, 2.093, 2.086, 2.08, 2.074, 2.069, 2.064, 2.06, 2.056, 2.052, 2.048, 2.045, 2.042];

/** Mean and 95 % confidence interval of the mean (t distribution); NaN bounds with fewer than 2 values. */
export function meanCi95(xs: readonly number[]): { mean: number; lo: number; hi: number; half: number } {
  const { mean, sd } = meanSd(xs);
  if (xs.length < 2) return { mean, lo: NaN, hi: NaN, half: NaN };
  const half = (T95[xs.length - 2] ?? 1.96) * (sd / Math.sqrt(xs.length));
  return { mean, lo: mean - half, hi: mean + half, half };
}

/** `xs` shuffled (Fisher–Yates) with `random`. */
export function shuffled<T>(xs: readonly T[], random: () => number): T[] {
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** Matched pairs of one stratum (a bench): `num[i]` and `den[i]` come from the same round. */
export interface PairedStratum {
  readonly num: readonly number[];
  readonly den: readonly number[];
}

/**
 * 95 % percentile-bootstrap interval of R = Σ_k mean(num_k) / Σ_k mean(den_k) over the strata k: each
 * resample draws every stratum's rounds with replacement, a round's pair kept together (interleaved
 * techniques share a round's unmonitored runs, so their errors are correlated and must be drawn together).
 * NaN bounds when a stratum has fewer than 2 pairs; seeded `random`, so a report is reproducible.
 */
export function ratioOfMeansCi95(strata: readonly PairedStratum[], random: () => number, resamples = 4000): { lo: number; hi: number } {
  if (!strata.length || strata.some((s) => s.num.length < 2 || s.num.length !== s.den.length)) return { lo: NaN, hi: NaN };
  const ratios: number[] = new Array<number>(resamples);
  for (let b = 0; b < resamples; b++) {
    let num = 0;
    let den = 0;
    for (const s of strata) {
      const n = s.num.length;
      let sn = 0;
      let sd = 0;
      for (let i = 0; i < n; i++) {
        const j = Math.floor(random() * n);
        sn += s.num[j]!;
        sd += s.den[j]!;
      }
      num += sn / n;
      den += sd / n;
    }
    ratios[b] = den > 0 ? num / den : Infinity;
  }
  ratios.sort((a, b) => a - b);
  return { lo: quantile(ratios, 0.025), hi: quantile(ratios, 0.975) };
}
