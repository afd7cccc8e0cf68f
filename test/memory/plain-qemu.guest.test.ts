/**
 * A QEMU as people start it by hand (issue 11): anonymous RAM
 * (memory-backend-ram, no shm file) and no `-device vmcoreinfo`. Through
 * `qmp:SOCKET` and `pid:PID?qmp=SOCKET`: the technique is live read (nothing
 * to map), `info` says vmcoreinfo was found in guest memory, and pslist,
 * sockstat and lsmod agree with the guest's own ground truth.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { command as info } from '../../src/cli/commands/info.js';
import { parseCommandLine } from '../../src/cli/main.js';
import { createOutput } from '../../src/cli/render.js';
import { labDown, labUp, readGroundTruth, type GroundTruth, type LabGuest } from '../../src/lab/index.js';
import { attachKernel } from '../../src/linux/attach.js';
import { runPlugin } from '../../src/linux/plugin.js';
import lsmod from '../../src/linux/plugins/lsmod.js';
import pslist from '../../src/linux/plugins/pslist.js';
import sockstat from '../../src/linux/plugins/sockstat.js';
import { openSource } from '../../src/memory/open.js';
import { TEST_GUEST_PREFIX } from '../helpers/guest.js';

async function runInfo(source: string): Promise<string> {
  const parsed = parseCommandLine(info, [source]);
  let out = '';
  await info.run({ positionals: parsed.positionals, values: parsed.values as Record<string, string | boolean | undefined> }, { out: createOutput('table', (s) => (out += s)), debug: false });
  return out;
}

describe('a plain QEMU: anonymous RAM, no vmcoreinfo device', { timeout: 600_000 }, () => {
  let guest: LabGuest;
  let truth: GroundTruth;
  before(async () => {
    guest = await labUp({ name: `${TEST_GUEST_PREFIX}6.1-plain`, kernel: '6.1', plain: true, reuse: true, extraQmpSockets: 2 });
    truth = readGroundTruth(guest);
  });
  after(async () => {
    await labDown(guest.name).catch(() => undefined);
  });

  test('the QEMU has no shm file and no vmcoreinfo device; the guest kernel still has its vmcoreinfo', () => {
    assert.equal(guest.plain, true);
    assert.ok(!fs.existsSync(guest.shmPath), 'no RAM file');
    const cmdline = fs.readFileSync(`/proc/${guest.pid}/cmdline`, 'utf8').split('\0');
    assert.ok(!cmdline.includes('vmcoreinfo'), 'no -device vmcoreinfo');
    assert.ok(cmdline.some((a) => a.startsWith('memory-backend-ram,')));
    assert.ok(!fs.readFileSync(`/proc/${guest.pid}/maps`, 'utf8').includes('/dev/shm/'), 'no shared RAM mapping');
    assert.equal(truth.fwCfgVmcoreinfo, undefined, 'QEMU offers no etc/vmcoreinfo');
    assert.ok(truth.vmcoreinfo, 'the kernel has its own vmcoreinfo note');
  });

  const specs = () => [`qmp:${guest.qmpSockets[1]}`, `pid:${guest.pid}?qmp=${guest.qmpSockets[2]}`];

  test('info over qmp: and pid: picks live read and finds vmcoreinfo in guest memory', async () => {
    for (const spec of specs()) {
      const text = await runInfo(spec);
      assert.match(text, /^technique\s+live-read \(qemu-process\)/m, `${spec}\n${text}`);
      assert.match(text, /^vmcoreinfo\s+memory 0x/m, `${spec}\n${text}`);
      assert.match(text, new RegExp(`^release\\s+${truth.release.replace(/\./g, '\\.')}$`, 'm'), text);
    }
  });

  test('pslist, sockstat and lsmod over qmp: and pid: agree with the ground truth', async () => {
    for (const spec of specs()) {
      const opened = await openSource(spec);
      assert.equal(opened.chosen.class, 'live-read', spec);
      const k = await attachKernel(opened.memory);
      try {
        const ours = new Map(runPlugin(pslist, k).rows.map((r) => [Number(r.pid), r]));
        const users = truth.processes.filter((p) => !p.kthread);
        assert.ok(users.length >= 5);
        for (const p of users) {
          const r = ours.get(p.pid);
          assert.ok(r, `${spec}: pid ${p.pid} (${p.comm}) missing`);
          assert.equal(r.comm, p.comm);
          assert.equal(Number(r.ppid), p.ppid);
        }
        const key = (s: { proto: string; localPort: unknown; remotePort: unknown; inode: unknown }) => `${s.proto} ${String(s.localPort)} ${String(s.remotePort)} ${String(s.inode)}`;
        const n = truth.net;
        const inetTruth = [...n.tcp, ...n.tcp6, ...n.udp, ...n.udp6, ...n.raw, ...n.raw6].map((s) => key({ ...s, inode: BigInt(s.inode) }));
        const inetOurs = new Set(runPlugin(sockstat, k).rows.filter((x) => x.family === 'inet' || x.family === 'inet6').map((x) => key(x)));
        assert.ok(inetTruth.length >= 6);
        for (const t of inetTruth) assert.ok(inetOurs.has(t), `${spec}: socket ${t} missing`);
        assert.deepEqual(
          runPlugin(lsmod, k).rows.map((m) => [m.name, m.size, m.base.toString(16)].join(' ')),
          truth.modules.map((m) => [m.name, m.size, m.address.toString(16)].join(' ')),
        );
      } finally {
        await k.close?.();
        await opened.memory.close();
      }
    }
  });
});
