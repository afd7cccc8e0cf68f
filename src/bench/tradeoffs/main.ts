/**
 * `npm run bench -- tradeoffs [--quick] [--out DIR] [--guest NAME | --kernel 6.1] [--keep] [tuning…]`
 * (also `vmsight bench tradeoffs`): the whole trade-off study on a lab guest,
 * writing DIR/tradeoffs.json and DIR/report.html.
 *
 * Faults: SIGINT/SIGTERM stop the study between passes; the guest is always
 * resumed (the halting source's exit hooks and ours), the churn loop killed,
 * the snapshot directory removed, and a guest we booted stopped.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { UsageError } from '../../core/errors.js';
import { findGuest, guestAlive, GUEST_BENCH_KINDS, labDown, labUp, useLabGuests, type GuestBenchKind, type LabGuest } from '../../lab/index.js';
import { qemuBinary } from '../../lab/vm.js';
import { renderHtml, plots } from './html.js';
import { runStudy, stopStrayBenches, StudyAborted, testBed, type Rate, type StudyOptions, type StudyResult } from './study.js';
import { summarize } from './summary.js';
import { pickTechniques } from './techniques.js';

export const USAGE = `tradeoffs [--quick] [--out DIR] [--guest NAME | --kernel 6.1] [--keep]
          [--techniques id,id] [--passes N] [--phase-seconds S] [--bench-seconds S] [--repeats N]
          [--kinds cpu,mem,fork,net,file] [--rates 1,10,100,max] [--consistency-passes N] [--interleave] [--paced-control]`;

interface Profile {
  passes: number;
  phaseSeconds: number;
  benchSeconds: number;
  repeats: number;
  kinds: GuestBenchKind[];
  rates: Rate[];
  consistencyPasses: number;
}

/** Sized for this 2-core machine: quick ≤ 5 min, full ≤ 30 min (rates a technique cannot reach are measured once, as max). */
const QUICK: Profile = { passes: 40, phaseSeconds: 2, benchSeconds: 1, repeats: 1, kinds: ['cpu', 'fork'], rates: [10, 'max'], consistencyPasses: 10 };
const FULL: Profile = { passes: 300, phaseSeconds: 6, benchSeconds: 0.8, repeats: 3, kinds: [...GUEST_BENCH_KINDS], rates: [1, 10, 100, 'max'], consistencyPasses: 40 };

function num(v: string | undefined, what: string, fallback: number, min = 1): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!(Number.isFinite(n) && n >= min && n <= 1e6)) throw new UsageError(`--${what} ${v}: expected a number ≥ ${min}`);
  return n;
}

function kindsOf(v: string | undefined, fallback: GuestBenchKind[]): GuestBenchKind[] {
  if (!v) return fallback;
  const ks = v.split(',').map((s) => s.trim());
  for (const k of ks) if (!(GUEST_BENCH_KINDS as readonly string[]).includes(k)) throw new UsageError(`--kinds ${k}: use ${GUEST_BENCH_KINDS.join(', ')}`);
  return ks as GuestBenchKind[];
}

function ratesOf(v: string | undefined, fallback: Rate[]): Rate[] {
  if (!v) return fallback;
  return v.split(',').map((s) => {
    if (s === 'max') return 'max';
    const n = Number(s);
    if (!(n > 0 && n <= 10_000)) throw new UsageError(`--rates ${s}: expected Hz in (0, 10000] or max`);
    return n;
  });
}

function qemuVersion(): string {
  try {
    return execFileSync(qemuBinary(), ['--version'], { encoding: 'utf8', timeout: 10_000 }).split('\n')[0]!.trim();
  } catch {
    return 'unknown';
  }
}

/** Progress on stderr: phase, what, elapsed, and a time-left estimate from the techniques done. */
function progressPrinter(total: number, t0: number): { line: (phase: string, detail: string) => void; done: () => void } {
  let finished = 0;
  let started: number | undefined;
  return {
    line(phase, detail) {
      const el = (performance.now() - t0) / 1000;
      if (started === undefined && phase === 'attach') started = performance.now();
      const per = finished && started !== undefined ? (performance.now() - started) / 1000 / finished : undefined;
      const left = per !== undefined ? ` ~${Math.round(per * (total - finished))} s left` : '';
      process.stderr.write(`tradeoffs [${Math.round(el)} s,${left} ${finished}/${total} techniques] ${phase}: ${detail}\n`);
    },
    done() {
      finished++;
    },
  };
}

export function writeOutputs(dir: string, r: StudyResult, bed: ReturnType<typeof testBed>, meta: { date: string; mode: string; durationS: number; options: Record<string, unknown> }): { json: string; html: string } {
  mkdirSync(dir, { recursive: true });
  const summary = summarize(r);
  const json = join(dir, 'tradeoffs.json');
  const html = join(dir, 'report.html');
  const p = plots(r, summary).map((x) => x.id);
  const num2 = (_k: string, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v);
  writeFileSync(json, JSON.stringify({ ...meta, testBed: bed, plots: p, summary, ...r }, num2, 2) + '\n');
  writeFileSync(html, renderHtml(r, summary, bed, meta));
  return { json, html };
}

