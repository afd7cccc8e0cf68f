/**
 * The progress line (issue 10, "Progress"): drawn on a terminal only, never with --quiet, only for an
 * operation still running after the delay, cleared when it ends; nested operations show the innermost.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { progressLine, terminalProgress } from '../../src/cli/progress.js';
import { setProgressRenderer, startProgress, withProgress } from '../../src/core/progress.js';

/** A stream that records what was written, and a clock the test moves. */
function fixture(isTTY: boolean, quiet = false) {
  const writes: string[] = [];
  let t = 0;
  const renderer = terminalProgress({ isTTY, write: (s) => writes.push(s) }, { quiet, delayMs: 1000, intervalMs: 100, now: () => t });
  return { writes, renderer, tick: (ms: number) => (t += ms) };
}

/** Drives one byte-counted operation past the delay. */
function slowCopy(f: ReturnType<typeof fixture>): void {
  const p = f.renderer.begin('acquire', 'bytes', 256 << 20);
  p.update(10 << 20);
  f.tick(1500);
  p.update(128 << 20);
  p.end();
}

test('on a terminal a slow operation draws one line in place and clears it at the end', () => {
  const f = fixture(true);
  slowCopy(f);
  assert.deepEqual(f.writes, ['\r\x1b[Kacquire [###############...............] 128/256 MiB (50%)', '\r\x1b[K']);
});

test('not on a terminal, or with --quiet, nothing is written', () => {
  for (const f of [fixture(false), fixture(true, true)]) {
    slowCopy(f);
    const p = f.renderer.begin('attach', 'steps', 3);
    f.tick(5000);
    p.step('profile');
    p.end();
    assert.deepEqual(f.writes, []);
  }
});

test('an operation that ends within the delay prints nothing, and redraws are throttled', () => {
  const f = fixture(true);
  const quick = f.renderer.begin('attach', 'steps', 3);
  quick.step('opening the source');
  f.tick(500);
  quick.step('profile');
  quick.end();
  assert.deepEqual(f.writes, []);
  const slow = f.renderer.begin('scan module area', 'bytes', 100 << 20);
  f.tick(1000);
  slow.update(1 << 20);
  slow.update(2 << 20); // same instant: throttled
  f.tick(100);
  slow.update(3 << 20);
  slow.end();
  assert.equal(f.writes.length, 3, JSON.stringify(f.writes));
  assert.match(f.writes[1]!, /3\/100 MiB \(3%\)$/);
});

test('a nested step shows at once once the outer operation is slow; the outer one is redrawn after it', () => {
  const f = fixture(true);
  const attach = f.renderer.begin('attach', 'steps', 3);
  attach.step('opening the source');
  attach.step('kernel space (gdb-stub)');
  f.tick(2000);
  attach.step('profile (gdb-stub)');
  const profile = f.renderer.begin('profile', 'steps');
  profile.step('kallsyms');
  profile.end();
  attach.end();
  assert.deepEqual(f.writes, [
    '\r\x1b[Kattach: profile (gdb-stub) (3/3)',
    '\r\x1b[Kprofile: kallsyms',
    '\r\x1b[K',
    '\r\x1b[Kattach: profile (gdb-stub) (3/3)',
    '\r\x1b[K',
  ]);
});

test('progressLine: counts without a total, items with one, steps with and without', () => {
  assert.equal(progressLine({ label: 'scan', unit: 'items', done: 7 }), 'scan 7');
  assert.equal(progressLine({ label: 'scan', unit: 'items', done: 1, total: 4 }), 'scan [########......................] 1/4 (25%)');
  assert.equal(progressLine({ label: 'attach', unit: 'steps', done: 0, step: 'open' }), 'attach: open');
  assert.equal(progressLine({ label: 'attach', unit: 'steps', done: 0, total: 3, step: 'open' }), 'attach: open (1/3)');
});

test('the installed renderer receives startProgress; withProgress ends the line when its function throws', () => {
  const f = fixture(true);
  const prev = setProgressRenderer(f.renderer);
  try {
    assert.throws(() =>
      withProgress('scan', 'items', 10, (p) => {
        f.tick(1200);
        p.update(5);
        throw new Error('boom');
      }),
    );
    assert.deepEqual(f.writes, ['\r\x1b[Kscan [###############...............] 5/10 (50%)', '\r\x1b[K']);
  } finally {
    setProgressRenderer(prev);
  }
  const before = f.writes.length;
  startProgress('after restore', 'items').update(1);
  assert.equal(f.writes.length, before, 'the previous (silent) renderer is back');
});
