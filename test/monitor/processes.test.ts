import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { EventDraft } from '../../src/monitor/events.js';
import { ProcessWatch } from '../../src/monitor/watches/processes.js';
import { FakeGuest } from './helpers/fake-guest.js';

const all = { processes: true, threads: true, creds: true };

/** One tick: what the watch set says changed, handed to the watch (as the monitor does). */
function tick(w: ProcessWatch, ctx: ReturnType<FakeGuest['context']>): void {
  const det = ctx.watchSet.detect({ pageLevel: true, fieldFilter: true });
  const dirty = det.dirty.get('processes');
  if (det.structural.has('processes') || dirty) w.update(ctx, { structural: det.structural.has('processes'), dirty: dirty ?? new Set() });
  if (w.sweepMs !== undefined) w.sweep(ctx);
}

function setup(): { g: FakeGuest; w: ProcessWatch; events: EventDraft[]; ctx: ReturnType<FakeGuest['context']>; pas: number[] } {
  const g = new FakeGuest();
  const pas = [g.fork(1, 'init'), g.fork(2, 'kthreadd'), g.fork(100, 'sh', 1000)];
  const events: EventDraft[] = [];
  const ctx = g.context(events);
  const w = new ProcessWatch(all);
  w.init(ctx);
  return { g, w, events, ctx, pas };
}

test('the state at attach is no change; a fork is one process-start with pid, parent and creds', () => {
  const { g, w, events, ctx, pas } = setup();
  assert.equal(events.length, 0);
  assert.equal(w.stats().tasks, 3);
  g.fork(101, 'ls', 1000, pas[2]);
  tick(w, ctx);
  assert.deepEqual(
    events.map((e) => [e.type, e.process?.pid, e.process?.ppid, e.process?.comm, e.process?.uid]),
    [['process-start', 101, 100, 'ls', 1000]],
  );
  tick(w, ctx);
  assert.equal(events.length, 1, 'an unchanged guest gives nothing more');
});

test('an exit is one process-exit; a task unlinked while alive is hidden, not exited, and reported once', () => {
  const { g, w, events, ctx, pas } = setup();
  g.unlink(pas[2]!, true);
  tick(w, ctx);
  assert.deepEqual(events.map((e) => [e.type, e.process?.pid]), [['process-exit', 100]]);
  events.length = 0;
  g.unlink(pas[1]!, false); // a rootkit's list_del: alive, exit_state 0
  tick(w, ctx);
  tick(w, ctx);
  assert.deepEqual(events.map((e) => [e.type, e.process?.pid, e.severity]), [['hidden-process', 2, 'critical']]);
});

test('a torn walk infers no exits (no phantom start/exit pair) and says so; the next clean walk catches up', () => {
  const { g, w, events, ctx, pas } = setup();
  g.fork(102, 'late');
  g.tearBackLink(pas[1]!); // the walk meets a broken back link, in every attempt
  g.unlink(pas[2]!, true);
  tick(w, ctx);
  assert.ok(!events.some((e) => e.type === 'process-exit'), 'no exit from a torn walk');
  assert.ok(events.some((e) => e.type === 'anomaly' && String(e.data?.['what']).includes('torn')));
  assert.ok(ctx.anomalies.counts['broken-link']! > 0);
  // The list heals (the kernel finished its update): the exit is reported, the start was already seen once.
  g.setPrev(pas[1]!, pas[0]!);
  tick(w, ctx);
  const starts = events.filter((e) => e.type === 'process-start').map((e) => e.process?.pid);
  const exits = events.filter((e) => e.type === 'process-exit').map((e) => e.process?.pid);
  assert.deepEqual(starts, [102]);
  assert.deepEqual(exits, [100]);
});

test('starts the kernel counted but no walk saw are one unseen-starts event with the count', () => {
  const { g, w, events, ctx } = setup();
  g.countFork(5); // five children that lived and died between two ticks
  g.fork(103, 'seen');
  tick(w, ctx);
  const unseen = events.filter((e) => e.type === 'unseen-starts');
  assert.equal(unseen.length, 1);
  assert.deepEqual([unseen[0]!.data?.['count'], unseen[0]!.data?.['forks'], unseen[0]!.data?.['seen']], [5, 6, 1]);
  assert.equal(w.stats().unseen, 5);
});

test('a credential change without exec is a cred-change, raised when it gains root', () => {
  const { g, w, events, ctx, pas } = setup();
  g.setCred(pas[2]!, 0);
  tick(w, ctx);
  assert.equal(events.length, 1);
  const e = events[0]!;
  assert.equal(e.type, 'cred-change');
  assert.deepEqual([e.before?.['uid'], e.after?.['uid'], e.data?.['raised'], e.severity], [1000, 0, true, 'high']);
  assert.equal(w.stats().walks, 1, 'a field change re-reads one task, it does not re-walk');
});

test('an exec is one process-exec with the name it settled on, even when mm and comm change in two steps', () => {
  const { g, w, events, ctx, pas } = setup();
  g.setMm(pas[2]!, 0x20_0000);
  tick(w, ctx); // new mm, old comm: pending
  assert.equal(events.length, 0);
  g.comm(pas[2]!, 'busybox');
  tick(w, ctx);
  assert.deepEqual(
    events.map((e) => [e.type, e.process?.pid, e.before?.['comm'], e.after?.['comm']]),
    [['process-exec', 100, 'sh', 'busybox']],
  );
});

test('a hostile task list (a cycle, garbage pointers) stays bounded and gives anomalies, never a throw', () => {
  const { g, w, events, ctx, pas } = setup();
  g.setNextRaw(pas[2]!, g.node(pas[1]!)); // 100 → 2: a cycle
  g.countFork(1);
  tick(w, ctx);
  assert.ok(ctx.anomalies.counts['cycle']! > 0 || ctx.anomalies.counts['broken-link']! > 0);
  assert.ok(!events.some((e) => e.type === 'process-exit'));
  g.setNextRaw(pas[1]!, 0x4141_4141_4141_4141n); // garbage next pointer
  g.countFork(1);
  tick(w, ctx);
  assert.ok(ctx.anomalies.counts['fault']! > 0);
  assert.ok(!events.some((e) => e.type === 'process-exit'));
});

test('a setuid landing between the walk that found a task and its shadows is not lost', () => {
  const { g, w, events, ctx, pas } = setup();
  const child = g.fork(101, 'helper', 1000, pas[2]);
  // The guest writes the task's cred pointer after the walk read it but before its shadows are taken.
  const set = ctx.watchSet.set.bind(ctx.watchSet);
  let raced = false;
  ctx.watchSet.set = (watch, key, ranges) => {
    if (!raced && watch === 'processes' && key !== '') {
      raced = true;
      g.setCred(child, 0);
    }
    set(watch, key, ranges);
  };
  tick(w, ctx);
  tick(w, ctx);
  assert.ok(raced);
  const change = events.find((e) => e.type === 'cred-change');
  assert.deepEqual([change?.before?.['uid'], change?.after?.['uid'], change?.data?.['raised']], [1000, 0, true]);
});
