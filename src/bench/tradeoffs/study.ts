/**
 * The VMI trade-off study (VEE'15) on one lab guest, technique by technique:
 *  1. frequency: passes back to back on the idle guest (light and heavy
 *     workload), latency distribution, our CPU and RSS per pass, the QEMU
 *     process's extra CPU per pass (its /proc/PID/stat time beyond its idle rate);
 *  2. guest impact: each in-guest bench while we monitor at 1/10/100 Hz/max,
 *     as slowdown against the unmonitored runs (mean and spread of repeats);
 *  3. consistency: passes under a churn workload, anomalies by kind per pass.
 * A technique that cannot open is skipped with the reason; a QEMU that dies
 * ends the technique's rows with the reason; a failing in-guest bench is a
 * row with its error. Every phase checks `signal` between passes.
 *
 * Longer than ~400 lines on purpose: the study's phases (frequency, guest impact, consistency) share one guest, one technique loop and the clean-up every exit path needs.
 */
import os from 'node:os';
import { guestAlive, labExec, labSpawn, runGuestBench, type GuestBenchKind, type LabGuest } from '../../lab/index.js';
import { attachKernel, type AttachedKernel } from '../../linux/attach.js';
import type { Plugin } from '../../linux/plugin.js';
import { distribution, meanCi95, meanSd, processCpuMs, rssMiB, seededRandom, selfCpuMs, shuffled, type Distribution } from './measure.js';
import { consistencyWorkload, HEAVY, LIGHT, runPass, workload, type PassOutcome } from './passes.js';
import { techniqueSpec, type StudyTechnique } from './techniques.js';

export type Rate = number | 'max';

export interface StudyOptions {
  readonly guest: LabGuest;
  readonly techniques: readonly StudyTechnique[];
  /** Most passes per frequency measurement. */
  readonly passes: number;
  /** Time budget per frequency measurement, seconds. */
  readonly phaseSeconds: number;
  /** Seconds per in-guest bench run. */
  readonly benchSeconds: number;
  /** Runs per (bench, rate) cell. */
  readonly repeats: number;
  /** In-guest benches the impact phase uses (the baseline runs them all). */
  readonly kinds: readonly GuestBenchKind[];
  readonly allKinds: readonly GuestBenchKind[];
  readonly rates: readonly Rate[];
  /** Passes under churn per technique. */
  readonly consistencyPasses: number;
  /** Snapshot files go here (the caller removes it on any exit). */
  readonly tmpDir: string;
  readonly signal: AbortSignal;
  readonly progress: (phase: string, detail: string) => void;
}

export interface FrequencyRow {
  readonly workload: string;
  readonly passes: number;
  readonly seconds: number;
  readonly passesPerSec: number;
  readonly latencyMs: Distribution;
  /** Our CPU (user+system) per pass, ms. */
  readonly hostCpuMsPerPass: number;
  /** QEMU's CPU per pass beyond its idle rate, ms (NaN when its pid could not be read). */
  readonly qemuExtraCpuMsPerPass: number;
  /** Highest RSS sampled after a pass of this phase, MiB. */
  readonly rssPeakMiB: number;
}

export interface ImpactRow {
  readonly kind: GuestBenchKind;
  /** Requested monitoring rate: 'off', Hz, or 'max'. */
  readonly rate: 'off' | Rate;
  /** Throughput of each run, in `unit` per host second (a paused guest's own clock stops). */
  readonly runs: readonly number[];
  readonly unit: string;
  readonly mean: number;
  readonly sd: number;
  /** The mean of what the guest reported on its own clock. */
  readonly guestClockMean: number;
  /** Throughput lost, percent: the mean over rounds of the slowdown against the same round's unmonitored run (0 for 'off'); spread = sd / the unmonitored mean. */
  readonly slowdownPct: number;
  readonly slowdownSdPct: number;
  /**
   * 95 % confidence interval of slowdownPct over the rounds (NaN with fewer than 2); for 'off', that of the
   * control pairs (a second unmonitored run per round against the first).
   */
  readonly ci95Pct?: readonly [number, number];
  /** What this run can resolve for this bench: |control slowdown| + its CI half-width, percent. */
  readonly noiseFloorPct?: number;
  /** The slowdown's interval excludes 0 and it exceeds the noise floor. */
  readonly resolved?: boolean;
  /** Passes per second actually reached during the runs, and their median latency. */
  readonly achievedHz: number;
  readonly passLatencyP50Ms: number;
  readonly errors: readonly string[];
}

