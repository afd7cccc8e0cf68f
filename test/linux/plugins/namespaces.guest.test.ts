/**
 * Credential and namespace plugins against the guest's own view on every
 * lab kernel: capability sets equal /proc/<pid>/status, uids/gids equal,
 * no struct cred is shared between unrelated processes, namespace inode
 * numbers equal the /proc/<pid>/ns links, and cgroup paths equal
 * /proc/<pid>/cgroup (vmi-ns runs in its own namespaces and cgroup).
 */
import { describe as suite, test } from 'node:test';
import assert from 'node:assert/strict';
import { runPlugin } from '../../../src/linux/plugin.js';
import capabilities from '../../../src/linux/plugins/capabilities.js';
import creds from '../../../src/linux/plugins/creds.js';
import namespaces, { nsKey } from '../../../src/linux/plugins/namespaces.js';
import { NAMESPACE_KINDS } from '../../../src/linux/namespaces.js';
import { SCENARIO, SCENARIO_USER } from '../../../src/lab/index.js';
import { attachForSuite, KERNEL_MATRIX, mayExit } from '../../helpers/kernel.js';

for (const { label, opts } of KERNEL_MATRIX) {
  suite(`guest ${label}`, () => {
    const g = attachForSuite(opts);

    test('capabilities equal /proc/<pid>/status for every process', () => {
      const r = runPlugin(capabilities, g.kernel);
      assert.deepEqual(r.anomalyCounts, {});
      const byPid = new Map(r.rows.map((x) => [x.pid, x]));
      let compared = 0;
      for (const p of g.truth.processes) {
        const m = byPid.get(p.pid);
        if (!m) continue;
        assert.deepEqual([m.capInh, m.capPrm, m.capEff, m.capBnd], [p.capInh, p.capPrm, p.capEff, p.capBnd], `caps of ${p.pid}`);
        compared++;
      }
      // Kernel workers come and go; of the rest only the boot's transient shells (≤ 3) may have exited.
      const gone = g.truth.processes.filter((p) => !byPid.has(p.pid) && !mayExit(p));
      assert.ok(gone.length <= 3, `compared ${compared} of ${g.truth.processes.length}; not in capabilities: ${gone.map((p) => `${p.pid}:${p.comm}`).join(', ')}`);
    });

    test('creds: uids and gids equal the guest, no cred shared between unrelated processes', () => {
      const r = runPlugin(creds, g.kernel);
      assert.deepEqual(r.anomalyCounts, {});
      const byPid = new Map(r.rows.map((x) => [x.pid, x]));
      let compared = 0;
      for (const p of g.truth.processes) {
        const m = byPid.get(p.pid);
        if (!m) continue; // exited since the guest printed its view (transient shells); bounded below
        assert.deepEqual([m.uid, m.euid, m.gid, m.egid], [p.uid[0], p.uid[1], p.gid[0], p.gid[1]], `ids of ${p.pid}`);
        compared++;
      }
      const gone = g.truth.processes.filter((p) => !byPid.has(p.pid) && !mayExit(p));
      assert.ok(gone.length <= 3, `compared ${compared} of ${g.truth.processes.length} guest processes; not in creds: ${gone.map((p) => `${p.pid}:${p.comm}`).join(', ')}`);
      // The long-lived scenario processes are all there, and the unprivileged one has its own ids.
      for (const comm of [SCENARIO.user, SCENARIO.args, SCENARIO.files, SCENARIO.threads, SCENARIO.ns]) {
        const p = g.truth.processes.find((x) => x.comm === comm);
        assert.ok(p && byPid.has(p.pid), `${comm} is in the guest's view and in creds`);
      }
      const user = r.rows.find((x) => x.comm === SCENARIO.user);
      assert.deepEqual([user?.uid, user?.gid], [SCENARIO_USER.uid, SCENARIO_USER.gid], `${SCENARIO.user} runs as the scenario user`);
      const sharedUser = r.rows.filter((x) => x.shared && !g.truth.processes.find((p) => p.pid === x.pid)?.kthread);
      assert.deepEqual(sharedUser.map((x) => x.pid), [], 'no user process shares its cred');
    });

    test('namespace inode numbers and cgroup paths equal /proc/<pid>/ns and /proc/<pid>/cgroup', () => {
      const r = runPlugin(namespaces, g.kernel);
      assert.deepEqual(r.anomalyCounts, {});
      for (const [pid, d] of g.truth.details) {
        const m = r.rows.find((x) => x.pid === pid);
        assert.ok(m, `pid ${pid}`);
        for (const kind of NAMESPACE_KINDS) {
          const link = d.ns[kind];
          if (link === undefined) continue;
          const inum = Number(/\[(\d+)\]/.exec(link)![1]);
          assert.equal(m[nsKey(kind) as `${string}Ns`], inum, `${kind} of ${pid}`);
        }
        const v2 = d.cgroup.find((l) => l.startsWith('0::'));
        if (v2) assert.equal(m.cgroupPath, v2.slice(3), `cgroup of ${pid}`);
      }
      const ns = r.rows.find((x) => x.comm === SCENARIO.ns)!;
      assert.ok(ns.container, 'vmi-ns is in its own namespaces');
      assert.ok(ns.differs.includes('net') && ns.differs.includes('mnt'));
      assert.ok(!r.rows.find((x) => x.comm === SCENARIO.user)!.container);
    });
  });
}
