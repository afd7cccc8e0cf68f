/**
 * The files, network and integrity plugins on ELF dumps of a lab guest (QEMU
 * dump-guest-memory, paging:false and paging:true): the same sockets, open
 * files, mounts, modules and log lines as the guest reported, from a file
 * with no live guest behind it.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { GroundTruth } from '../../../src/lab/index.js';
import { attachKernel, type AttachedKernel } from '../../../src/linux/attach.js';
import { runPlugin } from '../../../src/linux/plugin.js';
import checkSyscall from '../../../src/linux/plugins/check_syscall.js';
import kmsg from '../../../src/linux/plugins/kmsg.js';
import lsmod from '../../../src/linux/plugins/lsmod.js';
import lsof from '../../../src/linux/plugins/lsof.js';
import mountinfo from '../../../src/linux/plugins/mountinfo.js';
import sockstat from '../../../src/linux/plugins/sockstat.js';
import { formatDmesg } from '../../../src/linux/printk.js';
import { QmpClient } from '../../../src/qemu/qmp.js';
import { sharedGuest, withQmpSocket } from '../../helpers/guest.js';

for (const paging of [false, true]) {
  describe(`6.1 ELF dump, paging:${paging}: files, network, integrity`, { timeout: 900_000 }, () => {
    let dir: string;
    let truth: GroundTruth;
    let kernel: AttachedKernel;
    before(async () => {
      const g = await sharedGuest({ kernel: '6.1' });
      truth = g.truth;
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmsight-test-kdump-'));
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
    });
    after(async () => {
      await kernel?.close();
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    test('sockstat: the inet sockets of /proc/net/*', () => {
      const r = runPlugin(sockstat, kernel);
      const n = truth.net;
      const truthKeys = [...n.tcp, ...n.tcp6, ...n.udp, ...n.udp6, ...n.raw, ...n.raw6].map((s) => `${s.proto} ${s.localAddress}:${s.localPort} ${s.remoteAddress}:${s.remotePort} ${s.inode}`);
      const ours = r.rows.filter((x) => x.family !== 'unix').map((x) => `${x.proto} ${String(x.localAddress)}:${String(x.localPort)} ${String(x.remoteAddress)}:${String(x.remotePort)} ${x.inode}`);
      assert.deepEqual(ours.sort(), truthKeys.sort());
    });

    test('lsof: the fds of every scenario process', () => {
      const r = runPlugin(lsof, kernel);
      for (const [pid, d] of truth.details) {
        assert.deepEqual(
          r.rows.filter((x) => x.pid === pid).map((x) => `${x.fd} ${x.path} ${x.pos} ${x.flags}`),
          d.fds.map((f) => `${f.fd} ${f.target} ${f.pos ?? 0} ${f.flags ?? ''}`),
          `pid ${pid}`,
        );
      }
    });

    test('mountinfo, lsmod, kmsg and check_syscall', () => {
      assert.deepEqual(
        runPlugin(mountinfo, kernel).rows.map((m) => `${m.id} ${m.mountPoint} ${m.fsType}`).sort(),
        truth.mounts.map((m) => `${m.id} ${m.mountPoint} ${m.fsType}`).sort(),
      );
      assert.deepEqual(runPlugin(lsmod, kernel).rows.map((m) => `${m.name} ${m.size}`), truth.modules.map((m) => `${m.name} ${m.size}`));
      const lines = runPlugin(kmsg, kernel).rows.flatMap((x) => formatDmesg({ tsNsec: BigInt(Math.round(x.time * 1e6)) * 1000n, text: x.text }));
      for (const d of truth.dmesg) assert.ok(lines.includes(d.raw), d.raw);
      assert.deepEqual(runPlugin(checkSyscall, kernel).rows.filter((x) => x.suspicious), []);
    });
  });
}
