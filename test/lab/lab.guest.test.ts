/**
 * Boots (or reuses) the shared lab guests and checks that the lab delivers
 * what every other guest test relies on: a live QEMU with shared RAM and QMP,
 * and a ground truth that holds the whole scenario, on 6.1, 5.10 and 6.12,
 * plus the 5-level (--cpu max) and 4 GiB variants.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import { QmpClient } from '../../src/qemu/qmp.js';
import { LabError } from '../../src/core/errors.js';
import {
  chooseAccel,
  consolePathOf,
  ensureKernel,
  findGuest,
  labDown,
  labList,
  labUp,
  processByComm,
  SCENARIO,
  SCENARIO_ARGS,
  SCENARIO_ENV,
  SCENARIO_FILES,
  SCENARIO_NET,
  socketInodes,
  type GroundTruth,
  type LabGuest,
} from '../../src/lab/index.js';
import { SHARED_QMP_SOCKETS, sharedGuest, withQmpSocket } from '../helpers/guest.js';

/** The scenario checks, for one kernel's shared guest. */
function scenarioSuite(kernel: string): void {
  describe(`lab guest ${kernel}`, () => {
    let guest: LabGuest;
    let truth: GroundTruth;

    before(async () => {
      ({ guest, truth } = await sharedGuest({ kernel }));
    }, { timeout: 600_000 });

    test('the guest runs, is listed, and its RAM file has the configured size', () => {
      assert.equal(findGuest(guest.name)?.pid, guest.pid);
      assert.ok(labList().some((e) => e.guest.name === guest.name && e.alive));
      assert.equal(fs.statSync(guest.shmPath).size, guest.memoryMiB * 1024 * 1024);
      assert.equal(guest.accel, chooseAccel('auto'));
      assert.ok(guest.gdbPort && guest.gdbPort > 0);
    });

    test('QMP answers on a user socket and on the lab socket: the VM is running', async () => {
      assert.equal(guest.qmpSockets.length, SHARED_QMP_SOCKETS);
      const status = async (sock: string) => {
        const qmp = await QmpClient.connect(sock);
        try {
          return await qmp.execute<{ status: string; running: boolean }>('query-status');
        } finally {
          await qmp.close();
        }
      };
      // User sockets may be held by other test processes sharing this guest: take a free one.
      assert.equal((await withQmpSocket(guest, status)).running, true);
      assert.equal((await status(guest.labQmpSocket)).running, true);
    });

    test('the kernel facts agree with the package that was booted', () => {
      assert.equal(truth.release, guest.kernel.release);
      assert.ok(truth.banner.startsWith(`Linux version ${guest.kernel.release} `));
      assert.match(truth.cmdline, /console=ttyS0/);
      assert.ok(truth.kallsyms.coreCount > 50_000, `core symbols ${truth.kallsyms.coreCount}`);
      assert.match(truth.kallsyms.coreSha256, /^[0-9a-f]{64}$/);
      for (const s of ['init_task', 'linux_banner', 'init_top_pgt', '_text', 'page_offset_base', '__start_BTF', '__stop_BTF', 'init_net', 'modules', 'sys_call_table', 'idt_table', 'init_uts_ns', 'prb']) {
        assert.ok(truth.kallsyms.spots[s], `spot ${s}`);
      }
      assert.ok(truth.kallsyms.spots['__stop_BTF']!.address > truth.kallsyms.spots['__start_BTF']!.address);
      assert.ok(truth.vmcoreinfo && truth.vmcoreinfo.size > 0);
      assert.equal(truth.fwCfgVmcoreinfo?.paddr, truth.vmcoreinfo!.paddr, 'qemu_fw_cfg published the vmcoreinfo note to QEMU');
      assert.ok(truth.dmesg.length > 10, `dmesg lines: ${truth.dmesg.length}`);
      const unstamped = truth.dmesg.filter((l) => l.time === undefined);
      assert.ok(unstamped.length < truth.dmesg.length / 2, `unstamped dmesg lines: ${unstamped.map((l) => l.raw).join(' | ')}`);
      assert.deepEqual(truth.warnings, []);
    });

    test('the RAM file is the guest RAM: it holds the banner the guest printed', () => {
      const ram = fs.readFileSync(guest.shmPath);
      assert.ok(ram.indexOf(Buffer.from(truth.banner)) >= 0);
    });

    test('scenario processes exist with the promised identities', () => {
      const byComm = (c: string) => {
        const p = processByComm(truth, c);
        assert.ok(p, `process ${c}`);
        return p;
      };
      assert.equal(byComm(SCENARIO.init).pid, 1);
      assert.deepEqual(byComm(SCENARIO.user).uid, [1000, 1000, 1000, 1000]);
      const args = byComm(SCENARIO.args);
      assert.deepEqual(args.cmdline, [...SCENARIO_ARGS]);
      assert.deepEqual(truth.details.get(args.pid)?.environ, [...SCENARIO_ENV]);
      const files = byComm(SCENARIO.files);
      const fd7 = truth.details.get(files.pid)!.fds.find((f) => f.fd === SCENARIO_FILES.dataFd);
      assert.equal(fd7?.target, SCENARIO_FILES.dataPath);
      assert.equal(fd7?.pos, 4);
      const maps = truth.details.get(files.pid)!.maps;
      assert.ok(maps.some((m) => m.path === SCENARIO_FILES.dataPath));
      assert.ok(maps.some((m) => m.perms.startsWith('rwx') && m.path === ''));
      const threads = byComm(SCENARIO.threads);
      assert.equal(threads.threads.length, 4);
      assert.deepEqual(threads.threads.map((t) => t.comm).sort(), ['vmi-threads', 'vmi-worker-1', 'vmi-worker-2', 'vmi-worker-3']);
      const ns = byComm(SCENARIO.ns);
      assert.notEqual(truth.details.get(ns.pid)!.ns['net'], truth.details.get(1)?.ns['net'] ?? truth.details.get(args.pid)!.ns['net']);
      assert.deepEqual(truth.details.get(ns.pid)!.cgroup, ['0::/vmi-container']);
      assert.ok(truth.processes.filter((p) => p.kthread).length > 10);
    });

    test('sockets: v4 and v6 listeners, established pairs, udp, raw, unix', () => {
      const listen4 = truth.net.tcp.find((s) => s.localPort === SCENARIO_NET.tcp4Port && s.stateName === 'LISTEN');
      assert.equal(listen4?.localAddress, '0.0.0.0');
      const listen6 = truth.net.tcp6.find((s) => s.localPort === SCENARIO_NET.tcp6Port && s.stateName === 'LISTEN');
      assert.equal(listen6?.localAddress, '::');
      assert.equal(truth.net.tcp.filter((s) => s.stateName === 'ESTABLISHED').length, 2);
      assert.equal(truth.net.tcp6.filter((s) => s.stateName === 'ESTABLISHED' && s.localAddress === '::1').length, 2);
      assert.ok(truth.net.udp.some((s) => s.localPort === SCENARIO_NET.udp4Port));
      assert.ok(truth.net.udp6.some((s) => s.localPort === SCENARIO_NET.udp6Port));
      assert.ok(truth.net.raw.length >= 1);
      assert.ok(truth.net.unix.some((u) => u.path === SCENARIO_NET.unixPath && u.listening));
      // Every inet socket of vmi-net appears in its fd table.
      const net = processByComm(truth, SCENARIO.net)!;
      const inodes = new Set(socketInodes(truth, net.pid));
      assert.ok(inodes.has(listen4!.inode) && inodes.has(listen6!.inode));
      assert.ok(truth.addresses.some((a) => a.ifname === 'dummy0' && a.address === SCENARIO_NET.dummyIpv4.split('/')[0]));
    });

    test('modules from the kernel package are loaded, and mounts are listed', () => {
      const names = truth.modules.map((m) => m.name).sort();
      assert.deepEqual(names, [...guest.modules].sort());
      for (const m of truth.modules) assert.ok(m.address >= 0xffffffff00000000n, `${m.name} at a kernel address`);
      assert.deepEqual(
        truth.mounts.map((m) => m.mountPoint),
        ['/', '/proc', '/sys', '/dev', '/tmp', '/run', '/sys/fs/cgroup'],
      );
    });

  });
}