export interface ConsistencyRow {
  /** The plugins of each pass ('xview' is the cross-view check). */
  readonly workload: string;
  readonly passes: number;
  /** Anomalies per pass by kind. */
  readonly perPass: Record<string, number>;
  readonly anomaliesPerPass: number;
  readonly passesWithAnomalies: number;
  /** Our CPU (user + system) per pass under churn, ms: what retries cost the host, and so the guest sharing it. */
  readonly hostCpuMsPerPass: number;
  /** Torn reads healed per pass: back-links that agreed on a re-read, cross-view mismatches a re-check cleared (not anomalies). */
  readonly settledPerPass: number;
  /**
   * Optimistic mode: share of passes whose every run validated, retries and torn ranges caught per pass, and runs per pass
   * handed over from an earlier pass because nothing they read had changed (linux/pass.ts).
   */
  readonly validation?: { readonly validatedShare: number; readonly retriesPerPass: number; readonly changedRangesPerPass: number; readonly changedValuesPerPass: number; readonly reusedRunsPerPass: number };
}

export interface TechniqueResult {
  readonly id: string;
  readonly label: string;
  readonly class: string;
  readonly mode: StudyTechnique['mode'];
  readonly spec: string;
  /** Why the technique was not studied at all. */
  skipped?: string;
  /** Why its rows stop early (QEMU died, a phase failed). */
  ended?: string;
  attachMs?: number;
  chosen?: string;
  frequency: FrequencyRow[];
  impact: ImpactRow[];
  consistency?: ConsistencyRow;
}

export interface Baseline {
  readonly kind: GuestBenchKind;
  readonly runs: readonly number[];
  readonly unit: string;
  readonly mean: number;
  readonly sd: number;
  readonly errors: readonly string[];
  /** Host seconds a run takes beyond its guest seconds, unmonitored (the exec channel): taken off monitored runs. */
  readonly overheadS: number;
}

export interface StudyResult {
  readonly qemuIdleCpuPct: number;
  readonly baseline: Baseline[];
  readonly techniques: TechniqueResult[];
}

export class StudyAborted extends Error {
  constructor() {
    super('study interrupted');
  }
}

const check = (signal: AbortSignal): void => {
  if (signal.aborted) throw new StudyAborted();
};

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, Math.max(0, ms));
    signal.addEventListener('abort', done, { once: true });
  });

/** QEMU's CPU rate on the idle guest, ms of CPU per ms of wall time. */
async function qemuIdleRate(pid: number, signal: AbortSignal, ms = 2000): Promise<number> {
  const c0 = processCpuMs(pid);
  const t0 = performance.now();
  await sleep(ms, signal);
  const c1 = processCpuMs(pid);
  return c0 === undefined || c1 === undefined ? NaN : (c1 - c0) / (performance.now() - t0);
}

function qemuGone(guest: LabGuest): string | undefined {
  return guestAlive(guest) ? undefined : `QEMU of guest '${guest.name}' (pid ${guest.pid}) is gone`;
}

