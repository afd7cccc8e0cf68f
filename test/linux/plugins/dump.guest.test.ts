/**
 * The process plugins on ELF dumps of a lab guest (QEMU dump-guest-memory
 * with paging:false and paging:true): the same processes and the same maps
 * of the scenario processes as the guest reported, from a file with no live
 * guest behind it.
 */
import { describe as suite, test } from 'node:test';
import assert from 'node:assert/strict';
import { runPlugin } from '../../../src/linux/plugin.js';
import pslist from '../../../src/linux/plugins/pslist.js';
import maps from '../../../src/linux/plugins/maps.js';
import psaux from '../../../src/linux/plugins/psaux.js';
import { attachDumpForSuite, mayExit, sameComm } from '../../helpers/kernel.js';

for (const paging of [false, true]) {
  suite(`6.1 ELF dump, paging:${paging}`, () => {
    const dumped = attachDumpForSuite({ kernel: '6.1' }, paging);

    test('pslist finds every process the guest reported', () => {
      const r = runPlugin(pslist, dumped.kernel);
      assert.deepEqual(r.anomalyCounts, {});
      const mine = new Map(r.rows.map((x) => [x.pid, x]));
      for (const p of dumped.truth.processes) {
        const m = mine.get(p.pid);
        if (!m) {
          assert.ok(mayExit(p), `pid ${p.pid} missing`);
          continue;
        }
        assert.equal(m.ppid, p.ppid);
        assert.ok(sameComm(p, m.comm));
      }
    });

    test('maps and argv of the scenario processes equal the guest view', () => {
      for (const [pid, d] of dumped.truth.details) {
        const r = runPlugin(maps, dumped.kernel, { pid: [String(pid)] });
        assert.deepEqual(r.rows.map((x) => [x.start, x.end, x.perms, x.path]), d.maps.map((x) => [x.start, x.end, x.perms, x.path]), `maps of ${pid}`);
        const a = runPlugin(psaux, dumped.kernel, { pid: [String(pid)] });
        assert.deepEqual(a.rows[0]?.argv, dumped.truth.processes.find((p) => p.pid === pid)!.cmdline);
      }
    });
  });
}