export async function runTradeoffs(argv: readonly string[]): Promise<number> {
  useLabGuests();
  const { values } = parseArgs({
    args: [...argv],
    options: {
      quick: { type: 'boolean' },
      out: { type: 'string', default: 'bench-results/tradeoffs' },
      guest: { type: 'string' },
      kernel: { type: 'string', default: '6.1' },
      keep: { type: 'boolean' },
      techniques: { type: 'string' },
      passes: { type: 'string' },
      'phase-seconds': { type: 'string' },
      'bench-seconds': { type: 'string' },
      repeats: { type: 'string' },
      kinds: { type: 'string' },
      rates: { type: 'string' },
      'consistency-passes': { type: 'string' },
      interleave: { type: 'boolean' },
      'paced-control': { type: 'boolean' },
      debug: { type: 'boolean' },
    },
  });
  const base = values.quick ? QUICK : FULL;
  const techniques = (() => {
    try {
      return pickTechniques(values.techniques);
    } catch (e) {
      throw new UsageError(`--techniques: ${(e as Error).message}`);
    }
  })();
  const profile: Profile = {
    passes: num(values.passes, 'passes', base.passes),
    phaseSeconds: num(values['phase-seconds'], 'phase-seconds', base.phaseSeconds, 0.1),
    benchSeconds: num(values['bench-seconds'], 'bench-seconds', base.benchSeconds, 0.1),
    repeats: num(values.repeats, 'repeats', base.repeats),
    kinds: kindsOf(values.kinds, base.kinds),
    rates: ratesOf(values.rates, base.rates),
    consistencyPasses: num(values['consistency-passes'], 'consistency-passes', base.consistencyPasses),
  };

  const controller = new AbortController();
  const tmpDir = mkdtempSync(join(os.tmpdir(), 'vmsight-tradeoffs-'));
  const removeTmp = () => rmSync(tmpDir, { recursive: true, force: true });
  process.on('exit', removeTmp);
  let signalled: NodeJS.Signals | undefined;
  const onSignal = (s: NodeJS.Signals) => {
    if (signalled) return; // the first one is being handled: cleanup is under way
    signalled = s;
    process.stderr.write(`tradeoffs: ${s}: stopping (resuming the guest, removing temporary files)\n`);
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  let guest: LabGuest | undefined;
  let booted = false;
  const t0 = performance.now();
  try {
    if (values.guest) {
      guest = findGuest(values.guest);
      if (!guest) throw new UsageError(`--guest ${values.guest}: no running lab guest of that name (vmsight lab up ${values.guest} --gdb)`);
    } else {
      const name = `tradeoffs-${values.kernel}`;
      process.stderr.write(`tradeoffs: booting (or reusing) lab guest ${name}\n`);
      booted = !findGuest(name);
      guest = await labUp({ name, kernel: values.kernel!, reuse: true, gdb: true });
    }
    const bed = testBed(guest, qemuVersion());
    const progress = progressPrinter(techniques.length, t0);
    // The pacing control wakes at the highest fixed rate asked (where the monitored runs are compared).
    const fixed = profile.rates.filter((r): r is number => typeof r === 'number');
    const pacedHz = values['paced-control'] === true ? (fixed.length ? Math.max(...fixed) : 100) : undefined;
    const o: StudyOptions = { guest, techniques, ...profile, interleave: values.interleave === true, ...(pacedHz ? { pacedHz } : {}), allKinds: [...GUEST_BENCH_KINDS], tmpDir, signal: controller.signal, progress: progress.line };
    const date = new Date().toISOString();
    const meta = () => ({ date, mode: values.quick ? 'quick' : 'full', durationS: (performance.now() - t0) / 1000, options: { ...profile, interleave: values.interleave === true, pacedHz: pacedHz ?? null, techniques: techniques.map((t) => t.id) } });
    let result: StudyResult | undefined;
    try {
      result = await runStudy(o, (r, partial) => {
        progress.done();
        const f = r.frequency[0];
        process.stderr.write(`tradeoffs: ${r.label}: ${r.skipped ? `skipped (${r.skipped})` : `${f?.passesPerSec ?? 'n/a'} passes/s${r.ended ? `, ended: ${r.ended}` : ''}`}\n`);
        // Partial results survive an interruption later on.
        writeOutputs(values.out!, partial, bed, meta());
      });
    } catch (e) {
      if (!(e instanceof StudyAborted)) throw e;
    }
    if (signalled) {
      process.stderr.write(`tradeoffs: interrupted; partial results (finished techniques) are in ${values.out}\n`);
      return signalled === 'SIGINT' ? 130 : 143;
    }
    const { json, html } = writeOutputs(values.out!, result!, bed, meta());
    for (const line of summarize(result!).findings) process.stdout.write(`${line}\n`);
    process.stdout.write(`(written to ${json} and ${html})\n`);
    return 0;
  } finally {
    if (guest && (!booted || values.keep) && guestAlive(guest)) await stopStrayBenches(guest);
    if (guest && booted && !values.keep) await labDown(guest.name).catch(() => undefined);
    removeTmp();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