/** Back-to-back passes until `passes` or `seconds`. */
async function frequency(kernel: AttachedKernel, t: StudyTechnique, names: readonly string[], o: StudyOptions, idleRate: number): Promise<FrequencyRow> {
  const work = workload(names);
  // Two untimed passes first: the first ones of a workload fill the caches (translations, address spaces).
  for (let i = 0; i < 2; i++) {
    check(o.signal);
    await runPass(kernel, work, t.validate);
  }
  const lat: number[] = [];
  let rssPeak = rssMiB();
  const q0 = processCpuMs(o.guest.pid);
  const c0 = selfCpuMs();
  const t0 = performance.now();
  while (lat.length < o.passes && performance.now() - t0 < o.phaseSeconds * 1000) {
    check(o.signal);
    lat.push((await runPass(kernel, work, t.validate)).ms);
    rssPeak = Math.max(rssPeak, rssMiB());
  }
  const wall = performance.now() - t0;
  const q1 = processCpuMs(o.guest.pid);
  const n = lat.length;
  return {
    workload: names.join('+'),
    passes: n,
    seconds: +(wall / 1000).toFixed(3),
    passesPerSec: +((n * 1000) / wall).toFixed(3),
    latencyMs: distribution(lat),
    hostCpuMsPerPass: +((selfCpuMs() - c0) / n).toFixed(3),
    qemuExtraCpuMsPerPass: q0 === undefined || q1 === undefined ? NaN : +((q1 - q0 - idleRate * wall) / n).toFixed(3),
    rssPeakMiB: +rssPeak.toFixed(1),
  };
}

/** Monitors at `rate` until `done` settles; returns pass latencies and the wall time. */
/**
 * Monitors at `rate` until `done` settles, or until `deadlineMs` (a technique
 * that keeps the guest stopped, like the all-stop debugger stub at its
 * maximum, can starve it so that its bench never ends): `cut` says so.
 */
async function monitorWhile(kernel: AttachedKernel, work: readonly Plugin<any>[], t: StudyTechnique, rate: Rate, done: Promise<unknown>, signal: AbortSignal, deadlineMs: number): Promise<{ lat: number[]; ms: number; cut: boolean }> {
  let finished = false;
  void done.finally(() => (finished = true)).catch(() => undefined);
  const lat: number[] = [];
  const t0 = performance.now();
  const period = rate === 'max' ? 0 : 1000 / rate;
  let next = t0;
  let cut = false;
  while (!finished && !signal.aborted) {
    if (performance.now() - t0 > deadlineMs) {
      cut = true;
      break;
    }
    lat.push((await runPass(kernel, work, t.validate)).ms);
    next += period;
    // Even at max rate, yield to the event loop so the exec channel's I/O goes on.
    await sleep(rate === 'max' ? 0 : next - performance.now(), signal);
    if (rate !== 'max' && performance.now() > next + period) next = performance.now();
  }
  return { lat, ms: performance.now() - t0, cut };
}

/**
 * One in-guest bench run. The guest's own clock stops while QEMU is paused,
 * so its throughput hides what pausing costs: the rate that counts is its
 * work per host second (ops over the run's host wall time less the exec
 * channel's overhead, measured on the unmonitored runs).
 */
interface BenchRun {
  /** Work per host second. */
  rate?: number;
  /** Work per guest second (what the guest itself reports). */
  guestRate?: number;
  unit?: string;
  /** Host wall seconds minus guest seconds: the exec channel's overhead plus any pause. */
  extraS?: number;
  error?: string;
}

async function benchRun(o: StudyOptions, kind: GuestBenchKind, overheadS: number): Promise<BenchRun> {
  try {
    const t0 = performance.now();
    const r = await runGuestBench(o.guest, kind, o.benchSeconds);
    const wall = (performance.now() - t0) / 1000;
    if (!(r.rate > 0)) return { error: `guest bench ${kind} reported throughput ${r.rate}` };
    const hostSeconds = Math.max(r.seconds, wall - overheadS);
    return { rate: (r.rate * r.seconds) / hostSeconds, guestRate: r.rate, unit: r.unit, extraS: wall - r.seconds };
  } catch (e) {
    return { error: `crashed: ${(e as Error).message}` };
  }
}

/** The unmonitored runs of every in-guest bench (their host overhead calibrates the monitored runs). */
export async function measureBaseline(o: StudyOptions): Promise<Baseline[]> {
  const out: Baseline[] = [];
  for (const kind of o.allKinds) {
    const first: BenchRun[] = [];
    const errors: string[] = [];
    for (let i = 0; i < o.repeats; i++) {
      check(o.signal);
      o.progress('baseline', `${kind} run ${i + 1}/${o.repeats}, monitoring off`);
      const r = await benchRun(o, kind, 0);
      if (r.rate !== undefined) first.push(r);
      else errors.push(r.error!);
    }
    const overheadS = first.length ? Math.min(...first.map((r) => r.extraS!)) : 0;
    // Unmonitored, host time = guest time + the overhead: the rate is the guest's own.
    const runs = first.map((r) => r.guestRate!);
    out.push({ kind, runs, unit: first[0]?.unit ?? '', ...meanSd(runs), errors, overheadS: +overheadS.toFixed(4) });
  }
  return out;
}

