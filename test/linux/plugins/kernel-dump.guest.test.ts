/**
 * The files, network and integrity plugins on ELF dumps of a lab guest (QEMU
 * dump-guest-memory, paging:false and paging:true): the same sockets, open
 * files, mounts, modules and log lines as the guest reported, from a file
 * with no live guest behind it.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { runPlugin } from '../../../src/linux/plugin.js';
import checkSyscall from '../../../src/linux/plugins/check_syscall.js';
import kmsg from '../../../src/linux/plugins/kmsg.js';
import lsmod from '../../../src/linux/plugins/lsmod.js';
import lsof from '../../../src/linux/plugins/lsof.js';
import mountinfo from '../../../src/linux/plugins/mountinfo.js';
import sockstat from '../../../src/linux/plugins/sockstat.js';
import { attachDumpForSuite } from '../../helpers/kernel.js';
import { formatDmesg } from '../../../src/linux/printk.js';

for (const paging of [false, true]) {
  describe(`6.1 ELF dump, paging:${paging}: files, network, integrity`, { timeout: 900_000 }, () => {
    const dumped = attachDumpForSuite({ kernel: '6.1' }, paging);

    test('sockstat: the inet sockets of /proc/net/*', () => {
      const r = runPlugin(sockstat, dumped.kernel);
      const n = dumped.truth.net;
      const truthKeys = [...n.tcp, ...n.tcp6, ...n.udp, ...n.udp6, ...n.raw, ...n.raw6].map((s) => `${s.proto} ${s.localAddress}:${s.localPort} ${s.remoteAddress}:${s.remotePort} ${s.inode}`);
      const ours = r.rows.filter((x) => x.family !== 'unix').map((x) => `${x.proto} ${String(x.localAddress)}:${String(x.localPort)} ${String(x.remoteAddress)}:${String(x.remotePort)} ${x.inode}`);
      assert.deepEqual(ours.sort(), truthKeys.sort());
    });

    test('lsof: the fds of every scenario process', () => {
      const r = runPlugin(lsof, dumped.kernel);
      for (const [pid, d] of dumped.truth.details) {
        assert.deepEqual(
          r.rows.filter((x) => x.pid === pid).map((x) => `${x.fd} ${x.path} ${x.pos} ${x.flags}`),
          d.fds.map((f) => `${f.fd} ${f.target} ${f.pos ?? 0} ${f.flags ?? ''}`),
          `pid ${pid}`,
        );
      }
    });

    test('mountinfo, lsmod, kmsg and check_syscall', () => {
      assert.deepEqual(
        runPlugin(mountinfo, dumped.kernel).rows.map((m) => `${m.id} ${m.mountPoint} ${m.fsType}`).sort(),
        dumped.truth.mounts.map((m) => `${m.id} ${m.mountPoint} ${m.fsType}`).sort(),
      );
      assert.deepEqual(runPlugin(lsmod, dumped.kernel).rows.map((m) => `${m.name} ${m.size}`), dumped.truth.modules.map((m) => `${m.name} ${m.size}`));
      const lines = runPlugin(kmsg, dumped.kernel).rows.flatMap((x) => formatDmesg({ tsNsec: BigInt(Math.round(x.time * 1e6)) * 1000n, text: x.text }));
      for (const d of dumped.truth.dmesg) assert.ok(lines.includes(d.raw), d.raw);
      assert.deepEqual(runPlugin(checkSyscall, dumped.kernel).rows.filter((x) => x.suspicious), []);
    });
  });
}
