/**
 * What the study found, derived from its raw rows: anomaly rates of the four
 * consistency modes, their split into what pausing removes (extrinsic: reads
 * racing the running guest) and what it cannot (intrinsic: the guest's own
 * state mid-update when we look), the optimistic mode against
 * pause-and-introspect, and a few written sentences.
 */
import { ratioOfMeansCi95, seededRandom, type PairedStratum } from './measure.js';
import type { ImpactRow } from './impact.js';
import type { ConsistencyMode } from './techniques.js';
import type { StudyResult, TechniqueResult } from './study.js';

export interface ModeRates {
  readonly mode: ConsistencyMode;
  /** The technique whose passes stand for the mode. */
  readonly technique: string;
  readonly anomaliesPerPass: number;
  readonly perPass: Record<string, number>;
}

export interface Split {
  readonly kind: string;
  /** Per pass: what remains with the guest paused. */
  readonly intrinsic: number;
  /** Per pass: what pausing removes (live minus paused, at least 0). */
  readonly extrinsic: number;
}

export interface OptimisticVsPause {
  /** Mean guest slowdown (percent) over the benches at the compared rate. */
  readonly rate: string;
  readonly optimisticSlowdownPct: number;
  readonly pausedSlowdownPct: number;
  /** optimistic / paused slowdown (the goal: ≤ 0.10). */
  readonly costRatio: number;
  /**
   * The ratio at most, at 95 %: the upper end of the percentile-bootstrap interval of the ratio of the mean
   * slowdowns, rounds resampled with each round's optimistic and paused runs kept together (NaN when a bench
   * has fewer than 2 matched rounds or no per-round data).
   */
  readonly costRatioBound95: number;
  /**
   * A cruder bound, kept for comparison with earlier reports: the optimistic cells' upper bounds (at least 0)
   * over the paused cells' lower bounds, summed over the benches, as if every bench erred its worst at once
   * (NaN when a paused lower bound is not above 0 or an interval is missing).
   */
  readonly costRatioBoundPerBench95: number;
  readonly optimisticAnomaliesPerPass: number;
  readonly pausedAnomaliesPerPass: number;
  readonly anomaliesNoHigher: boolean;
  /** Largest noise floor of the compared cells (control pairs), percent: slowdowns within it are not resolved. */
  readonly noiseFloorPct: number;
  /** Compared cells whose slowdown this run resolved, of those compared. */
  readonly resolvedCells: string;
}

/** What the guest-impact runs can resolve: noise floors of the cells and how many slowdowns were resolved. */
export interface ImpactResolution {
  readonly noiseFloorMedianPct: number;
  readonly noiseFloorMaxPct: number;
  readonly monitoredCells: number;
  readonly resolvedCells: number;
}

/** The pacing control of each bench (`--paced-control`): what a loop waking at `hz` and reading nothing cost the guest. */
export interface PacingControl {
  readonly hz: number;
  readonly benches: readonly { readonly kind: string; readonly slowdownPct: number; readonly ci95Pct: readonly [number, number]; readonly achievedHz: number }[];
}

export interface StudySummary {
  readonly modes: ModeRates[];
  readonly split: Split[];
  readonly optimisticVsPause?: OptimisticVsPause;
  readonly impactResolution?: ImpactResolution;
  readonly pacingControl?: PacingControl;
  readonly findings: string[];
}

/** The preferred representative of each mode (the first one with consistency rows otherwise). */
const PREFERRED: Record<ConsistencyMode, string> = {
  live: 'live-map-mmap',
  paused: 'halting-mmap',
  snapshot: 'halt-snapshot-pmemsave',
  optimistic: 'optimistic-mmap',
};

function representative(ts: readonly TechniqueResult[], mode: ConsistencyMode): TechniqueResult | undefined {
  const usable = ts.filter((t) => t.mode === mode && t.consistency && t.consistency.passes > 0);
  return usable.find((t) => t.id === PREFERRED[mode]) ?? usable[0];
}

/** Mean slowdown of a technique's impact rows at `rate`. */
function meanSlowdown(t: TechniqueResult, rate: string): number {
  const rows = t.impact.filter((r) => String(r.rate) === rate && Number.isFinite(r.slowdownPct));
  return rows.length ? rows.reduce((a, r) => a + r.slowdownPct, 0) / rows.length : NaN;
}

/** A technique's impact rows at `rate`, by bench. */
function rowsAt(t: TechniqueResult, rate: string): Map<string, ImpactRow> {
  return new Map(t.impact.filter((i) => String(i.rate) === rate).map((i) => [i.kind, i]));
}

/**
 * Bootstrap interval of optimistic / paused mean slowdown at `rate`: per bench, the rounds both have
 * (round i of one bench is the same unmonitored pair for both when interleaved; independent otherwise,
 * where drawing them together changes nothing).
 */