/**
 * Guest impact of one technique. Each round runs every bench once
 * unmonitored ('off'), once more unmonitored as a control, and once per
 * rate, in a random order per round (seeded: reproducible), so the load of a
 * shared machine drifting over minutes, and any order effect, hit monitored
 * and unmonitored runs alike. A cell's slowdown is the mean over rounds of
 * the paired slowdown against that round's 'off' run, with its 95 %
 * confidence interval; the control's paired slowdown is the noise floor: a
 * slowdown whose interval holds 0 or that is within the floor is not
 * resolved by this run.
 */
async function impact(kernel: AttachedKernel, t: StudyTechnique, o: StudyOptions, baseline: readonly Baseline[], maxHz: number): Promise<ImpactRow[]> {
  const work = workload(LIGHT);
  const rows: ImpactRow[] = [];
  // A rate the technique cannot reach is its maximum, measured once as 'max'.
  const rates = o.rates.filter((rate) => rate === 'max' || rate <= maxHz || !o.rates.includes('max'));
  const deadlineS = Math.max(10, o.benchSeconds * 5);
  const random = seededRandom(0x5eed);
  for (const kind of o.kinds) {
    const overheadS = baseline.find((b) => b.kind === kind)?.overheadS ?? 0;
    type Cell = { byRound: (number | undefined)[]; guestRuns: number[]; errors: string[]; lat: number[]; wall: number };
    const cells = new Map<'off' | 'control' | Rate, Cell>();
    const cell = (rate: 'off' | 'control' | Rate) => {
      let c = cells.get(rate);
      if (!c) cells.set(rate, (c = { byRound: [], guestRuns: [], errors: [], lat: [], wall: 0 }));
      return c;
    };
    let unit = '';
    for (let i = 0; i < o.repeats; i++) {
      for (const rate of shuffled(['off' as const, 'control' as const, ...rates], random)) {
        check(o.signal);
        const gone = qemuGone(o.guest);
        if (gone) throw new Error(gone);
        o.progress('impact', `${t.label}: ${kind} ${rate === 'off' || rate === 'control' ? `unmonitored (${rate})` : rate === 'max' ? 'at max' : `at ${rate} Hz`}, round ${i + 1}/${o.repeats}`);
        const c = cell(rate);
        const bench = benchRun(o, kind, overheadS);
        const monitored = rate !== 'off' && rate !== 'control';
        if (monitored) {
          const m = await monitorWhile(kernel, work, t, rate, bench, o.signal, deadlineS * 1000);
          if (m.cut) c.errors.push(`monitoring stopped after ${deadlineS} s so the bench could end: at this rate the technique starves the guest (the throughput counts the whole run)`);
          c.lat.push(...m.lat);
          c.wall += m.ms;
        }
        const r = await bench;
        if (r.rate !== undefined) (c.byRound[i] = monitored ? r.rate : r.guestRate!), c.guestRuns.push(r.guestRate!), (unit = r.unit!);
        else c.errors.push(r.error!);
      }
    }
    const off = cell('off').byRound;
    const ref = meanSd(off.filter((v): v is number => v !== undefined)).mean;
    /** Paired slowdowns (percent) of a cell against the same round's 'off' run. */
    const paired = (c: Cell): number[] => {
      const out: number[] = [];
      for (let i = 0; i < o.repeats; i++) {
        const a = off[i];
        const b = c.byRound[i];
        if (a !== undefined && b !== undefined && a > 0) out.push((100 * (a - b)) / a);
      }
      return out;
    };
    const control = meanCi95(paired(cell('control')));
    const noiseFloorPct = +(Math.abs(control.mean) + (Number.isFinite(control.half) ? control.half : 0)).toFixed(2);
    for (const [rate, c] of cells) {
      if (rate === 'control') continue;
      const runs = c.byRound.filter((v): v is number => v !== undefined);
      const { mean, sd } = meanSd(runs);
      const d = rate === 'off' ? control : meanCi95(paired(c));
      const resolved = rate !== 'off' && Number.isFinite(d.lo) && (d.lo > 0 || d.hi < 0) && Math.abs(d.mean) > noiseFloorPct;
      rows.push({
        kind,
        rate,
        runs,
        unit,
        mean,
        sd,
        guestClockMean: +meanSd(c.guestRuns).mean.toFixed(3),
        slowdownPct: rate === 'off' ? 0 : +(Number.isFinite(d.mean) ? d.mean : (100 * (ref - mean)) / ref).toFixed(2),
        slowdownSdPct: +((100 * sd) / ref).toFixed(2),
        ci95Pct: [+d.lo.toFixed(2), +d.hi.toFixed(2)],
        noiseFloorPct,
        resolved,
        achievedHz: rate === 'off' ? 0 : +((c.lat.length * 1000) / c.wall).toFixed(2),
        passLatencyP50Ms: distribution(c.lat).p50,
        errors: c.errors,
      });
    }
  }
  return rows;
}

