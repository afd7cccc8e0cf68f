/**
 * tradeoffs.json and report.html from a study result built in code: every
 * technique present with its rows or skip reason, the summary's split into
 * intrinsic and extrinsic anomalies, one well-formed <svg> per plot, text
 * from the guest escaped.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { writeOutputs } from '../../src/bench/tradeoffs/main.js';
import type { StudyResult, TechniqueResult, TestBed } from '../../src/bench/tradeoffs/study.js';
import { summarize } from '../../src/bench/tradeoffs/summary.js';
import { assertWellFormed, svgs } from './helpers/html.js';

const dist = { n: 3, mean: 2, p50: 2, p90: 3, p99: 3, max: 3 };

function technique(id: string, mode: TechniqueResult['mode'], hz: number, perPass: Record<string, number>, slow: number): TechniqueResult {
  const anomalies = Object.values(perPass).reduce((a, b) => a + b, 0);
  return {
    id,
    label: `${id} <b>`,
    class: 'live-map',
    mode,
    spec: `lab:x?technique=${id}`,
    attachMs: 100,
    frequency: [{ workload: 'pslist+lsmod+sockstat', passes: 3, seconds: 1, passesPerSec: hz, latencyMs: dist, hostCpuMsPerPass: 5, qemuExtraCpuMsPerPass: 1, rssPeakMiB: 100 }],
    impact: [
      { kind: 'cpu', rate: 'off', runs: [10], unit: 'MB/s', mean: 10, sd: 0, guestClockMean: 10, slowdownPct: 0, slowdownSdPct: 0, achievedHz: 0, passLatencyP50Ms: NaN, errors: [] },
      { kind: 'cpu', rate: 10, runs: [9], unit: 'MB/s', mean: 9, sd: 0, guestClockMean: 9, slowdownPct: slow, slowdownSdPct: 1, achievedHz: 9.5, passLatencyP50Ms: 2, errors: [] },
      { kind: 'cpu', rate: 'max', runs: [5], unit: 'MB/s', mean: 5, sd: 0, guestClockMean: 5, slowdownPct: 50, slowdownSdPct: 1, achievedHz: hz, passLatencyP50Ms: 2, errors: [] },
    ],
    consistency: { workload: 'pslist+lsmod+sockstat+xview', passes: 10, perPass, anomaliesPerPass: anomalies, passesWithAnomalies: anomalies ? 5 : 0, hostCpuMsPerPass: 5, settledPerPass: 0 },
  };
}

const result: StudyResult = {
  qemuIdleCpuPct: 3,
  baseline: [{ kind: 'cpu', runs: [10], unit: 'MB/s', mean: 10, sd: 0, errors: [], overheadS: 0.2 }],
  techniques: [
    technique('live-map-mmap', 'live', 50, { 'broken-link': 0.4, 'parent-missing': 0.1 }, 2),
    technique('halting-mmap', 'paused', 20, { 'broken-link': 0.1 }, 20),
    technique('halt-snapshot-pmemsave', 'snapshot', 2, {}, 30),
    technique('optimistic-mmap', 'optimistic', 40, { 'broken-link': 0.05 }, 1),
    { id: 'debugger-stub', label: 'debugger stub', class: 'debugger-stub', mode: 'live', spec: 'lab:x', skipped: 'gdbstub busy', frequency: [], impact: [] },
  ],
};

const bed: TestBed = { cpuModel: 'cpu', cores: 2, hostMemGiB: 24, hostKernel: '6', node: 'v20', qemu: 'QEMU 8', accelerator: 'tcg', emulated: true, guestKernel: '6.1', guestMemMiB: 256, guestSmp: 1 };

describe('tradeoffs report', () => {
  it('summary: intrinsic = what remains paused, extrinsic = what pausing removes; optimistic vs pause', () => {
    const s = summarize(result);
    assert.deepEqual(s.modes.map((m) => m.mode), ['live', 'paused', 'snapshot', 'optimistic']);
    assert.deepEqual(s.split, [
      { kind: 'broken-link', intrinsic: 0.1, extrinsic: 0.3 },
      { kind: 'parent-missing', intrinsic: 0, extrinsic: 0.1 },
    ]);
    assert.equal(s.optimisticVsPause!.rate, '10 Hz');
    assert.equal(s.optimisticVsPause!.costRatio, 0.05);
    assert.equal(s.optimisticVsPause!.anomaliesNoHigher, true);
    assert.ok(s.findings.some((f) => f.includes('gdbstub busy')), 'the skip reason is in the findings');
    assert.ok(Number.isNaN(s.optimisticVsPause!.costRatioBound95), 'no intervals: no bound');
  });

  it('summary: the cost ratio at 95 % is the optimistic upper bounds over the paused lower bounds', () => {
    const withCi = (id: string, ci: [number, number]) => {
      const t = result.techniques.find((x) => x.id === id)!;
      return { ...t, impact: t.impact.map((i) => (i.rate === 10 ? { ...i, ci95Pct: ci } : i)) };
    };
    const techniques = result.techniques.map((t) => (t.id === 'optimistic-mmap' ? withCi(t.id, [-0.5, 1.5]) : t.id === 'halting-mmap' ? withCi(t.id, [15, 25]) : t));
    assert.equal(summarize({ ...result, techniques }).optimisticVsPause!.costRatioBoundPerBench95, 0.1);
    const unresolvedPause = techniques.map((t) => (t.id === 'halting-mmap' ? withCi(t.id, [-2, 25]) : t));
    assert.ok(Number.isNaN(summarize({ ...result, techniques: unresolvedPause }).optimisticVsPause!.costRatioBoundPerBench95), 'a paused interval holding 0 bounds nothing');
  });

  it('summary: the bootstrap bound resamples matched rounds, so noise both techniques share cancels', () => {
    const withRounds = (id: string, rounds: (number | null)[]) => {
      const t = result.techniques.find((x) => x.id === id)!;
      return { ...t, impact: t.impact.map((i) => (i.rate === 10 ? { ...i, pairedPct: rounds } : i)) };
    };
    const study = (opt: (number | null)[], pau: (number | null)[]) =>
      summarize({ ...result, techniques: result.techniques.map((t) => (t.id === 'optimistic-mmap' ? withRounds(t.id, opt) : t.id === 'halting-mmap' ? withRounds(t.id, pau) : t)) }).optimisticVsPause!;
    // Paused rounds vary widely, optimistic is a tenth of each: every resample gives 0.1.
    const pau = [10, 30, 15, 25, 20, 40, 5, 35];
    assert.equal(study(pau.map((x) => x / 10), pau).costRatioBound95, 0.1);
    // Independent spread: the bound lies above the ratio of the means and below the worst round's ratio.
    const spread = study([1, 3, 1, 3, 1, 3, 1, 3], [20, 20, 20, 20, 20, 20, 20, 20]).costRatioBound95;
    assert.ok(spread > 0.1 && spread < 0.15, `bound ${spread}`);
    // A round missing in either is left out of the pairs; fewer than 2 pairs bounds nothing.
    assert.equal(study([null, 2, 2, 2], [20, 20, 20, null]).costRatioBound95, 0.1);
    assert.ok(Number.isNaN(study([null, 2], [20, null]).costRatioBound95));
  });

  it('summary: the pacing control (wake-ups, no reads) is reported per bench with its interval', () => {
    const pacedControl = { hz: 100, achievedHz: 99.5, slowdownPct: 2.5, ci95Pct: [0.5, 4.5] as const, pairedPct: [2, 3] };
    const techniques = result.techniques.map((t) => ({ ...t, impact: t.impact.map((i) => (i.rate === 'off' ? { ...i, pacedControl } : i)) }));
    const s = summarize({ ...result, techniques });
    assert.deepEqual(s.pacingControl, { hz: 100, benches: [{ kind: 'cpu', slowdownPct: 2.5, ci95Pct: [0.5, 4.5], achievedHz: 99.5 }] });
    assert.ok(s.findings.some((f) => f.startsWith('Pacing control: a loop waking at 100 Hz') && f.includes('2.5% [0.5, 4.5] (cpu)')));
    assert.equal(summarize(result).pacingControl, undefined, 'no control run: nothing said');
  });

  it('writes tradeoffs.json (techniques list) and a well-formed report.html with one <svg> per plot', () => {
    const dir = mkdtempSync(join(os.tmpdir(), 'to-report-'));
    try {
      const { json, html } = writeOutputs(dir, result, bed, { date: 'd', mode: 'quick', durationS: 1, options: {} });
      const data = JSON.parse(readFileSync(json, 'utf8'));
      assert.equal(data.techniques.length, 5);
      assert.equal(data.techniques[4].skipped, 'gdbstub busy');
      assert.equal(data.testBed.emulated, true);
      assert.deepEqual(data.plots, ['frequency', 'slowdown-cpu', 'host-cpu', 'anomalies']);
      const page = readFileSync(html, 'utf8');
      assertWellFormed(page);
      assert.equal(svgs(page).length, data.plots.length);
      for (const id of data.plots) assert.match(page, new RegExp(`<figure id="${id}"><svg`));
      assert.ok(!page.includes('<b>'), 'labels are escaped');
      assert.match(page, /emulated \(TCG\)/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("plots show the JSON's values: bar values and widths, line points, anomaly bars", () => {
    const dir = mkdtempSync(join(os.tmpdir(), 'to-report-'));
    try {
      const { json, html } = writeOutputs(dir, result, bed, { date: 'd', mode: 'quick', durationS: 1, options: {} });
      const data = JSON.parse(readFileSync(json, 'utf8'));
      const page = readFileSync(html, 'utf8');
      const figure = (id: string) => page.match(new RegExp(`<figure id="${id}">([\\s\\S]*?)</figure>`))![1]!;
      const attrs = (svg: string, el: string) => [...svg.matchAll(new RegExp(`<${el} ([^>]*)/>`, 'g'))].map((m) => Object.fromEntries([...m[1]!.matchAll(/([a-z-]+)="([^"]*)"/g)].map((a) => [a[1], a[2]])));
      // Frequency: one bar per technique that has a rate, in order, value = passesPerSec; log widths ordered like the values.
      const bars = attrs(figure('frequency'), 'rect');
      const expected = data.techniques.filter((t: TechniqueResult) => t.frequency[0]).map((t: TechniqueResult) => t.frequency[0]!.passesPerSec);
      assert.deepEqual(bars.map((b) => Number(b['data-value'])), expected);
      const widths = bars.map((b) => Number(b.width));
      for (let i = 0; i < expected.length; i++) for (let j = 0; j < expected.length; j++) if (expected[i] > expected[j]) assert.ok(widths[i]! > widths[j]!, 'a higher rate draws a longer bar');
      assert.match(figure('frequency'), />n\/a</, 'the skipped technique is drawn as n/a');
      // Slowdown vs frequency: the points are the monitored impact rows (reached Hz, slowdown %).
      const points = attrs(figure('slowdown-cpu'), 'circle').map((c) => [c['data-series'], Number(c['data-x']), Number(c['data-y'])]);
      const rows = data.techniques.flatMap((t: TechniqueResult) => t.impact.filter((i) => i.rate !== 'off').map((i) => [t.label.replace('<', '&#60;').replace('>', '&#62;'), i.achievedHz, i.slowdownPct]));
      assert.deepEqual(points.sort(), rows.sort());
      // Anomalies: per mode, the total then each kind, as in the summary.
      const anomalyBars = attrs(figure('anomalies'), 'rect').map((b) => Number(b['data-value']));
      assert.deepEqual(anomalyBars, data.summary.modes.flatMap((m: { anomaliesPerPass: number; perPass: Record<string, number> }) => [m.anomaliesPerPass, ...Object.values(m.perPass)]).filter((v: number) => Number.isFinite(v)));
      // Host CPU: our CPU plus QEMU's extra per pass.
      assert.deepEqual(attrs(figure('host-cpu'), 'rect').map((b) => Number(b['data-value'])), data.techniques.filter((t: TechniqueResult) => t.frequency[0]).map(() => 6));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
