/**
 * Faults of the trade-off study on real guests: an in-guest bench killed in
 * the middle of its run is reported in its row and the study goes on; a QEMU
 * killed mid-study ends that technique's rows with the reason and the next
 * technique is skipped with it (its own guest, booted and removed here).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { labDown, labExec, labSpawn, labUp } from '../../src/lab/index.js';
import { sharedGuest, TEST_GUEST_PREFIX } from '../helpers/guest.js';

const ROOT = new URL('../..', import.meta.url).pathname;

/** Runs the study; `when` is called with stderr so far until it returns true once. */
function study(args: string[], when: (stderr: string) => boolean | Promise<boolean>): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/bench/main.ts', 'tradeoffs', ...args], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    let fired = false;
    child.stderr.on('data', (d) => {
      stderr += d;
      if (!fired && /impact: /.test(stderr)) {
        fired = true;
        void when(stderr);
      }
    });
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stderr }));
  });
}

const SHRUNK = ['--passes', '4', '--phase-seconds', '0.5', '--kinds', 'cpu', '--rates', 'max', '--consistency-passes', '2', '--repeats', '1'];
/** In the guest (the exec channel serves one command at a time, so it runs beside the study): kills the first two benches a second into their run. */
const KILL_BENCHES = 'n=0; while [ $n -lt 2 ]; do for p in /proc/[0-9]*; do if [ "$(cat $p/comm 2>/dev/null)" = vmi-bench ]; then sleep 1; kill -9 ${p#/proc/} 2>/dev/null && n=$((n+1)); fi; done; sleep 0.1; done';

describe('bench tradeoffs faults', { timeout: 900_000 }, () => {
  const dirs: string[] = [];
  const own = `${TEST_GUEST_PREFIX}qdie`;
  after(async () => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    await labDown(own).catch(() => undefined);
  });

  it('an in-guest bench killed mid-run: reported in its row, the study goes on', async () => {
    const { guest } = await sharedGuest({ purpose: 'study' }); // the study's guest, not the shared one whose truth others compare with
    const out = mkdtempSync(join(os.tmpdir(), 'to-faults-'));
    dirs.push(out);
    const killer = await labSpawn(guest, ['/bin/sh', '-c', KILL_BENCHES]);
    const r = await study(['--guest', guest.name, '--out', out, '--techniques', 'live-map-mmap,live-read-readv', '--bench-seconds', '4', ...SHRUNK], () => true);
    await labExec(guest, ['/bin/sh', '-c', `kill -9 ${killer.pid} 2>/dev/null; true`], { timeoutMs: 20_000 });
    assert.equal(r.code, 0, r.stderr.slice(-2000));
    const data = JSON.parse(readFileSync(join(out, 'tradeoffs.json'), 'utf8'));
    const first = data.techniques[0];
    const errors = [...data.baseline, ...first.impact].flatMap((i: { errors: string[] }) => i.errors);
    assert.ok(errors.some((e: string) => /crashed: guest bench \w+ failed/.test(e)), `a crashed run is reported: ${JSON.stringify([data.baseline, first.impact])}`);
    assert.ok(first.consistency.passes > 0, 'the technique went on to its consistency phase');
    assert.ok(data.techniques[1].frequency[0].passesPerSec > 0, 'and the study to the next technique');
    assert.ok(data.summary.findings.some((f: string) => /failed \(the study went on\)/.test(f)));
  });

  it('QEMU killed mid-study: that technique ends with the reason, the next is skipped with it', async () => {
    const guest = await labUp({ name: own, kernel: '6.1', gdb: true });
    const out = mkdtempSync(join(os.tmpdir(), 'to-faults-'));
    dirs.push(out);
    const r = await study(['--guest', guest.name, '--out', out, '--techniques', 'live-map-mmap,live-read-readv', '--bench-seconds', '2', ...SHRUNK], () => {
      process.kill(guest.pid, 'SIGKILL');
      return true;
    });
    assert.equal(r.code, 0, r.stderr.slice(-2000));
    const data = JSON.parse(readFileSync(join(out, 'tradeoffs.json'), 'utf8'));
    assert.match(data.techniques[0].ended, /QEMU of guest .* is gone/);
    assert.match(data.techniques[1].skipped, /QEMU of guest .* is gone/);
  });
});