function bootstrapRatio(opt: TechniqueResult, pau: TechniqueResult, rate: string): { lo: number; hi: number } {
  const o = rowsAt(opt, rate);
  const strata: PairedStratum[] = [];
  for (const [kind, row] of rowsAt(pau, rate)) {
    const [op, pp] = [o.get(kind)?.pairedPct, row.pairedPct];
    if (!op || !pp) return { lo: NaN, hi: NaN };
    const num: number[] = [];
    const den: number[] = [];
    for (let i = 0; i < Math.min(op.length, pp.length); i++) {
      const [a, b] = [op[i], pp[i]];
      if (a != null && b != null) num.push(a), den.push(b);
    }
    strata.push({ num, den });
  }
  return ratioOfMeansCi95(strata, seededRandom(0xb007));
}

const fmt = (v: number, d = 2): string => (Number.isFinite(v) ? v.toFixed(d) : 'n/a');

export function summarize(r: StudyResult): StudySummary {
  const modes: ModeRates[] = [];
  for (const mode of ['live', 'paused', 'snapshot', 'optimistic'] as const) {
    const t = representative(r.techniques, mode);
    if (t?.consistency) modes.push({ mode, technique: t.id, anomaliesPerPass: t.consistency.anomaliesPerPass, perPass: t.consistency.perPass });
  }
  const live = modes.find((m) => m.mode === 'live');
  const paused = modes.find((m) => m.mode === 'paused');
  const split: Split[] = [];
  if (live && paused) {
    const kinds = new Set([...Object.keys(live.perPass), ...Object.keys(paused.perPass)]);
    for (const kind of [...kinds].sort()) {
      const l = live.perPass[kind] ?? 0;
      const p = paused.perPass[kind] ?? 0;
      split.push({ kind, intrinsic: p, extrinsic: +Math.max(0, l - p).toFixed(4) });
    }
  }
  let optimisticVsPause: OptimisticVsPause | undefined;
  const opt = r.techniques.find((t) => t.mode === 'optimistic' && t.impact.length);
  const pau = r.techniques.find((t) => t.id === PREFERRED.paused && t.impact.length) ?? r.techniques.find((t) => t.mode === 'paused' && t.impact.length);
  if (opt && pau) {
    // The highest rate both were measured at (a fixed rate, so both do the same number of passes).
    const common = ['100', '10', '1', 'max'].find((rate) => Number.isFinite(meanSlowdown(opt, rate)) && Number.isFinite(meanSlowdown(pau, rate)));
    if (common) {
      const o = meanSlowdown(opt, common);
      const p = meanSlowdown(pau, common);
      const oa = opt.consistency?.anomaliesPerPass ?? NaN;
      const pa = pau.consistency?.anomaliesPerPass ?? NaN;
      const compared = [opt, pau].flatMap((t) => t.impact.filter((i) => String(i.rate) === common));
      const oRows = rowsAt(opt, common);
      let hiSum = 0;
      let loSum = 0;
      for (const [kind, row] of rowsAt(pau, common)) {
        const [oc, pc] = [oRows.get(kind)?.ci95Pct, row.ci95Pct];
        if (!oc || !pc || !(pc[0] > 0) || !Number.isFinite(oc[1])) {
          loSum = NaN;
          break;
        }
        hiSum += Math.max(0, oc[1]);
        loSum += pc[0];
      }
      const floors = [opt, pau].flatMap((t) => t.impact.filter((i) => i.rate === 'off').map((i) => i.noiseFloorPct ?? NaN)).filter(Number.isFinite);
      optimisticVsPause = {
        noiseFloorPct: floors.length ? Math.max(...floors) : NaN,
        resolvedCells: `${compared.filter((i) => i.resolved).length}/${compared.length}`,
        rate: common === 'max' ? 'max' : `${common} Hz`,
        optimisticSlowdownPct: +o.toFixed(2),
        pausedSlowdownPct: +p.toFixed(2),
        costRatio: +(p > 0 ? Math.max(0, o) / p : NaN).toFixed(3),
        costRatioBound95: +Math.max(0, bootstrapRatio(opt, pau, common).hi).toFixed(3),
        costRatioBoundPerBench95: +(loSum > 0 ? hiSum / loSum : NaN).toFixed(3),
        optimisticAnomaliesPerPass: oa,
        pausedAnomaliesPerPass: pa,
        anomaliesNoHigher: oa <= pa,
      };
    }
  }
  const impactResolution = resolution(r);
  const pacingControl = pacing(r);
  return {
    modes,
    split,
    ...(optimisticVsPause ? { optimisticVsPause } : {}),
    ...(impactResolution ? { impactResolution } : {}),
    ...(pacingControl ? { pacingControl } : {}),
    findings: findings(r, modes, split, optimisticVsPause, impactResolution, pacingControl),
  };
}

/** The pacing control rows (shared by every technique of the rounds: the first technique that has them). */
function pacing(r: StudyResult): PacingControl | undefined {
  const offs = r.techniques.find((t) => t.impact.some((i) => i.pacedControl))?.impact.filter((i) => i.rate === 'off' && i.pacedControl);
  if (!offs?.length) return undefined;
  return { hz: offs[0]!.pacedControl!.hz, benches: offs.map((i) => ({ kind: i.kind, slowdownPct: i.pacedControl!.slowdownPct, ci95Pct: i.pacedControl!.ci95Pct, achievedHz: i.pacedControl!.achievedHz })) };
}

