/**
 * The study's guest impact: each in-guest bench run while a technique
 * monitors at 1/10/100 Hz or its maximum, against unmonitored runs of the
 * same round. One technique at a time, or several interleaved round by round
 * (`--interleave`) so that they share their unmonitored runs and the minutes
 * they were measured in.
 */
import { runGuestBench, type GuestBenchKind, type LabGuest } from '../../lab/index.js';
import type { AttachedKernel } from '../../linux/attach.js';
import { check, qemuGone, sleep, StudyAborted } from './control.js';
import { distribution, meanCi95, meanSd, seededRandom, shuffled } from './measure.js';
import { LIGHT, runPass, workload } from './passes.js';
import type { StudyTechnique } from './techniques.js';

export type Rate = number | 'max';

export interface ImpactOptions {
  readonly guest: LabGuest;
  /** Seconds per in-guest bench run. */
  readonly benchSeconds: number;
  /** Runs per (bench, rate) cell. */
  readonly repeats: number;
  /** In-guest benches the impact phase uses (the baseline runs them all). */
  readonly kinds: readonly GuestBenchKind[];
  readonly allKinds: readonly GuestBenchKind[];
  readonly rates: readonly Rate[];
  /**
   * Adds a third unmonitored slot per round: a loop that wakes at this rate and reads nothing (the pacing
   * control), so what monitoring costs the guest by being there at all is told apart from what its reads cost.
   */
  readonly pacedHz?: number;
  readonly signal: AbortSignal;
  readonly progress: (phase: string, detail: string) => void;
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
  /** Throughput lost, percent: the mean over rounds of the slowdown against the mean of the same round's two unmonitored runs (0 for 'off'); spread = sd / the unmonitored mean. */
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
  /**
   * The paired slowdown of each round, percent (null: a run of that round is missing): against the mean of the
   * round's two unmonitored runs; for 'off', the control against the other unmonitored run. Rounds of one bench
   * share their unmonitored runs across interleaved techniques, so round i of two techniques is a matched pair.
   */
  readonly pairedPct?: readonly (number | null)[];
  /** On the 'off' row, with `pacedHz`: the pacing control's paired slowdown (wake-ups, no reads). */
  readonly pacedControl?: PacedControl;
  /** Passes per second actually reached during the runs, and their median latency. */
  readonly achievedHz: number;
  readonly passLatencyP50Ms: number;
  readonly errors: readonly string[];
}

