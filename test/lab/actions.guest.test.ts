/**
 * The scenario actions a monitor test drives (vmi-helper burst, escalate,
 * listen, connect, execafter, now, bench; the on-demand module; the test
 * rootkit loaded through lab exec), each observed through the guest's own
 * /proc on a 6.1 guest. Every change is undone at the end of its test, since
 * other test files share this guest.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { guestNow, spawnAction, waitActionEvent } from '../../src/lab/actions.js';
import { labExec, labRun, labSpawn } from '../../src/lab/exec.js';
import { GUEST_BENCH_KINDS, runGuestBench } from '../../src/lab/guest-bench.js';
import { ONDEMAND_MODULE, type LabGuest } from '../../src/lab/index.js';
import { ROOTKIT, rootkitModule } from '../../src/lab/rootkit/build.js';
import { sharedGuest } from '../helpers/guest.js';
import { runCli } from './helpers/cli.js';

const HELPER = '/bin/vmi-helper';

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Uid: or Gid: of /proc/PID/status as [real, effective, saved, fs]. */
function ids(status: string, key: 'Uid' | 'Gid'): number[] {
  const m = new RegExp(`^${key}:\\s+(\\d+)\\s+(\\d+)\\s+(\\d+)\\s+(\\d+)$`, 'm').exec(status);
  assert.ok(m, `${key} line in ${status}`);
  return m.slice(1).map(Number);
}

/** Rows of /proc/net/tcp as { local port, remote port, state }. */
async function tcpRows(g: LabGuest): Promise<{ localPort: number; remotePort: number; state: number; inode: number }[]> {
  const text = await labRun(g, ['cat', '/proc/net/tcp']);
  return text
    .split('\n')
    .slice(1)
    .filter((l) => l.trim())
    .map((l) => {
      const f = l.trim().split(/\s+/);
      return { localPort: parseInt(f[1]!.split(':')[1]!, 16), remotePort: parseInt(f[2]!.split(':')[1]!, 16), state: parseInt(f[3]!, 16), inode: Number(f[9]) };
    });
}

