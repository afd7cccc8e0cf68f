import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CpuBudget } from '../../src/monitor/cpu-budget.js';

/** A clock and a CPU counter the test moves by hand. */
function fakeProcess() {
  const p = { wall: 0, cpuUs: 0 };
  const cpu = (since?: NodeJS.CpuUsage): NodeJS.CpuUsage => ({ user: p.cpuUs - (since?.user ?? 0), system: 0 - (since?.system ?? 0) });
  return { p, now: () => p.wall, cpu };
}

test('within the budget the interval is the sleep; over it the sleep brings cpu/wall back to the budget', () => {
  const f = fakeProcess();
  const b = new CpuBudget(0.25, f.now, f.cpu);
  // 0.1 ms of CPU per 2 ms tick: 5 %, well within 25 %.
  for (let i = 0; i < 1000; i++) {
    f.p.cpuUs += 100;
    f.p.wall += 0.1;
    f.p.wall += b.rest(2);
  }
  assert.equal(b.stretched, 0);
  // A storm: every tick burns 20 ms of CPU in 20 ms of wall time.
  let wall0 = f.p.wall;
  let cpu0 = f.p.cpuUs;
  for (let i = 0; i < 2000; i++) {
    f.p.cpuUs += 20_000;
    f.p.wall += 20;
    f.p.wall += b.rest(2);
  }
  const share = (f.p.cpuUs - cpu0) / 1000 / (f.p.wall - wall0);
  // (the calm second before it may be spent at the storm's start: within 1 % over a 160 s storm)
  assert.ok(share <= 0.25 * 1.01 && share > 0.24, `share ${share}`);
  assert.ok(b.stretched > 0);
  // Calm again: back to the interval once the window is within the budget.
  wall0 = f.p.wall;
  cpu0 = f.p.cpuUs;
  let last = 0;
  for (let i = 0; i < 2000; i++) {
    f.p.cpuUs += 100;
    f.p.wall += 0.1;
    last = b.rest(2);
    f.p.wall += last;
  }
  assert.equal(last, 2);
  void cpu0;
});

test('one slow tick in a calm second stretches no sleep', () => {
  const f = fakeProcess();
  const b = new CpuBudget(0.5, f.now, f.cpu);
  for (let i = 0; i < 1000; i++) {
    f.p.cpuUs += 100;
    f.p.wall += 0.1;
    f.p.wall += b.rest(2);
  }
  f.p.cpuUs += 60_000; // a 60 ms sweep
  f.p.wall += 60;
  assert.equal(b.rest(2), 2);
  assert.equal(b.stretched, 0);
});
