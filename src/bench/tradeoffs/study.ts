/**
 * The VMI trade-off study (VEE'15) on one lab guest, technique by technique
 * (or, with `interleave`, their guest impact in shared rounds):
 *  1. frequency: passes back to back on the idle guest (light and heavy
 *     workload), latency distribution, our CPU and RSS per pass, the QEMU
 *     process's extra CPU per pass (its /proc/PID/stat time beyond its idle rate);
 *  2. guest impact: each in-guest bench while we monitor at 1/10/100 Hz/max,
 *     as slowdown against the unmonitored runs (mean and spread of repeats);
 *  3. consistency: passes under a churn workload, anomalies by kind per pass.
 * A technique that cannot open is skipped with the reason; a QEMU that dies
 * ends the technique's rows with the reason; a failing in-guest bench is a
 * row with its error. Every phase checks `signal` between passes. The
 * impact phase is impact.ts.
 */
import os from 'node:os';
import { labExec, labSpawn, type LabGuest } from '../../lab/index.js';
import { attachKernel, type AttachedKernel } from '../../linux/attach.js';
import { check, qemuGone, sleep, StudyAborted } from './control.js';
import { impact, measureBaseline, type Baseline, type ImpactOptions, type ImpactRow, type ImpactSubject } from './impact.js';
import { distribution, processCpuMs, rssMiB, selfCpuMs, type Distribution } from './measure.js';
import { consistencyWorkload, HEAVY, LIGHT, runPass, workload, type PassOutcome } from './passes.js';
import { techniqueSpec, type StudyTechnique } from './techniques.js';

export type { Baseline, ImpactRow, Rate } from './impact.js';
export { StudyAborted } from './control.js';

