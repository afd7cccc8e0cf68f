/**
 * sockstat and ifconfig against the guest's /proc/net/* and `ip` output on
 * 5.10, 6.1 and 6.12: every listening and connected inet socket and every
 * unix socket is found with the same values, and nothing extra.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import ifconfig from '../../src/linux/plugins/ifconfig.js';
import sockstat from '../../src/linux/plugins/sockstat.js';
import { isAbsent, runPlugin } from '../../src/linux/plugin.js';
import { AnomalySink } from '../../src/linux/anomaly.js';
import { decodeTableSock, kernelTableSocks, socketInode } from '../../src/linux/net/inet-hashtables.js';
import { attachForSuite, KERNEL_MATRIX } from '../helpers/kernel.js';

for (const { label: kernel, opts } of KERNEL_MATRIX) {
  describe(`network on ${kernel}`, { timeout: 600_000 }, () => {
    const g = attachForSuite(opts);

    test('inet sockets equal /proc/net/{tcp,tcp6,udp,udp6,raw,raw6}', () => {
      const r = runPlugin(sockstat, g.kernel);
      assert.equal(r.anomalies.length, 0, JSON.stringify(r.anomalies.slice(0, 3)));
      const key = (s: { proto: string; localAddress: unknown; localPort: unknown; remoteAddress: unknown; remotePort: unknown; state: string; inode: unknown }) =>
        `${s.proto} ${String(s.localAddress)}:${String(s.localPort)} ${String(s.remoteAddress)}:${String(s.remotePort)} ${s.state} ${String(s.inode)}`;
      const n = g.truth.net;
      const truth = [...n.tcp, ...n.tcp6, ...n.udp, ...n.udp6, ...n.raw, ...n.raw6].map((s) => key({ ...s, state: s.stateName, inode: BigInt(s.inode) }));
      const initNs = r.rows.find((x) => x.pids.includes(1) || x.family !== 'unix')?.netns;
      const ours = r.rows.filter((x) => x.family === 'inet' || x.family === 'inet6').filter((x) => x.netns === initNs).map((x) => key(x));
      assert.ok(truth.length >= 6, 'the scenario has TCP/UDP/RAW sockets');
      assert.deepEqual([...ours].sort(), [...truth].sort());
    });

    test('the kernel tables alone (ehash, lhash2, udp, raw) hold exactly /proc/net/{tcp,udp,raw}{,6}', () => {
      const a = new AnomalySink();
      const initNs = runPlugin(sockstat, g.kernel).rows.find((x) => x.pids.includes(1) || x.family !== 'unix')?.netns;
      const rows = [...kernelTableSocks(g.kernel, a)].map((t) => ({ t, info: decodeTableSock(g.kernel, t.sk, a)! }));
      assert.equal(a.total, 0, JSON.stringify(a.items.slice(0, 3), (_, v) => (typeof v === 'bigint' ? v.toString(16) : v)));
      const ours = rows
        .filter(({ info }) => info.netns === initNs && (info.family === 2 || info.family === 10))
        .map(({ info }) => `${info.proto} ${info.local!.address}:${info.local!.port} ${info.remote!.address}:${info.remote!.port} ${info.stateName} ${socketInode(g.kernel, info.socket, a)}`);
      const n = g.truth.net;
      const truth = [...n.tcp, ...n.tcp6, ...n.udp, ...n.udp6, ...n.raw, ...n.raw6].map(
        (s) => `${s.proto} ${s.localAddress}:${s.localPort} ${s.remoteAddress}:${s.remotePort} ${s.stateName} ${s.inode}`,
      );
      assert.deepEqual([...ours].sort(), [...truth].sort());
      const sources = new Set(rows.map(({ t }) => t.source));
      for (const s of ['tcp-listen', 'udp', 'raw'] as const) assert.ok(sources.has(s), `found sockets in ${s}`);
    });

    test('unix sockets equal /proc/net/unix (path, inode, listening)', () => {
      const r = runPlugin(sockstat, g.kernel, { family: 'unix' });
      const ours = r.rows.map((x) => `${x.inode} ${isAbsent(x.path) ? '' : x.path} ${x.state === 'LISTEN'}`);
      const truth = g.truth.net.unix.map((u) => `${u.inode} ${u.path} ${u.listening}`);
      assert.deepEqual(ours.sort(), truth.sort());
    });

    test('owning pids: every scenario socket inode is attributed to the process holding it', () => {
      const r = runPlugin(sockstat, g.kernel);
      for (const [pid, d] of g.truth.details) {
        for (const fd of d.fds) {
          const m = /^socket:\[(\d+)\]$/.exec(fd.target);
          if (!m) continue;
          const row = r.rows.find((x) => x.inode === BigInt(m[1]!));
          assert.ok(row, `socket inode ${m[1]} of pid ${pid}`);
          assert.ok(row.pids.includes(pid), `pid ${pid} owns inode ${m[1]}`);
        }
      }
    });

    test('interfaces and addresses of the init namespace equal `ip -o link` / `ip -o addr`', () => {
      const r = runPlugin(ifconfig, g.kernel);
      assert.equal(r.anomalies.length, 0);
      const initNs = r.rows[0]!.netns;
      const rows = r.rows.filter((x) => x.netns === initNs);
      assert.deepEqual(rows.map((x) => `${x.index} ${x.name}`).sort(), g.truth.links.map((l) => `${l.index} ${l.name}`).sort());
      for (const l of g.truth.links) {
        const row = rows.find((x) => x.name === l.name)!;
        assert.equal(row.mtu, l.mtu, l.name);
        assert.equal(row.mac, l.mac, l.name);
        for (const f of l.flags) assert.ok(row.flags.split(',').includes(f), `${l.name} flag ${f} in ${row.flags}`);
      }
      const ours = rows.flatMap((x) => x.addresses.map((a) => `${x.name} ${a}`));
      const truth = g.truth.addresses.map((a) => `${a.ifname} ${a.family} ${a.address}/${a.prefixLen} scope ${a.scope}`);
      assert.deepEqual(ours.sort(), truth.sort());
    });
  });
}
