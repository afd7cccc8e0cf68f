import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UsageError } from '../../src/core/errors.js';
import { AnomalySink } from '../../src/linux/anomaly.js';
import { runPlugin } from '../../src/linux/plugin.js';
import pslist from '../../src/linux/plugins/pslist.js';
import pstree from '../../src/linux/plugins/pstree.js';
import threads from '../../src/linux/plugins/threads.js';
import { forEachProcess, forEachThread, pidFilter, taskStateLetter } from '../../src/linux/tasks.js';
import { SyntheticKernel, T, type Variant } from './helpers/synthetic-kernel.js';

const PROCS = [
  { pid: 1, comm: 'init', parent: -1 },
  { pid: 2, comm: 'kthreadd', parent: -1, flags: 0x0020_0000, state: 0x402 },
  { pid: 50, comm: 'worker', parent: 0, uid: 1000, threads: [51, 52] },
  { pid: 60, comm: 'zombie', parent: 0, state: 0, uid: 5 },
];

for (const variant of ['new', 'old'] as Variant[]) {
  test(`pslist over the ${variant} layout: pids, ppids, uids, states, kthread flag, thread counts`, () => {
    const s = new SyntheticKernel(variant, PROCS);
    s.mem.w32(s.taskAddr[3]! + BigInt(T.exitState), 0x20); // EXIT_ZOMBIE
    const r = runPlugin(pslist, s.kernel);
    assert.deepEqual(r.anomalyCounts, {});
    assert.deepEqual(
      r.rows.map((x) => [x.pid, x.ppid, x.uid, x.comm, x.state, x.kthread, x.threads, x.startTime]),
      [
        [1, 0, 0, 'init', 'S', false, 1, 1_000_000_000n],
        [2, 0, 0, 'kthreadd', 'I', true, 1, 2_000_000_000n],
        [50, 1, 1000, 'worker', 'S', false, 3, 50_000_000_000n],
        [60, 1, 5, 'zombie', 'Z', false, 1, 60_000_000_000n],
      ],
    );
    const withThreads = runPlugin(pslist, s.kernel, { threads: true, pid: ['50'] });
    assert.deepEqual(withThreads.rows.map((x) => [x.pid, x.tgid]), [[50, 50], [51, 50], [52, 50]]);
    const th = runPlugin(threads, s.kernel, { pid: ['50'] });
    assert.deepEqual(th.rows.map((x) => [x.tid, x.leader]), [[50, true], [51, false], [52, false]]);
  });
}

test('a cycle in the task list ends the walk with a cycle anomaly and partial rows', () => {
  const s = new SyntheticKernel('new', PROCS);
  // process 3 (pid 60) -> process 1 (pid 2): skips the head forever without a seen-set
  s.mem.w64(s.taskAddr[3]! + BigInt(T.tasks), s.taskAddr[1]! + BigInt(T.tasks));
  const r = runPlugin(pslist, s.kernel);
  assert.deepEqual(r.rows.map((x) => x.pid), [1, 2, 50, 60]);
  assert.equal(r.anomalyCounts.cycle, 1);
});

test('a task pointer into unmapped memory or the user half is a named anomaly, not a crash', () => {
  const s = new SyntheticKernel('new', PROCS);
  s.mem.w64(s.taskAddr[1]! + BigInt(T.tasks), 0xffff_8880_7000_0000n);
  let r = runPlugin(pslist, s.kernel);
  assert.deepEqual(r.rows.map((x) => x.pid), [1, 2]);
  assert.equal(r.anomalyCounts.fault, 1);
  s.mem.w64(s.taskAddr[1]! + BigInt(T.tasks), 0x4141_4141_4141n);
  r = runPlugin(pslist, s.kernel);
  assert.equal(r.anomalyCounts['bad-pointer'], 1);
  // an unreadable cred gives absent uids, the row stays
  s.mem.w64(s.taskAddr[0]! + BigInt(T.cred), 0xffff_8880_7100_0000n);
  r = runPlugin(pslist, s.kernel);
  assert.deepEqual(r.rows[0]!.uid, { absent: 'unreadable', reason: 'cred unreadable' });
});

test('a parent cycle in real_parent still lists every process in pstree, with an anomaly', () => {
  const s = new SyntheticKernel('new', PROCS);
  s.mem.w64(s.taskAddr[0]! + BigInt(T.realParent), s.taskAddr[2]!); // init's parent = worker (whose parent is init)
  const r = runPlugin(pstree, s.kernel);
  assert.deepEqual(r.rows.map((x) => x.pid).sort((a, b) => a - b), [1, 2, 50, 60]);
  assert.ok((r.anomalyCounts.cycle ?? 0) >= 1);
});

test('thread lists: a thread ring that loops is bounded', () => {
  const s = new SyntheticKernel('old', PROCS);
  const [a, b] = s.threadAddr.get(2)!;
  s.mem.w64(b! + BigInt(T.thread), b! + BigInt(T.thread)); // self-loop
  const sink = new AnomalySink();
  const leader = [...forEachProcess(s.kernel, sink)].find((t) => t.address === a)!;
  const got = [...forEachThread(s.kernel, leader, sink)].map((t) => t.s32('pid'));
  assert.deepEqual(got, [50, 51]);
  assert.equal(sink.counts.cycle, 1);
});

test('task state letters follow __task_state_index()', () => {
  const s = new SyntheticKernel('new', [{ pid: 1, comm: 'x', parent: -1 }]);
  const states: [number, number, string][] = [
    [0, 0, 'R'],
    [1, 0, 'S'],
    [2, 0, 'D'],
    [0x402, 0, 'I'],
    [4, 0, 'T'],
    [8, 0, 't'],
    [0x40, 0, 'P'],
    [0, 0x10, 'X'],
    [0x80, 0x20, 'Z'],
    [0x1000, 0, 'D'],
  ];
  for (const [state, exit, letter] of states) {
    s.mem.w32(s.taskAddr[0]! + BigInt(T.state), state);
    s.mem.w32(s.taskAddr[0]! + BigInt(T.exitState), exit);
    const t = [...forEachProcess(s.kernel, new AnomalySink())][0]!;
    assert.equal(taskStateLetter(t), letter, `state 0x${state.toString(16)} exit 0x${exit.toString(16)}`);
  }
});

test('pidFilter accepts repeated and comma-separated pids and names bad input', () => {
  assert.equal(pidFilter(undefined), undefined);
  assert.deepEqual([...pidFilter(['1,2', '3'])!], [1, 2, 3]);
  assert.throws(() => pidFilter(['1;rm']), UsageError);
});