export interface StudyOptions extends ImpactOptions {
  readonly techniques: readonly StudyTechnique[];
  /** Most passes per frequency measurement. */
  readonly passes: number;
  /** Time budget per frequency measurement, seconds. */
  readonly phaseSeconds: number;
  /** Passes under churn per technique. */
  readonly consistencyPasses: number;
  /**
   * Measure the guest impact of every technique in the same rounds (attached together, their monitored runs
   * shuffled among one set of unmonitored runs), not technique after technique.
   */
  readonly interleave?: boolean;
  /** Snapshot files go here (the caller removes it on any exit). */
  readonly tmpDir: string;
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

export interface StudyResult {
  readonly qemuIdleCpuPct: number;
  readonly baseline: Baseline[];
  readonly techniques: TechniqueResult[];
}

/** QEMU's CPU rate on the idle guest, ms of CPU per ms of wall time. */
async function qemuIdleRate(pid: number, signal: AbortSignal, ms = 2000): Promise<number> {
  const c0 = processCpuMs(pid);
  const t0 = performance.now();
  await sleep(ms, signal);
  const c1 = processCpuMs(pid);
  return c0 === undefined || c1 === undefined ? NaN : (c1 - c0) / (performance.now() - t0);
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

/** A technique attached and measured back to back; `kernel` is absent when it was skipped or ended. */
interface Opened {
  readonly t: StudyTechnique;
  readonly res: TechniqueResult;
  kernel?: AttachedKernel;
}

/** Attaches `t` and measures its frequency; a technique that cannot open is skipped, one that fails ends (its kernel closed). */
async function openTechnique(t: StudyTechnique, o: StudyOptions, idleRate: number, source: string): Promise<Opened> {
  const spec = techniqueSpec(source, t, o.tmpDir);
  const res: TechniqueResult = { id: t.id, label: t.label, class: t.class, mode: t.mode, spec, frequency: [], impact: [] };
  const gone = qemuGone(o.guest);
  if (gone) return { t, res: { ...res, skipped: gone } };
  o.progress('attach', t.label);
  let kernel: AttachedKernel;
  const a0 = performance.now();
  try {
    kernel = await attachKernel(spec);
  } catch (e) {
    check(o.signal);
    return { t, res: { ...res, skipped: (e as Error).message } };
  }
  res.attachMs = +(performance.now() - a0).toFixed(1);
  res.chosen = kernel.memory.technique.name;
  try {
    for (const names of [LIGHT, HEAVY]) {
      o.progress('frequency', `${t.label}: ${names.join('+')} back to back`);
      res.frequency.push(await frequency(kernel, t, names, o, idleRate));
    }
    return { t, res, kernel };
  } catch (e) {
    await kernel.close().catch(() => undefined);
    if (e instanceof StudyAborted) throw e;
    res.ended = qemuGone(o.guest) ?? (e as Error).message;
    return { t, res };
  }
}

/** The impact phase of the opened techniques, together; a technique it ended is closed. */
async function impactOf(opened: readonly Opened[], o: StudyOptions, baseline: readonly Baseline[]): Promise<void> {
  const pairs = opened.flatMap((x) => (x.kernel ? [{ x, s: { kernel: x.kernel, technique: x.t, maxHz: x.res.frequency[0]!.passesPerSec, rows: [] } as ImpactSubject }] : []));
  if (!pairs.length) return;
  try {
    await impact(pairs.map((p) => p.s), o, baseline);
  } catch (e) {
    if (e instanceof StudyAborted) throw e;
    for (const { s } of pairs) s.ended ??= qemuGone(o.guest) ?? (e as Error).message;
  }
  for (const { x, s } of pairs) {
    x.res.impact = s.rows;
    if (s.ended) {
      x.res.ended = s.ended;
      await closeTechnique(x);
    }
  }
}

/** The consistency phase of one opened technique, under its own churn loop; closes it. */
async function finishTechnique(x: Opened, o: StudyOptions): Promise<TechniqueResult> {
  if (!x.kernel) return x.res;
  let churn: number | undefined;
  try {
    o.progress('consistency', `${x.t.label}: passes under churn`);
    churn = await startChurn(o.guest);
    x.res.consistency = await consistency(x.kernel, x.t, o);
  } catch (e) {
    if (e instanceof StudyAborted) throw e;
    x.res.ended = qemuGone(o.guest) ?? (e as Error).message;
  } finally {
    if (churn !== undefined && !qemuGone(o.guest)) await stopChurn(o.guest, churn);
    await closeTechnique(x);
  }
  return x.res;
}

async function closeTechnique(x: Opened): Promise<void> {
  const k = x.kernel;
  x.kernel = undefined;
  await k?.close().catch(() => undefined);
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

/**
 * Runs the whole study; results of finished techniques are kept when a later
 * one fails. Technique after technique, or (`interleave`) every technique
 * attached first, their guest impact measured in shared rounds, then the
 * consistency phase of each.
 */
export async function runStudy(o: StudyOptions, onTechnique?: (r: TechniqueResult, partial: StudyResult) => void): Promise<StudyResult> {
  const source = `lab:${o.guest.name}`;
  o.progress('idle', 'QEMU CPU of the idle guest (2 s)');
  const idleRate = await qemuIdleRate(o.guest.pid, o.signal);
  const baseline = await measureBaseline(o);
  const result: StudyResult = { qemuIdleCpuPct: +(idleRate * 100).toFixed(1), baseline, techniques: [] };
  const done = (r: TechniqueResult) => {
    result.techniques.push(r);
    onTechnique?.(r, result);
  };
  const opened: Opened[] = [];
  try {
    for (const t of o.techniques) {
      check(o.signal);
      const x = await openTechnique(t, o, idleRate, source);
      if (!o.interleave) {
        opened.push(x);
        await impactOf([x], o, baseline);
        done(await finishTechnique(x, o));
        opened.pop();
      } else if (x.kernel) opened.push(x);
      else done(x.res);
    }
    if (o.interleave) {
      await impactOf(opened, o, baseline);
      while (opened.length) {
        check(o.signal);
        done(await finishTechnique(opened[0]!, o));
        opened.shift();
      }
    }
  } finally {
    for (const x of opened) await closeTechnique(x);
  }
  return result;
}
