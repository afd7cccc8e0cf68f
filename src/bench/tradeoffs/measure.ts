/** Small measuring helpers of the trade-off study: distributions, host and QEMU CPU, memory. */
import { readFileSync } from 'node:fs';

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
