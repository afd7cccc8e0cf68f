/**
 * The study's cross-view re-check (src/bench/tradeoffs/cross-view.ts
 * recheckTasks): a task mismatch caught mid-fork or mid-exit clears on a
 * fresh look; a task hidden from one view (a rootkit unlinking it from the
 * task list) persists over every look and is reported; looks are bounded.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { recheckTasks, type TaskMismatch, type TaskViews } from '../../src/bench/tradeoffs/cross-view.js';

const A = 0xffff_8880_0000_1000n;
const B = 0xffff_8880_0000_2000n;
const C = 0xffff_8880_0000_3000n;

/** Looks that return `views` in turn (the last one repeated), counting how many were taken. */
function looks(views: (TaskViews | undefined)[]) {
  let n = 0;
  return {
    look: () => views[Math.min(n++, views.length - 1)],
    get taken() {
      return n;
    },
  };
}

const v = (listed: bigint[], leaders: bigint[]): TaskViews => ({ listed: new Set(listed), leaders: new Set(leaders) });

describe('tradeoffs cross-view: task mismatches are looked at again before they count', () => {
  it('a task forked between the two walks is in both views on the first fresh look: cleared', () => {
    const m: TaskMismatch[] = [{ kind: 'task-not-in-list', task: A }];
    const l = looks([v([A, B], [A, B])]);
    assert.deepEqual(recheckTasks(m, l.look, [0, 0]), { persistent: [], cleared: 1 });
    assert.equal(l.taken, 1, 'no more looks once all are cleared');
  });

  it('a task reaped between the walks is in neither view: cleared', () => {
    const m: TaskMismatch[] = [{ kind: 'task-not-in-pid-idr', task: B }];
    assert.deepEqual(recheckTasks(m, looks([v([A], [A])]).look, [0, 0]), { persistent: [], cleared: 1 });
  });

  it('a mismatch that takes k looks to clear (exit still in progress) clears on look k', () => {
    const m: TaskMismatch[] = [{ kind: 'task-not-in-pid-idr', task: B }];
    const l = looks([v([A, B], [A]), v([A, B], [A]), v([A], [A])]);
    assert.deepEqual(recheckTasks(m, l.look, [0, 0]), { persistent: [], cleared: 1 });
    assert.equal(l.taken, 3);
  });

  it('a task hidden from the task list (still in the pid IDR) persists over every look and is reported', () => {
    const m: TaskMismatch[] = [
      { kind: 'task-not-in-list', task: C },
      { kind: 'task-not-in-list', task: A },
    ];
    const l = looks([v([A, B], [A, B, C])]);
    const r = recheckTasks(m, l.look, [0, 0]);
    assert.deepEqual(r.persistent, [{ kind: 'task-not-in-list', task: C }]);
    assert.equal(r.cleared, 1);
    assert.equal(l.taken, 3, 'bounded: one look now and one after each wait');
  });

  it('a task on the list whose pid was taken out of the IDR persists', () => {
    const m: TaskMismatch[] = [{ kind: 'task-not-in-pid-idr', task: B }];
    assert.deepEqual(recheckTasks(m, looks([v([A, B], [A])]).look, [0, 0]).persistent, m);
  });

  it('a look that cannot be taken clears nothing', () => {
    const m: TaskMismatch[] = [{ kind: 'task-not-in-list', task: C }];
    assert.deepEqual(recheckTasks(m, looks([undefined]).look, [0, 0]), { persistent: m, cleared: 0 });
  });

  it('no mismatch: no look at all', () => {
    const l = looks([v([], [])]);
    assert.deepEqual(recheckTasks([], l.look), { persistent: [], cleared: 0 });
    assert.equal(l.taken, 0);
  });
});
