/**
 * The trade-off study end to end on the shared 6.1 lab guest, shrunk through
 * its options: every technique has a frequency, a host cost, a guest-impact
 * row and anomaly counts, or a reason; every in-guest bench reports a
 * positive throughput; report.html is well formed with one <svg> per plot.
 * Then SIGTERM in the middle of a guest-halting phase under churn: the study
 * exits 143, the guest runs, the churn is gone, no temporary files remain.
 * No assertions on times.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { GUEST_BENCH_KINDS, labExec, labRun, type LabGuest } from '../../src/lab/index.js';
import { STUDY_TECHNIQUES } from '../../src/bench/tradeoffs/techniques.js';
import { sharedGuest } from '../helpers/guest.js';
import { assertWellFormed, svgs } from './helpers/html.js';

const ROOT = new URL('../..', import.meta.url).pathname;

function study(args: string[], onStderr?: (text: string, child: ReturnType<typeof spawn>) => void): Promise<{ code: number | null; stderr: string; stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/bench/main.ts', 'tradeoffs', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let stdout = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => {
      stderr += d;
      onStderr?.(stderr, child);
    });
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stderr, stdout }));
  });
}

const tmpLeft = () => readdirSync(os.tmpdir()).filter((n) => n.startsWith('vmsight-tradeoffs-'));

describe('bench tradeoffs on a lab guest', { timeout: 900_000 }, () => {
  let guest: LabGuest;
  let out: string;
  before(async () => {
    // Its own guest: the study's benches and churn (memory pressure, OOM kills) would change the shared guest's truth.
    guest = (await sharedGuest({ purpose: 'study' })).guest;
    out = mkdtempSync(join(os.tmpdir(), 'to-study-'));
  });
  after(() => rmSync(out, { recursive: true, force: true }));

  it('--quick, shrunk: every technique has its rows or a reason; benches positive; HTML with one svg per plot', async () => {
    const r = await study(['--quick', '--guest', guest.name, '--out', out, '--passes', '4', '--phase-seconds', '0.5', '--bench-seconds', '0.5', '--kinds', 'cpu', '--rates', 'max', '--consistency-passes', '2']);
    assert.equal(r.code, 0, r.stderr.slice(-2000));
    const data = JSON.parse(readFileSync(join(out, 'tradeoffs.json'), 'utf8'));
    assert.deepEqual(data.techniques.map((t: { id: string }) => t.id), STUDY_TECHNIQUES.map((t) => t.id));
    for (const t of data.techniques) {
      if (t.skipped) {
        assert.ok(typeof t.skipped === 'string' && t.skipped.length > 0);
        continue;
      }
      if (t.ended) continue; // a reason for the rows that stop early
      const f = t.frequency[0];
      assert.ok(f.passesPerSec > 0, `${t.id}: a frequency`);
      assert.ok(f.latencyMs.n > 0 && f.hostCpuMsPerPass > 0, `${t.id}: a host cost`);
      assert.ok(f.qemuExtraCpuMsPerPass !== undefined && f.rssPeakMiB > 0, `${t.id}: QEMU CPU and RSS`);
      assert.ok(t.impact.some((i: { rate: unknown; runs: number[] }) => i.rate !== 'off' && i.runs.length > 0), `${t.id}: a guest-impact row`);
      assert.ok(t.consistency.passes > 0 && typeof t.consistency.perPass === 'object', `${t.id}: anomaly counts`);
      assert.equal(t.consistency.workload, 'pslist+lsmod+sockstat+xview', `${t.id}: the cross-view check runs in every consistency pass`);
      for (const kind of Object.keys(t.consistency.perPass)) assert.ok(!kind.startsWith('run-failed'), `${t.id}: no plugin run failed`);
      const off = t.impact.find((i: { rate: unknown }) => i.rate === 'off');
      assert.ok(off && typeof off.noiseFloorPct === 'number', `${t.id}: the control pair gives a noise floor`);
    }
    assert.ok(data.techniques.filter((t: { skipped?: string }) => !t.skipped).length >= 10, 'most techniques run on a lab guest');
    assert.ok(data.techniques.find((t: { id: string }) => t.id === 'optimistic-mmap').consistency.validation, 'the optimistic mode reports its validation');
    assert.deepEqual(data.baseline.map((b: { kind: string }) => b.kind), [...GUEST_BENCH_KINDS]);
    for (const b of data.baseline) assert.ok(b.runs.length > 0 && b.runs.every((x: number) => x > 0), `in-guest bench ${b.kind}: positive throughput (${b.errors})`);
    assert.equal(data.testBed.accelerator, guest.accel);
    const page = readFileSync(join(out, 'report.html'), 'utf8');
    assertWellFormed(page);
    assert.equal(svgs(page).length, data.plots.length);
    assert.ok(data.plots.includes('frequency') && data.plots.includes('host-cpu') && data.plots.includes('anomalies') && data.plots.includes('slowdown-cpu'));
    assert.deepEqual(tmpLeft(), [], 'no temporary snapshot directory left');
    assert.equal(await labRun(guest, ['/bin/echo', 'alive'], { timeoutMs: 30_000 }), 'alive\n', 'the guest runs');
  });

  it('--interleave --paced-control, then SIGTERM during a guest-halting pass under churn: impact in shared rounds with a pacing control, exit 143, guest running, churn gone, no temporary files', async () => {
    let sent = false;
    const r = await study(['--quick', '--interleave', '--paced-control', '--guest', guest.name, '--out', out, '--techniques', 'halting-mmap,halting-readv', '--passes', '4', '--phase-seconds', '0.5', '--bench-seconds', '0.5', '--kinds', 'cpu', '--rates', 'max', '--consistency-passes', '100000'], (text, child) => {
      if (!sent && /consistency: guest-halting \(process_vm_readv\)/.test(text)) {
        sent = true;
        setTimeout(() => child.kill('SIGTERM'), 300); // its consistency phase lasts 1 s (2 × --phase-seconds)
      }
    });
    assert.ok(sent, r.stderr.slice(-2000));
    assert.equal(r.code, 143, r.stderr.slice(-2000));
    // Both techniques were attached and monitored in the same impact rounds before either's consistency phase.
    const lines = r.stderr.split('\n');
    const firstConsistency = lines.findIndex((l) => /\] consistency: /.test(l));
    const impactLines = lines.slice(0, firstConsistency).filter((l) => /\] impact: /.test(l));
    for (const label of ['guest-halting (mmap) at max', 'guest-halting (process_vm_readv) at max', 'unmonitored (off)', 'unmonitored (control)', 'pacing control (100 Hz, no reads)']) assert.ok(impactLines.some((l) => l.includes(`cpu ${label}`)), `an impact run '${label}' before the consistency phases:\n${impactLines.join('\n')}`);
    // The finished technique was written with its impact rows, the shared unmonitored run among them.
    const data = JSON.parse(readFileSync(join(out, 'tradeoffs.json'), 'utf8'));
    assert.equal(data.options.interleave, true);
    const halting = data.techniques.find((t: { id: string }) => t.id === 'halting-mmap');
    assert.ok(halting?.consistency?.passes > 0, 'the first technique finished its consistency phase');
    assert.deepEqual(halting.impact.map((i: { rate: unknown }) => i.rate), ['off', 'max']);
    assert.ok(halting.impact.every((i: { runs: number[] }) => i.runs.length === 1), 'one run per cell in one round');
    // No fixed rate asked (max only): the pacing control wakes at 100 Hz, beside the shared unmonitored runs.
    const paced = halting.impact[0].pacedControl;
    assert.equal(paced?.hz, 100, JSON.stringify(halting.impact[0]));
    assert.ok(paced.achievedHz > 0 && paced.pairedPct.length === 1 && Number.isFinite(paced.slowdownPct), JSON.stringify(paced));
    assert.equal(data.options.pacedHz, 100);
    const ps = await labExec(guest, ['/bin/sh', '-c', 'ps'], { timeoutMs: 30_000 });
    assert.equal(ps.exitCode, 0, 'the guest runs (not left paused)');
    assert.ok(!/vmi-helper bench|while :/.test(ps.stdout.toString()), `the churn loop is gone:\n${ps.stdout}`);
    assert.deepEqual(tmpLeft(), [], 'no temporary snapshot directory left');
  });
});