function resolution(r: StudyResult): ImpactResolution | undefined {
  const floors = r.techniques.flatMap((t) => t.impact.filter((i) => i.rate === 'off').map((i) => i.noiseFloorPct ?? NaN)).filter(Number.isFinite).sort((a, b) => a - b);
  const monitored = r.techniques.flatMap((t) => t.impact.filter((i) => i.rate !== 'off'));
  if (!floors.length) return undefined;
  return {
    noiseFloorMedianPct: floors[Math.floor((floors.length - 1) / 2)]!,
    noiseFloorMaxPct: floors[floors.length - 1]!,
    monitoredCells: monitored.length,
    resolvedCells: monitored.filter((i) => i.resolved).length,
  };
}

function findings(r: StudyResult, modes: readonly ModeRates[], split: readonly Split[], ovp: OptimisticVsPause | undefined, res: ImpactResolution | undefined, paced: PacingControl | undefined): string[] {
  const out: string[] = [];
  const freq = r.techniques.filter((t) => t.frequency[0]).map((t) => ({ t, hz: t.frequency[0]!.passesPerSec }));
  freq.sort((a, b) => b.hz - a.hz);
  if (freq.length) {
    const top = freq[0]!;
    const low = freq[freq.length - 1]!;
    out.push(`Fastest: ${top.t.label} at ${fmt(top.hz, 1)} passes/s; slowest: ${low.t.label} at ${fmt(low.hz, 3)} passes/s (${fmt(top.hz / low.hz, 0)}× apart).`);
  }
  const skipped = r.techniques.filter((t) => t.skipped);
  if (skipped.length) out.push(`Skipped: ${skipped.map((t) => `${t.label} (${t.skipped})`).join('; ')}.`);
  const ended = r.techniques.filter((t) => t.ended);
  if (ended.length) out.push(`Ended early: ${ended.map((t) => `${t.label} (${t.ended})`).join('; ')}.`);
  if (modes.length) out.push(`Anomalies per pass under churn: ${modes.map((m) => `${m.mode} ${fmt(m.anomaliesPerPass, 3)}`).join(', ')}.`);
  if (split.length) {
    const intr = split.reduce((a, s) => a + s.intrinsic, 0);
    const extr = split.reduce((a, s) => a + s.extrinsic, 0);
    out.push(`Pausing removes ${fmt(extr, 3)} anomalies per pass (extrinsic) and leaves ${fmt(intr, 3)} (intrinsic).`);
  }
  if (ovp) {
    out.push(
      `Optimistic validation vs pause-and-introspect at ${ovp.rate}: guest slowdown ${fmt(ovp.optimisticSlowdownPct)}% vs ${fmt(ovp.pausedSlowdownPct)}% (ratio ${fmt(ovp.costRatio, 3)}, at most ${fmt(ovp.costRatioBound95, 3)} at 95% by a bootstrap over rounds, ${fmt(ovp.costRatioBoundPerBench95, 3)} from the per-bench bounds; goal ≤ 0.10; noise floor ${fmt(ovp.noiseFloorPct, 1)}%, ${ovp.resolvedCells} of these cells resolved), anomalies per pass ${fmt(ovp.optimisticAnomaliesPerPass, 3)} vs ${fmt(ovp.pausedAnomaliesPerPass, 3)} (${ovp.anomaliesNoHigher ? 'no higher' : 'higher'}).`,
    );
  if (res)
    out.push(
      `Guest impact: the control pairs (two unmonitored runs per round) put the noise floor at ${fmt(res.noiseFloorMedianPct, 1)}% (median over benches and techniques; max ${fmt(res.noiseFloorMaxPct, 1)}%): slowdowns below it are not resolved by this run; ${res.resolvedCells} of ${res.monitoredCells} monitored cells were (95% interval excludes 0 and exceeds the floor).`,
    );
  }
  if (paced)
    out.push(
      `Pacing control: a loop waking at ${paced.hz} Hz that reads nothing cost the guest ${paced.benches.map((b) => `${fmt(b.slowdownPct, 1)}% [${fmt(b.ci95Pct[0], 1)}, ${fmt(b.ci95Pct[1], 1)}] (${b.kind})`).join(', ')}: what monitoring costs by being there at all, before it reads.`,
    );
  const crashed = [...r.baseline.filter((b) => b.errors.length).map((b) => `${b.kind} unmonitored (${b.errors[0]})`), ...r.techniques.flatMap((t) => t.impact.filter((i) => i.rate !== 'off' && i.errors.length).map((i) => `${i.kind} under ${t.label} at ${i.rate} (${i.errors[0]})`))];
  if (crashed.length) out.push(`In-guest bench runs that failed (the study went on): ${crashed.slice(0, 5).join('; ')}${crashed.length > 5 ? `; ${crashed.length - 5} more` : ''}.`);
  return out;
}