export interface PacedControl {
  readonly hz: number;
  /** Wake-ups per second actually reached. */
  readonly achievedHz: number;
  readonly slowdownPct: number;
  readonly ci95Pct: readonly [number, number];
  readonly pairedPct: readonly (number | null)[];
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

/** One technique of the impact phase; `rows` and `ended` are filled in here. */
export interface ImpactSubject {
  readonly kernel: AttachedKernel;
  readonly technique: StudyTechnique;
  /** Its back-to-back rate on the idle guest: a requested rate above it is measured once, as 'max'. */
  readonly maxHz: number;
  rows: ImpactRow[];
  /** Why its cells stopped (a pass failed): the rows hold what was measured before. */
  ended?: string;
}

/**
 * Monitors at `rate` until `done` settles, or until `deadlineMs` (a technique
 * that keeps the guest stopped, like the all-stop debugger stub at its
 * maximum, can starve it so that its bench never ends): `cut` says so.
 */
async function monitorWhile(pass: () => Promise<number>, rate: Rate, done: Promise<unknown>, signal: AbortSignal, deadlineMs: number): Promise<{ lat: number[]; ms: number; cut: boolean }> {
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
    lat.push(await pass());
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

async function benchRun(o: ImpactOptions, kind: GuestBenchKind, overheadS: number): Promise<BenchRun> {
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
export async function measureBaseline(o: ImpactOptions): Promise<Baseline[]> {
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

type Cell = { byRound: (number | undefined)[]; guestRuns: number[]; errors: string[]; lat: number[]; wall: number };

const newCell = (): Cell => ({ byRound: [], guestRuns: [], errors: [], lat: [], wall: 0 });

/**
 * What one run of a round is: an unmonitored run ('off', and its 'control' twin), the pacing control (a loop
 * waking at `pacedHz` that reads nothing), or a subject monitoring at a rate.
 */
type Slot = { readonly unmonitored: 'off' | 'control' } | { readonly paced: number } | { readonly subject: ImpactSubject; readonly rate: Rate; readonly cell: Cell };

/** The rates a subject is measured at: a rate it cannot reach is its maximum, measured once as 'max'. */
function ratesFor(s: ImpactSubject, rates: readonly Rate[]): Rate[] {
  return rates.filter((rate) => rate === 'max' || rate <= s.maxHz || !rates.includes('max'));
}

/**
 * Guest impact of the subjects. Each round runs every bench once unmonitored
 * ('off'), once more unmonitored as a control, and once per subject and
 * rate, in a random order per round (seeded: reproducible), so the load of a
 * shared machine drifting over minutes, and any order effect, hit monitored
 * and unmonitored runs alike — and, with several subjects, every technique
 * alike. A cell's slowdown is the mean over rounds of the paired slowdown
 * against the mean of that round's two unmonitored runs, with its 95 % confidence interval; the
 * control's paired slowdown is the noise floor: a slowdown whose interval
 * holds 0 or that is within the floor is not resolved by this run. A subject
 * whose pass fails ends there (`ended`), the others go on; a QEMU that went
 * away throws.
 */
export async function impact(subjects: readonly ImpactSubject[], o: ImpactOptions, baseline: readonly Baseline[]): Promise<void> {
  const work = workload(LIGHT);
  const deadlineS = Math.max(10, o.benchSeconds * 5);
  const random = seededRandom(0x5eed);
  const alone = subjects.length === 1;
  for (const kind of o.kinds) {
    const overheadS = baseline.find((b) => b.kind === kind)?.overheadS ?? 0;
    const off = newCell();
    const control = newCell();
    const paced = newCell();
    const cells = new Map<ImpactSubject, Map<Rate, Cell>>(subjects.map((s) => [s, new Map(ratesFor(s, o.rates).map((rate) => [rate, newCell()]))]));
    const slots: Slot[] = [{ unmonitored: 'off' }, { unmonitored: 'control' }, ...(o.pacedHz ? [{ paced: o.pacedHz }] : []), ...subjects.flatMap((subject) => [...cells.get(subject)!].map(([rate, cell]) => ({ subject, rate, cell })))];
    let unit = '';
    for (let i = 0; i < o.repeats; i++) {
      for (const slot of shuffled(slots, random)) {
        check(o.signal);
        const gone = qemuGone(o.guest);
        if (gone) throw new Error(gone);
        if ('subject' in slot && slot.subject.ended) continue;
        const what =
          'subject' in slot
            ? `${alone ? '' : `${slot.subject.technique.label} `}${slot.rate === 'max' ? 'at max' : `at ${slot.rate} Hz`}`
            : 'paced' in slot
              ? `pacing control (${slot.paced} Hz, no reads)`
              : `unmonitored (${slot.unmonitored})`;
        o.progress('impact', `${alone ? `${subjects[0]!.technique.label}: ` : ''}${kind} ${what}, round ${i + 1}/${o.repeats}`);
        const c = 'subject' in slot ? slot.cell : 'paced' in slot ? paced : slot.unmonitored === 'off' ? off : control;
        const bench = benchRun(o, kind, overheadS);
        if ('paced' in slot) {
          const m = await monitorWhile(async () => 0, slot.paced, bench, o.signal, deadlineS * 1000);
          c.lat.push(...m.lat);
          c.wall += m.ms;
        } else if ('subject' in slot) {
          try {
            const { kernel, technique } = slot.subject;
            const m = await monitorWhile(async () => (await runPass(kernel, work, technique.validate)).ms, slot.rate, bench, o.signal, deadlineS * 1000);
            if (m.cut) c.errors.push(`monitoring stopped after ${deadlineS} s so the bench could end: at this rate the technique starves the guest (the throughput counts the whole run)`);
            c.lat.push(...m.lat);
            c.wall += m.ms;
          } catch (e) {
            if (e instanceof StudyAborted) throw e;
            slot.subject.ended = qemuGone(o.guest) ?? `a pass failed at ${slot.rate} Hz under the ${kind} bench: ${(e as Error).message}`;
            await bench; // it runs on; the next run must not overlap it
            continue;
          }
        }
        const r = await bench;
        // Unmonitored runs count the guest's own rate (nothing stops it; no overhead calibration in the figure).
        if (r.rate !== undefined) (c.byRound[i] = 'unmonitored' in slot ? r.guestRate! : r.rate), c.guestRuns.push(r.guestRate!), (unit = r.unit!);
        else c.errors.push(r.error!);
      }
    }
    for (const s of subjects) s.rows.push(...cellRows(kind, unit, o.repeats, off, control, cells.get(s)!, o.pacedHz ? { hz: o.pacedHz, cell: paced } : undefined));
  }
}

/** The rows of one bench for one subject: its 'off' row (the shared unmonitored runs, the control's interval) and one per rate. */
function cellRows(kind: GuestBenchKind, unit: string, repeats: number, off: Cell, control: Cell, byRate: ReadonlyMap<Rate, Cell>, paced?: { hz: number; cell: Cell }): ImpactRow[] {
  const ref = meanSd(off.byRound.filter((v): v is number => v !== undefined)).mean;
  /** Paired slowdowns (percent) of `c` against `base(i)` of the same round i; null where either run is missing. */
  const pairedBy = (c: Cell, base: (i: number) => number | undefined): (number | null)[] =>
    Array.from({ length: repeats }, (_, i) => {
      const a = base(i);
      const b = c.byRound[i];
      return a !== undefined && b !== undefined && a > 0 ? (100 * (a - b)) / a : null;
    });
  // A monitored run is compared with the mean of the round's two unmonitored runs (the reference then carries
  // half the variance of one run); the control pair (control against off) is one run against another, so the
  // floor it gives is, if anything, wider than the noise of a monitored cell.
  const bothOff = (i: number): number | undefined => {
    const [a, b] = [off.byRound[i], control.byRound[i]];
    return a !== undefined && b !== undefined ? (a + b) / 2 : (a ?? b);
  };
  const present = (xs: readonly (number | null)[]): number[] => xs.filter((x): x is number => x !== null);
  const controlPairs = pairedBy(control, (i) => off.byRound[i]);
  const controlCi = meanCi95(present(controlPairs));
  const noiseFloorPct = +(Math.abs(controlCi.mean) + (Number.isFinite(controlCi.half) ? controlCi.half : 0)).toFixed(2);
  let pacedControl: PacedControl | undefined;
  if (paced) {
    const pairs = pairedBy(paced.cell, bothOff);
    const d = meanCi95(present(pairs));
    pacedControl = {
      hz: paced.hz,
      achievedHz: +((paced.cell.lat.length * 1000) / paced.cell.wall).toFixed(2),
      slowdownPct: +d.mean.toFixed(2),
      ci95Pct: [+d.lo.toFixed(2), +d.hi.toFixed(2)],
      pairedPct: pairs.map((x) => (x === null ? null : +x.toFixed(3))),
    };
  }
  const rows: ImpactRow[] = [];
  for (const [rate, c] of [['off', off] as const, ...byRate]) {
    const runs = c.byRound.filter((v): v is number => v !== undefined);
    const { mean, sd } = meanSd(runs);
    const byRound = rate === 'off' ? controlPairs : pairedBy(c, bothOff);
    const d = rate === 'off' ? controlCi : meanCi95(present(byRound));
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
      pairedPct: byRound.map((x) => (x === null ? null : +x.toFixed(3))),
      ...(rate === 'off' && pacedControl ? { pacedControl } : {}),
      noiseFloorPct,
      resolved,
      achievedHz: rate === 'off' ? 0 : +((c.lat.length * 1000) / c.wall).toFixed(2),
      passLatencyP50Ms: distribution(c.lat).p50,
      errors: c.errors,
    });
  }
  return rows;
}