for (const kernel of ['6.1', '5.10', '6.12']) scenarioSuite(kernel);

test('--cpu max gives the guest la57 (5-level paging)', { timeout: 600_000 }, async () => {
  const { guest, truth } = await sharedGuest({ kernel: '6.1', cpu: 'max' });
  assert.equal(guest.cpu, 'max');
  assert.ok(truth.cpuFlags.includes('la57'), 'la57 in cpu flags');
  assert.deepEqual(truth.warnings, []);
});

test('a 4096 MiB guest has RAM above 4 GiB', { timeout: 600_000 }, async () => {
  const { guest, truth } = await sharedGuest({ kernel: '6.1', memory: 4096 });
  assert.equal(fs.statSync(guest.shmPath).size, 4096 * 1024 * 1024);
  const high = truth.iomem.filter((r) => r.depth === 0 && r.name === 'System RAM' && r.start >= 0x100000000n);
  assert.equal(high.length, 1);
  assert.equal(high[0]!.start, 0x100000000n);
});

test('extra modules are loaded with their parameters before the ground truth', { timeout: 600_000 }, async () => {
  const k = await ensureKernel('6.1');
  const ifb = path.join(k.modulesDir, 'kernel/drivers/net/ifb.ko');
  const { guest, truth } = await sharedGuest({ kernel: '6.1', extraModules: [{ path: ifb, params: 'numifbs=3' }] });
  try {
    assert.ok(guest.modules.includes('ifb'));
    assert.ok(truth.modules.some((m) => m.name === 'ifb'));
    assert.deepEqual(truth.links.filter((l) => l.name.startsWith('ifb')).map((l) => l.name), ['ifb0', 'ifb1', 'ifb2']);
  } finally {
    await labDown(guest.name);
  }
});

test('a guest whose kernel panics fails fast with a LabError and leaves no QEMU or RAM file', async () => {
  const name = `t-panic-${process.pid}`;
  const t0 = Date.now();
  await assert.rejects(
    labUp({ name, kernel: '6.1', append: 'rdinit=/does-not-exist init=/does-not-exist', timeoutMs: 300_000 }),
    (e: unknown) => e instanceof LabError && /panicked/.test(e.message) && /console/.test(e.oneLine()),
  );
  assert.ok(Date.now() - t0 < 120_000);
  assert.equal(findGuest(name), undefined);
  assert.ok(!fs.existsSync(`/dev/shm/vmsight-${name}`));
  assert.ok(fs.existsSync(consolePathOf(name)), 'the console log is kept for diagnosis');
  fs.rmSync(path.dirname(consolePathOf(name)), { recursive: true, force: true });
});
