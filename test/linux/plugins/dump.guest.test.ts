/**
 * The process plugins on ELF dumps of a lab guest (QEMU dump-guest-memory
 * with paging:false and paging:true): the same processes and the same maps
 * of the scenario processes as the guest reported, from a file with no live
 * guest behind it.
 */
import { after, before, describe as suite, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { attachKernel, type AttachedKernel } from '../../../src/linux/attach.js';
import { runPlugin } from '../../../src/linux/plugin.js';
import pslist from '../../../src/linux/plugins/pslist.js';
import maps from '../../../src/linux/plugins/maps.js';
import psaux from '../../../src/linux/plugins/psaux.js';
import { QmpClient } from '../../../src/qemu/qmp.js';
import type { GroundTruth } from '../../../src/lab/index.js';
import { sharedGuest, withQmpSocket } from '../../helpers/guest.js';
import { mayExit, sameComm } from '../../helpers/kernel.js';

for (const paging of [false, true]) {
  suite(`6.1 ELF dump, paging:${paging}`, () => {
    let dir: string;
    let truth: GroundTruth;
    let kernel: AttachedKernel;
    before(async () => {
      const g = await sharedGuest({ kernel: '6.1' });
      truth = g.truth;
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmsight-test-dump-'));
      const file = path.join(dir, `guest-${paging ? 'paging' : 'flat'}.elf`);
      await withQmpSocket(g.guest, async (sock) => {
        const q = await QmpClient.connect(sock);
        try {
          await q.execute('dump-guest-memory', { paging, protocol: `file:${file}` }, 300_000);
        } finally {
          await q.close();
        }
      });
      kernel = await attachKernel(file);
    }, { timeout: 900_000 });
    after(async () => {
      await kernel?.close();
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    test('pslist finds every process the guest reported', () => {
      const r = runPlugin(pslist, kernel);
      assert.deepEqual(r.anomalyCounts, {});
      const mine = new Map(r.rows.map((x) => [x.pid, x]));
      for (const p of truth.processes) {
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
      for (const [pid, d] of truth.details) {
        const r = runPlugin(maps, kernel, { pid: [String(pid)] });
        assert.deepEqual(r.rows.map((x) => [x.start, x.end, x.perms, x.path]), d.maps.map((x) => [x.start, x.end, x.perms, x.path]), `maps of ${pid}`);
        const a = runPlugin(psaux, kernel, { pid: [String(pid)] });
        assert.deepEqual(a.rows[0]?.argv, truth.processes.find((p) => p.pid === pid)!.cmdline);
      }
    });
  });
}