describe('scenario actions on 6.1', () => {
  let g: LabGuest;
  before(async () => {
    ({ guest: g } = await sharedGuest({ kernel: '6.1', purpose: 'exec' }));
  });

  const log = async (pid: number) => labRun(g, ['cat', `/tmp/vmi-exec/${pid}.log`]);
  const stop = async (pid: number) => labExec(g, ['kill', '-9', String(pid)]);

  test('now prints CLOCK_MONOTONIC ns, which agrees with the guest uptime', async () => {
    const out = await labRun(g, ['sh', '-c', `${HELPER} now; cat /proc/uptime`]);
    const [line, uptime] = out.trim().split('\n');
    const t = Number(/^t=(\d+)$/.exec(line!)![1]);
    assert.ok(Math.abs(t / 1e9 - Number(uptime!.split(' ')[0])) < 2, out);
  });

  test('burst forks N short-lived children of its own, each printing pid and start time', async () => {
    const { pid } = await labSpawn(g, [HELPER, 'burst', '4', '5000']);
    try {
      const children = await waitFor('4 burst children', async () => {
        const lines = (await log(pid)).split('\n').filter((l) => l.startsWith('child '));
        return lines.length === 4 ? lines : undefined;
      });
      const pids = children.map((l) => Number(/pid=(\d+)/.exec(l)![1]));
      assert.equal(new Set(pids).size, 4);
      for (const l of children) assert.match(l, /^child pid=\d+ t=\d+$/);
      for (const c of pids) {
        const status = await labRun(g, ['cat', `/proc/${c}/status`]);
        assert.match(status, new RegExp(`^PPid:\\s+${pid}$`, 'm'));
        assert.match(status, /^Name:\s+vmi-burst$/m);
      }
    } finally {
      await stop(pid); // its children exit on their own when their lifetime ends
    }
    // Run to completion in the foreground: children exit and are waited for.
    const r = await labExec(g, [HELPER, 'burst', '3', '100']);
    assert.equal(r.exitCode, 0, r.stderr.toString());
    assert.equal(r.stdout.toString().split('\n').filter((l) => l.startsWith('child pid=')).length, 3);
    assert.match(r.stdout.toString(), /^burst done children=3 t=\d+$/m);
  });

  test('escalate drops to uid 1000 keeping saved uid 0, then takes uid 0 back without exec', async () => {
    const t0 = await guestNow(g);
    const { pid } = await spawnAction(g, 'escalate', [2500]);
    try {
      const dropped = await waitActionEvent(g, pid, 'escalate');
      assert.equal(dropped.fields['pid'], String(pid));
      assert.ok(dropped.t! > t0, 'the drop happened after the action was started');
      const before = await labRun(g, ['cat', `/proc/${pid}/status`]);
      assert.deepEqual(ids(before, 'Uid'), [1000, 1000, 0, 1000]);
      assert.deepEqual(ids(before, 'Gid'), [1000, 1000, 0, 1000]);
      assert.match(before, /^Name:\s+vmi-escalate$/m);
      const raised = await waitActionEvent(g, pid, 'escalated');
      // It slept DELAY_MS between the two, by the guest's own clock.
      assert.ok(raised.t! - dropped.t! >= 2_500_000_000n, `${raised.t! - dropped.t!} ns apart`);
      const after = await labRun(g, ['cat', `/proc/${pid}/status`]);
      assert.deepEqual(ids(after, 'Uid'), [0, 0, 0, 0]);
      assert.match(await log(pid), new RegExp(`^escalated pid=${pid} uid=0 t=\\d+$`, 'm'));
    } finally {
      await stop(pid);
    }
  });

  test('listen and connect show in /proc/net/tcp as a listener and an established pair', async () => {
    const port = 5555;
    const listener = await labSpawn(g, [HELPER, 'listen', String(port), '60']);
    let client: number | undefined;
    try {
      await waitFor('the listener', async () => ((await log(listener.pid)).includes('listen pid=') ? true : undefined));
      assert.ok((await tcpRows(g)).some((r) => r.localPort === port && r.state === 0x0a), 'no LISTEN row for 5555');
      client = (await labSpawn(g, [HELPER, 'connect', '127.0.0.1', String(port), '60'])).pid;
      const lport = await waitFor('the connection', async () => {
        const m = /lport=(\d+)/.exec(await log(client!));
        return m ? Number(m[1]) : undefined;
      });
      const rows = await tcpRows(g);
      assert.ok(rows.some((r) => r.localPort === lport && r.remotePort === port && r.state === 0x01), 'no ESTABLISHED client row');
      assert.ok(rows.some((r) => r.localPort === port && r.remotePort === lport && r.state === 0x01), 'no ESTABLISHED accepted row');
      assert.equal((await labRun(g, ['cat', `/proc/${client}/comm`])).trim(), 'vmi-connect');
    } finally {
      if (client) await stop(client);
      await stop(listener.pid);
    }
  });

  test('execafter changes comm and argv under the same pid', async () => {
    const { pid } = await labSpawn(g, [HELPER, 'execafter', '1500', '/bin/sleep', '77']);
    try {
      await waitFor('execafter to start', async () => ((await log(pid)).includes('execafter pid=') ? true : undefined));
      assert.equal((await labRun(g, ['cat', `/proc/${pid}/comm`])).trim(), 'vmi-execafter');
      await waitFor('the exec', async () => ((await labRun(g, ['cat', `/proc/${pid}/comm`])).trim() === 'sleep' ? true : undefined));
      const cmdline = (await labExec(g, ['cat', `/proc/${pid}/cmdline`])).stdout.toString().split('\0');
      assert.deepEqual(cmdline.slice(0, 2), ['/bin/sleep', '77']);
      assert.match(await log(pid), /^exec path=\/bin\/sleep t=\d+$/m);
    } finally {
      await stop(pid);
    }
  });

  test('the on-demand module loads and unloads', async () => {
    const name = ONDEMAND_MODULE.name;
    const has = async () => (await labRun(g, ['cat', '/proc/modules'])).split('\n').some((l) => l.startsWith(`${name} `));
    assert.equal(await has(), false, `${name} is loaded at boot`);
    await labRun(g, ['insmod', ONDEMAND_MODULE.path]);
    try {
      assert.equal(await has(), true);
    } finally {
      await labRun(g, ['rmmod', name]);
    }
    assert.equal(await has(), false);
  });

  test('the test rootkit goes in through `vmsight lab exec` stdin (harmless parameters) and comes out with rmmod', { timeout: 900_000 }, async () => {
    const ko = await rootkitModule({ kernel: '6.1' });
    // No hiding, no hook, no unlinking: the module shows in /proc/modules and leaves the shared guest as it was.
    const r = await runCli(['lab', 'exec', g.name, '--timeout', '300', '--', 'sh', '-c', 'cat > /tmp/r.ko && insmod /tmp/r.ko hide_comm= hook_nr=-1 unlink=0; s=$?; rm -f /tmp/r.ko; exit $s'], ko);
    assert.equal(r.code, 0, r.stderr);
    try {
      assert.match(await labRun(g, ['cat', '/proc/modules']), new RegExp(`^${ROOTKIT.module} `, 'm'));
    } finally {
      await labRun(g, ['rmmod', ROOTKIT.module]);
    }
    assert.doesNotMatch(await labRun(g, ['cat', '/proc/modules']), new RegExp(`^${ROOTKIT.module} `, 'm'));
  });

  for (const kind of GUEST_BENCH_KINDS) {
    test(`bench ${kind} reports a positive rate`, async (t) => {
      const r = await runGuestBench(g, kind, 1);
      assert.equal(r.kind, kind);
      assert.ok(r.rate > 0 && r.ops > 0, JSON.stringify(r));
      assert.ok(r.seconds >= 1 && r.seconds < 30, `ran ${r.seconds} s`);
      assert.equal(r.unit, kind === 'fork' ? 'forks/s' : 'MB/s');
      t.diagnostic(`${kind}: ${r.rate} ${r.unit} (${r.ops} ops in ${r.seconds} s)`);
    });
  }
});
