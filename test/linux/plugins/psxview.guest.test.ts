/**
 * psxview against the guest: on clean guests of every lab kernel every task
 * is in the task list and the pid IDR and none is hidden; on a 6.1 guest
 * with vmsight's test rootkit (which unlinks vmi-user from init_task.tasks)
 * that process is flagged hidden, found through the pid IDR and its parent's
 * children list, and pslist no longer shows it.
 */
import { describe as suite, test } from 'node:test';
import assert from 'node:assert/strict';
import { runPlugin } from '../../../src/linux/plugin.js';
import psxview from '../../../src/linux/plugins/psxview.js';
import pslist from '../../../src/linux/plugins/pslist.js';
import { ensureRootkit, ROOTKIT, rootkitModuleFile } from '../../../src/lab/rootkit/build.js';
import { attachForSuite, KERNEL_MATRIX, mayExit } from '../../helpers/kernel.js';

for (const { label, opts } of KERNEL_MATRIX) {
  suite(`clean guest ${label}`, () => {
    const g = attachForSuite(opts);

    test('every guest task is in the task list and the pid IDR; nothing hidden', () => {
      const r = runPlugin(psxview, g.kernel);
      assert.deepEqual(r.anomalyCounts, {});
      assert.deepEqual(r.rows.filter((x) => x.hidden).map((x) => `${x.pid} ${x.comm}`), []);
      const byPid = new Map(r.rows.map((x) => [x.pid, x]));
      for (const p of g.truth.processes) {
        for (const th of p.threads.length ? p.threads : [{ tid: p.pid }]) {
          const m = byPid.get(th.tid);
          if (!m) {
            assert.ok(mayExit(p), `task ${th.tid} of ${p.comm}`);
            continue;
          }
          assert.ok(m.pslist && m.pidIdr, `task ${th.tid} is in the task list and the pid IDR`);
          if (th.tid === p.pid) assert.ok(m.children, `process ${p.pid} is on its parent's children list`);
        }
      }
    });
  });
}

suite('guest 6.1 with the test rootkit', () => {
  const g = attachForSuite(async () => ({ kernel: '6.1', extraModules: [rootkitModuleFile(await ensureRootkit({ kernel: '6.1' }))] }), { timeoutMs: 900_000 });

  test('the process unlinked from the task list is flagged hidden, found by the pid IDR and the children list', () => {
    const victim = g.truth.processes.find((p) => p.comm === ROOTKIT.hideComm);
    assert.ok(victim, 'the guest itself still lists the hidden process');
    const listed = runPlugin(pslist, g.kernel);
    assert.ok(!listed.rows.some((x) => x.pid === victim.pid), 'pslist (task list) no longer has it');
    const r = runPlugin(psxview, g.kernel);
    const row = r.rows.find((x) => x.pid === victim.pid);
    assert.ok(row, 'psxview finds it');
    assert.deepEqual([row.pslist, row.pidIdr, row.children, row.hidden], [false, true, true, true]);
    assert.equal(row.comm, ROOTKIT.hideComm);
    assert.deepEqual(r.rows.filter((x) => x.hidden).map((x) => x.pid), [victim.pid], 'nothing else is hidden');
  });
});