/** The churn workload: processes, files and sockets created and destroyed as fast as the guest can. */
const CHURN = 'while :; do /bin/vmi-helper bench fork 1; /bin/vmi-helper bench net 1; /bin/vmi-helper bench file 1; done >/dev/null 2>&1';

export async function startChurn(guest: LabGuest): Promise<number> {
  return (await labSpawn(guest, ['/bin/sh', '-c', CHURN])).pid;
}

/** Kills in-guest benches still running (one cut short or abandoned by a signal): the study leaves none behind. */
export async function stopStrayBenches(guest: LabGuest): Promise<void> {
  await labExec(guest, ['/bin/sh', '-c', 'killall -9 vmi-bench 2>/dev/null; true'], { timeoutMs: 20_000 }).catch(() => undefined);
}

/** Kills the churn loop and everything it started (its own session and process group). */
export async function stopChurn(guest: LabGuest, pid: number): Promise<void> {
  await labExec(guest, ['/bin/sh', '-c', `kill -9 -${pid} 2>/dev/null; kill -9 ${pid} 2>/dev/null; true`], { timeoutMs: 20_000 }).catch(() => undefined);
}

async function consistency(kernel: AttachedKernel, t: StudyTechnique, o: StudyOptions): Promise<ConsistencyRow> {
  const work = consistencyWorkload();
  const totals: Record<string, number> = {};
  let withAnomalies = 0;
  let validated = 0;
  let retries = 0;
  let changed = 0;
  let changedValues = 0;
  let reused = 0;
  let settled = 0;
  const outcomes: PassOutcome[] = [];
  const c0 = selfCpuMs();
  const t0 = performance.now();
  // Bounded by passes and by a time budget (a snapshot pass takes seconds).
  while (outcomes.length < o.consistencyPasses && (outcomes.length === 0 || performance.now() - t0 < o.phaseSeconds * 2000)) {
    check(o.signal);
    const r = await runPass(kernel, work, t.validate);
    outcomes.push(r);
    settled += r.settled;
    let any = 0;
    for (const [k, n] of Object.entries(r.anomalies)) (totals[k] = (totals[k] ?? 0) + n), (any += n);
    if (any) withAnomalies++;
    if (r.validation) {
      if (r.validation.validated) validated++;
      retries += r.validation.retries;
      changed += r.validation.changedRanges;
      changedValues += r.validation.changedValues;
      reused += r.validation.reused;
    }
  }
  const n = outcomes.length;
  const hostCpuMsPerPass = +((selfCpuMs() - c0) / n).toFixed(3);
  const perPass = Object.fromEntries(Object.entries(totals).map(([k, v]) => [k, +(v / n).toFixed(4)]));
  return {
    workload: work.map((p) => p.name).join('+'),
    passes: n,
    perPass,
    anomaliesPerPass: +(Object.values(totals).reduce((a, b) => a + b, 0) / n).toFixed(4),
    passesWithAnomalies: withAnomalies,
    hostCpuMsPerPass,
    settledPerPass: +(settled / n).toFixed(3),
    ...(t.validate ? { validation: { validatedShare: +(validated / n).toFixed(3), retriesPerPass: +(retries / n).toFixed(3), changedRangesPerPass: +(changed / n).toFixed(3), changedValuesPerPass: +(changedValues / n).toFixed(3), reusedRunsPerPass: +(reused / n).toFixed(3) } } : {}),
  };
}

