/**
 * The monitor under hostile or racing task lists (issue 7, "Bad input"), over synthetic guest memory: a
 * cycle through init_task.tasks must not hang a tick (the whole monitor loop is run, not just a walk), a
 * list rewritten while it is read must give no phantom start/exit pairs and exact miss accounting, and a
 * watched page that becomes unreadable gives anomalies, not exits.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AttachedKernel } from '../../src/linux/attach.js';
import type { EventDraft } from '../../src/monitor/events.js';
import { Monitor } from '../../src/monitor/monitor.js';
import { ProcessWatch } from '../../src/monitor/watches/processes.js';
import { FakeGuest } from './helpers/fake-guest.js';
import { CollectingSink } from './helpers/events.js';

const all = { processes: true, threads: true, creds: true };

function tick(w: ProcessWatch, ctx: ReturnType<FakeGuest['context']>): void {
  const det = ctx.watchSet.detect({ pageLevel: false, fieldFilter: true });
  const dirty = det.dirty.get('processes');
  if (det.structural.has('processes') || dirty) w.update(ctx, { structural: det.structural.has('processes'), dirty: dirty ?? new Set() });
  if (w.sweepMs !== undefined) w.sweep(ctx);
}

test('a cycle through init_task.tasks does not hang the monitor: ticks go on, anomalies are events, no exit is inferred', async () => {
  const g = new FakeGuest();
  const a = g.fork(1, 'init');
  const b = g.fork(2, 'kthreadd');
  g.fork(3, 'sh');
  const sink = new CollectingSink();
  const monitor = new Monitor(g.kernel as AttachedKernel, {
    watches: ['processes'],
    sinks: [sink],
    intervalMs: 1,
    durationMs: 400,
    onReady: () => {
      // b → a: the walk goes init → a → b → a → … and never returns to the head.
      g.setNextRaw(b, g.node(a));
      g.countFork(1);
    },
  });
  const result = await monitor.run();
  assert.equal(result.reason, 'duration');
  assert.ok(result.stats.ticks >= 1, 'the loop ticked over the cycle and came back');
  const types = sink.events.map((e) => e.type);
  assert.ok(!types.includes('process-exit'), 'no exit from a cyclic list');
  assert.ok(!types.includes('unseen-starts'), 'no accounting from a torn list');
  const anomalies = sink.events.filter((e) => e.type === 'anomaly');
  assert.ok(anomalies.some((e) => String(e.data?.['what']).includes('torn')), JSON.stringify(anomalies.slice(0, 3)));
  assert.ok(anomalies.some((e) => (e.data?.['counts'] as Record<string, number> | undefined)?.['cycle']));
  assert.equal(types.at(-1), 'monitor-stopped');
});

test('a self-loop on the first task stays bounded in one walk, and forgets no task', () => {
  const g = new FakeGuest();
  const pas = [g.fork(1, 'init'), g.fork(2, 'kthreadd'), g.fork(3, 'sh')];
  const events: EventDraft[] = [];
  const ctx = g.context(events);
  const w = new ProcessWatch(all);
  w.init(ctx);
  g.setNextRaw(pas[0]!, g.node(pas[0]!)); // init → init → …
  g.countFork(1);
  tick(w, ctx);
  assert.ok(ctx.anomalies.counts['cycle']! > 0);
  assert.deepEqual(
    events.filter((e) => e.type !== 'anomaly').map((e) => e.type),
    [],
  );
  assert.equal(w.stats().tasks, 3, 'nothing forgotten from a torn walk');
});

/**
 * A guest that changes its task list while the monitor reads it: once armed, every read of guest memory
 * may let the "kernel" fork a short-lived task or reap one, so walks see lists torn at random places.
 */
function churningGuest(seed: number) {
  const g = new FakeGuest({}, { zeroCopy: false });
  const live = new Map<number, number>(); // task_struct address → pid
  let nextPid = 10;
  const spawn = () => {
    const pid = nextPid++;
    live.set(g.fork(pid, `c${pid}`), pid);
  };
  for (let i = 0; i < 5; i++) spawn();
  let rng = seed;
  const rand = () => (rng = (rng * 1103515245 + 12345) >>> 0) / 2 ** 32;
  let armed = false;
  g.onRead = () => {
    if (!armed || rand() > 0.03) return;
    // (at most 500 forks: the fake guest's RAM holds about a thousand tasks)
    if ((rand() < 0.55 || live.size < 3) && nextPid < 510) spawn();
    else if (live.size < 2) return;
    else {
      const pas = [...live.keys()];
      const pa = pas[Math.floor(rand() * pas.length)]!;
      live.delete(pa);
      g.unlink(pa, true);
    }
  };
  return { g, live, arm: (on: boolean) => (armed = on), forked: () => nextPid - 10 };
}

