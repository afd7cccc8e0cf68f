/**
 * TaskScanner over the fake live guest: every task and thread with the facts events need, and a thread
 * list that is cyclic or points nowhere stays bounded, says so in anomalies and a `complete: false`, and
 * lists no task twice.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AnomalySink } from '../../src/linux/anomaly.js';
import { GuestView } from '../../src/monitor/guest-view.js';
import { TaskScanner } from '../../src/monitor/task-scan.js';
import { FakeGuest } from './helpers/fake-guest.js';

function scan(g: FakeGuest, threads = true) {
  const anomalies = new AnomalySink();
  const result = new TaskScanner(g.kernel, new GuestView(g.kernel)).scan(anomalies, threads);
  return { ...result, anomalies };
}

test('processes and their threads, in list order, with pid, tgid, ppid and comm', () => {
  const g = new FakeGuest();
  const init = g.fork(1, 'init');
  const sh = g.fork(20, 'sh', 0, init);
  g.thread(sh, 21, 'sh-worker');
  g.thread(sh, 22, 'sh-worker2');
  const r = scan(g);
  assert.equal(r.complete, true);
  assert.deepEqual(r.anomalies.counts, {});
  assert.deepEqual(
    r.tasks.map((t) => [t.pid, t.tgid, t.ppid, t.comm, t.leader]),
    [
      [1, 1, 0, 'init', true],
      [20, 20, 1, 'sh', true],
      [21, 20, 1, 'sh-worker', false],
      [22, 20, 1, 'sh-worker2', false],
    ],
  );
  assert.deepEqual(
    scan(g, false).tasks.map((t) => t.pid),
    [1, 20],
  );
});

test('a cyclic thread list is bounded: a cycle anomaly, not complete, every thread once', () => {
  const g = new FakeGuest();
  const p = g.fork(30, 'app');
  const t1 = g.thread(p, 31, 'w1');
  const t2 = g.thread(p, 32, 'w2');
  g.setThreadNextRaw(t2, g.threadNode(t1)); // w2 → w1 → w2 → …, never back to the head
  const r = scan(g);
  assert.equal(r.complete, false);
  assert.ok(r.anomalies.counts['cycle']! > 0, JSON.stringify(r.anomalies.counts));
  assert.deepEqual(
    r.tasks.map((t) => t.pid),
    [30, 31, 32],
  );
});

test('a thread node pointing nowhere is a fault: not complete, the threads before it kept', () => {
  const g = new FakeGuest();
  const p = g.fork(40, 'app');
  const t1 = g.thread(p, 41, 'w1');
  g.thread(p, 42, 'w2');
  g.setThreadNextRaw(t1, 0xdead_0000_0000_0000n); // not a kernel address
  const r = scan(g);
  assert.equal(r.complete, false);
  assert.ok(r.anomalies.counts['fault']! > 0, JSON.stringify(r.anomalies.counts));
  assert.deepEqual(
    r.tasks.map((t) => t.pid),
    [40, 41],
  );
});