async function studyTechnique(t: StudyTechnique, o: StudyOptions, idleRate: number, baseline: readonly Baseline[], source: string): Promise<TechniqueResult> {
  const spec = techniqueSpec(source, t, o.tmpDir);
  const res: TechniqueResult = { id: t.id, label: t.label, class: t.class, mode: t.mode, spec, frequency: [], impact: [] };
  const gone = qemuGone(o.guest);
  if (gone) return { ...res, skipped: gone };
  o.progress('attach', t.label);
  let kernel: AttachedKernel;
  const a0 = performance.now();
  try {
    kernel = await attachKernel(spec);
  } catch (e) {
    check(o.signal);
    return { ...res, skipped: (e as Error).message };
  }
  res.attachMs = +(performance.now() - a0).toFixed(1);
  res.chosen = kernel.memory.technique.name;
  let churn: number | undefined;
  try {
    for (const names of [LIGHT, HEAVY]) {
      o.progress('frequency', `${t.label}: ${names.join('+')} back to back`);
      res.frequency.push(await frequency(kernel, t, names, o, idleRate));
    }
    const maxHz = res.frequency[0]!.passesPerSec;
    res.impact = await impact(kernel, t, o, baseline, maxHz);
    o.progress('consistency', `${t.label}: passes under churn`);
    churn = await startChurn(o.guest);
    res.consistency = await consistency(kernel, t, o);
  } catch (e) {
    if (e instanceof StudyAborted) throw e;
    res.ended = qemuGone(o.guest) ?? (e as Error).message;
  } finally {
    if (churn !== undefined && !qemuGone(o.guest)) await stopChurn(o.guest, churn);
    await kernel.close().catch(() => undefined);
  }
  return res;
}

export interface TestBed {
  readonly cpuModel: string;
  readonly cores: number;
  readonly hostMemGiB: number;
  readonly hostKernel: string;
  readonly node: string;
  readonly qemu: string;
  readonly accelerator: string;
  readonly emulated: boolean;
  readonly guestKernel: string;
  readonly guestMemMiB: number;
  readonly guestSmp: number;
}

export function testBed(guest: LabGuest, qemuVersion: string): TestBed {
  return {
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    hostMemGiB: +(os.totalmem() / 2 ** 30).toFixed(1),
    hostKernel: os.release(),
    node: process.version,
    qemu: qemuVersion,
    accelerator: guest.accel,
    emulated: guest.accel === 'tcg',
    guestKernel: `${guest.kernel.release} (${guest.kernel.package})`,
    guestMemMiB: guest.memoryMiB,
    guestSmp: guest.smp,
  };
}

/** Runs the whole study; results of finished techniques are kept when a later one fails. */
export async function runStudy(o: StudyOptions, onTechnique?: (r: TechniqueResult, partial: StudyResult) => void): Promise<StudyResult> {
  const source = `lab:${o.guest.name}`;
  o.progress('idle', 'QEMU CPU of the idle guest (2 s)');
  const idleRate = await qemuIdleRate(o.guest.pid, o.signal);
  const baseline = await measureBaseline(o);
  const result: StudyResult = { qemuIdleCpuPct: +(idleRate * 100).toFixed(1), baseline, techniques: [] };
  for (const t of o.techniques) {
    check(o.signal);
    const r = await studyTechnique(t, o, idleRate, baseline, source);
    result.techniques.push(r);
    onTechnique?.(r, result);
  }
  return result;
}