test('a task list rewritten faster than it is read: no phantom start/exit pairs, every fork seen or counted', () => {
  for (const seed of [1, 7, 42]) {
    const c = churningGuest(seed);
    const events: EventDraft[] = [];
    const ctx = c.g.context(events);
    const w = new ProcessWatch(all);
    w.init(ctx); // a clean baseline
    const forkedAtInit = c.forked();
    c.arm(true);
    for (let i = 0; i < 400; i++) tick(w, ctx);
    c.arm(false);
    tick(w, ctx);
    tick(w, ctx);
    const starts = new Set<string>();
    const exits = new Set<string>();
    for (const e of events) {
      if (e.type === 'process-start') {
        assert.ok(!starts.has(e.key!), `${e.key} started twice (seed ${seed})`);
        starts.add(e.key!);
      }
      if (e.type === 'process-exit') {
        assert.ok(!exits.has(e.key!), `${e.key} exited twice (seed ${seed})`);
        exits.add(e.key!);
      }
    }
    // Every exit is of a task that really died: none of the tasks alive at the end was reported exited.
    const livePids = new Set(c.live.values());
    for (const e of events) if (e.type === 'process-exit') assert.ok(!livePids.has(e.process!.pid), `pid ${e.process!.pid} reported exited but alive (seed ${seed})`);
    // The monitor's view after the churn is the guest's.
    assert.equal(w.stats().tasks, c.live.size, `tasks known vs alive (seed ${seed})`);
    // Every fork after the baseline was either started individually or counted unseen, exactly.
    const unseen = events.filter((e) => e.type === 'unseen-starts').reduce((n, e) => n + (e.data!['count'] as number), 0);
    assert.equal(starts.size + unseen, c.forked() - forkedAtInit, `seen ${starts.size} + unseen ${unseen} (seed ${seed})`);
    assert.ok(w.stats().torn > 0, `the churn tore some walks (seed ${seed})`);
  }
});

test('a watched task whose page becomes unreadable: anomalies, no exit; when it is back, nothing phantom', () => {
  const g = new FakeGuest({}, { zeroCopy: false });
  const pas = [g.fork(1, 'init'), g.fork(2, 'kthreadd'), g.fork(100, 'sh', 1000)];
  const events: EventDraft[] = [];
  const ctx = g.context(events);
  const w = new ProcessWatch(all);
  w.init(ctx);
  g.holes.push([pas[1]!, pas[1]! + 0x1000]); // kthreadd's task_struct goes away under us
  g.fork(101, 'late');
  const det = ctx.watchSet.detect({ pageLevel: false, fieldFilter: true });
  assert.ok(det.unreadable > 0, 'the unreadable ranges are counted');
  w.update(ctx, { structural: det.structural.has('processes'), dirty: det.dirty.get('processes') ?? new Set() });
  assert.ok(ctx.anomalies.counts['fault']! > 0);
  assert.ok(!events.some((e) => e.type === 'process-exit'), 'an unreadable task is not an exited one');
  g.holes.length = 0;
  g.fork(102, 'later');
  ctx.watchSet.detect({ pageLevel: false, fieldFilter: true });
  w.update(ctx, { structural: true, dirty: new Set() });
  const starts = events.filter((e) => e.type === 'process-start').map((e) => e.process?.pid);
  assert.ok(!events.some((e) => e.type === 'process-exit'));
  assert.deepEqual(starts.sort(), [101, 102], 'each start once: the one behind the hole, then the new one');
  assert.equal(w.stats().tasks, 5);
});

test('a list kept torn while tasks keep coming: the known map stops at its cap, the next clean walk reports the rest once', () => {
  const g = new FakeGuest();
  const pas = [g.fork(1, 'init'), g.fork(2, 'kthreadd')];
  const events: EventDraft[] = [];
  const ctx = g.context(events);
  const w = new ProcessWatch({ ...all, maxKnownTasks: 10 });
  w.init(ctx);
  g.tearBackLink(pas[1]!); // every walk from now on is torn: no exits inferred, so nothing is ever pruned
  for (let i = 0; i < 30; i++) {
    g.fork(100 + i, `t${i}`);
    tick(w, ctx);
  }
  assert.equal(w.stats().tasks, 10, 'known tasks held at the cap');
  assert.equal(w.stats().deferred > 0, true);
  const early = events.filter((e) => e.type === 'process-start').length;
  assert.equal(early, 8);
  g.setPrev(pas[1]!, pas[0]!); // healed
  g.fork(200, 'after');
  tick(w, ctx);
  const starts = events.filter((e) => e.type === 'process-start').map((e) => e.key);
  assert.equal(starts.length, 31, 'every task started once: 8 before the cap, 23 from the clean walk');
  assert.equal(new Set(starts).size, starts.length);
  assert.ok(!events.some((e) => e.type === 'unseen-starts'), 'all seen: nothing counted unseen');
  const s = w.stats();
  assert.equal(s.tasks, 33);
  assert.equal(starts.length - s.pendingSeen! + 0 + s.carry!, s.forksCounted);
});
