/**
 * Process plugins against the guest's own view (/proc as printed by the lab
 * at boot) on every lab kernel: every process the guest reported is found
 * with the same pid, ppid, uid/gid, comm, start time and kernel-thread flag;
 * nothing is reported that the guest did not have, except processes born
 * after the print (higher pids) and kernel workers.
 */
import { describe as suite, test } from 'node:test';
import assert from 'node:assert/strict';
import { runPlugin } from '../../../src/linux/plugin.js';
import pslist from '../../../src/linux/plugins/pslist.js';
import pstree from '../../../src/linux/plugins/pstree.js';
import threads from '../../../src/linux/plugins/threads.js';
import kthreads from '../../../src/linux/plugins/kthreads.js';
import { SCENARIO } from '../../../src/lab/index.js';
import { attachForSuite, KERNEL_MATRIX, mayExit, sameComm } from '../../helpers/kernel.js';

for (const { label, opts } of KERNEL_MATRIX) {
  suite(`guest ${label}`, () => {
    const g = attachForSuite(opts);

    test('pslist finds every process with the same pid, ppid, uids, comm, start time; nothing extra', () => {
      const r = runPlugin(pslist, g.kernel);
      assert.deepEqual(r.anomalyCounts, {});
      const mine = new Map(r.rows.map((row) => [row.pid, row]));
      for (const p of g.truth.processes) {
        const m = mine.get(p.pid);
        if (!m) {
          assert.ok(mayExit(p), `pid ${p.pid} (${p.comm}) missing`);
          continue;
        }
        assert.equal(m.ppid, p.ppid, `ppid of ${p.pid}`);
        assert.ok(sameComm(p, m.comm), `comm of ${p.pid}: ${m.comm} vs ${p.comm}`);
        assert.equal(m.uid, p.uid[0], `uid of ${p.pid}`);
        assert.equal(m.euid, p.uid[1], `euid of ${p.pid}`);
        assert.equal(m.gid, p.gid[0], `gid of ${p.pid}`);
        assert.equal(m.kthread, p.kthread, `kthread flag of ${p.pid}`);
        assert.equal(Number(m.startTime / 10_000_000n), p.starttime, `start time of ${p.pid}`);
        assert.equal(m.tgid, p.pid);
        if (p.comm.startsWith('vmi-') && p.pid !== 1) assert.equal(m.state, p.state, `state of ${p.pid}`);
      }
      const known = new Set(g.truth.processes.map((p) => p.pid));
      const maxPid = Math.max(...known);
      for (const m of r.rows) assert.ok(known.has(m.pid) || m.kthread || m.pid > maxPid, `extra process ${m.pid} ${m.comm}`);
      const user = r.rows.find((row) => row.comm === SCENARIO.user);
      assert.ok(user, 'vmi-user is listed');
    });

    test('pslist --pid filters; --threads lists every thread of vmi-threads', () => {
      const t = g.truth.processes.find((p) => p.comm === SCENARIO.threads);
      assert.ok(t, 'the guest reported vmi-threads');
      const one = runPlugin(pslist, g.kernel, { pid: [String(t.pid)] });
      assert.deepEqual(one.rows.map((r) => r.pid), [t.pid]);
      assert.equal(one.rows[0]!.threads, t.threads.length);
      const all = runPlugin(pslist, g.kernel, { pid: [String(t.pid)], threads: true });
      assert.deepEqual(all.rows.map((r) => r.pid).sort((a, b) => a - b), t.threads.map((x) => x.tid).sort((a, b) => a - b));
      assert.ok(all.rows.every((r) => r.tgid === t.pid));
    });

    test('threads matches every thread of every user process', () => {
      const r = runPlugin(threads, g.kernel);
      assert.deepEqual(r.anomalyCounts, {});
      for (const p of g.truth.processes.filter((x) => !x.kthread)) {
        const mine = r.rows.filter((row) => row.pid === p.pid);
        assert.deepEqual(mine.map((x) => x.tid).sort((a, b) => a - b), p.threads.map((x) => x.tid).sort((a, b) => a - b), `threads of ${p.pid}`);
        for (const th of p.threads) assert.equal(mine.find((x) => x.tid === th.tid)!.comm, th.comm);
      }
    });

    test('kthreads lists exactly the kernel threads, each with a thread function symbol', () => {
      const r = runPlugin(kthreads, g.kernel);
      const truthK = g.truth.processes.filter((p) => p.kthread && p.pid !== 2);
      const mine = new Map(r.rows.map((row) => [row.pid, row]));
      for (const p of truthK) if (!mayExit(p)) assert.ok(mine.has(p.pid), `kthread ${p.pid} ${p.comm}`);
      for (const row of r.rows) assert.ok(!g.truth.processes.some((p) => p.pid === row.pid && !p.kthread), `${row.pid} is not a user process`);
      const named = r.rows.filter((row) => typeof row.symbol === 'string');
      assert.ok(named.length >= r.rows.length - 1, 'thread functions resolve to kernel symbols');
      assert.ok(r.rows.some((row) => row.symbol === 'worker_thread'));
      // /proc shows the full name (kthread->full_name) except for workqueue threads, which show comm
      // (kworkers add their current queue): ours must be one of the two.
      for (const row of r.rows) {
        const p = g.truth.processes.find((x) => x.pid === row.pid);
        if (p && !p.comm.startsWith('kworker/')) assert.ok(p.comm === row.name || p.comm === row.comm, `name of ${row.pid}: ${row.name} vs ${p.comm}`);
      }
      if (label !== '5.10') assert.ok(r.rows.some((row) => row.name.length > 15), 'long kthread names are recovered');
    });

    test('pstree puts every process under its parent', () => {
      const r = runPlugin(pstree, g.kernel);
      const byKey = new Map(r.rows.map((row) => [pstree.key(row), row]));
      for (const row of r.rows) {
        if (row.parent === '') continue;
        const parent = byKey.get(row.parent);
        assert.ok(parent, `parent of ${row.pid} is listed`);
        assert.equal(parent.pid, row.ppid);
        assert.equal(row.depth, parent.depth + 1);
      }
      const init = r.rows.find((row) => row.pid === 1)!;
      assert.equal(init.depth, 0);
      assert.ok(r.rows.filter((row) => row.ppid === 1).every((row) => row.depth === 1));
    });
  });
}
