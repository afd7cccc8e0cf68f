/**
 * The monitor against real guests: hundreds of actions driven through `lab exec` (long-lived processes
 * started and killed, bursts of short-lived ones, execs, listeners, a privilege escalation, a module loaded
 * and unloaded, and on 6.1 the test rootkit hiding a process, hooking a syscall and hiding itself) must
 * arrive as events with the right fields, in order, none duplicated, every start either seen or counted in
 * an unseen-starts event; the SQLite store holds exactly the events streamed. Then a guest reset ends in a
 * guest-rebooted event with monitoring going on, and QEMU killed ends the monitor with qemu-exited and a
 * clean store (and, through the CLI, exit code 3 and one line). No assertion on times.
 *
 * Each kernel gets a guest of its own: these actions (and the rootkit) change what the shared guests'
 * ground truth says.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { labRun } from '../../src/lab/exec.js';
import { labDown, labUp, ONDEMAND_MODULE, type LabGuest } from '../../src/lab/index.js';
import { ROOTKIT, rootkitModule } from '../../src/lab/rootkit/build.js';
import { attachKernel, type AttachedKernel } from '../../src/linux/attach.js';
import type { MonitorEvent } from '../../src/monitor/events.js';
import { GuestLifecycle } from '../../src/monitor/lifecycle.js';
import { Monitor, type MonitorResult } from '../../src/monitor/monitor.js';
import { EventStore } from '../../src/monitor/sinks/store.js';
import { WATCH_NAMES } from '../../src/monitor/watches/index.js';
import { QmpClient } from '../../src/qemu/qmp.js';
import { TEST_GUEST_PREFIX } from '../helpers/guest.js';
import { CollectingSink } from './helpers/events.js';

const HELPER = '/bin/vmi-helper';
const root = path.join(import.meta.dirname, '../..');

const pidsIn = (text: string, label: string): number[] => [...text.matchAll(new RegExp(`${label} pid=(\\d+)`, 'g'))].map((m) => Number(m[1]));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Running {
  kernel: AttachedKernel;
  monitor: Monitor;
  sink: CollectingSink;
  store: string;
  lifecycle: GuestLifecycle;
  done: Promise<MonitorResult>;
}

async function startMonitor(guest: LabGuest, dir: string): Promise<Running> {
  const kernel = await attachKernel(guest.name);
  const sink = new CollectingSink();
  const store = path.join(dir, `events-${Date.now()}.db`);
  const lifecycle = await GuestLifecycle.open(guest.qmpSockets.slice(1), guest.pid);
  let ready!: () => void;
  const isReady = new Promise<void>((r) => (ready = r));
  const monitor = new Monitor(kernel, { watches: WATCH_NAMES.filter((w) => w !== 'files'), sinks: [sink, EventStore.open(store)], lifecycle, onReady: ready });
  const done = monitor.run();
  await isReady;
  return { kernel, monitor, sink, store, lifecycle, done };
}

async function stopMonitor(r: Running): Promise<MonitorResult> {
  r.monitor.stop();
  const result = await r.done;
  assert.deepEqual(await r.monitor.closeSinks(), []);
  await r.lifecycle.close();
  await r.monitor.current.close();
  return result;
}

/** The store holds exactly the events streamed, in order. */
function assertStoreEquals(store: string, events: readonly MonitorEvent[]): void {
  const s = EventStore.openReadOnly(store);
  try {
    const stored = s.query({});
    assert.equal(stored.length, events.length, 'events in the store');
    assert.deepEqual(
      stored.map((e) => JSON.stringify(e)),
      events.map((e) => JSON.stringify(e)),
    );
  } finally {
    void s.close();
  }
}

for (const kernelSpec of ['6.1', '5.10']) {
  describe(`monitor on ${kernelSpec}`, () => {
    let guest: LabGuest;
    let dir: string;
    before(async () => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmsight-monitor-'));
      guest = await labUp({ name: `${TEST_GUEST_PREFIX}mon-${kernelSpec}`, kernel: kernelSpec, memory: 256, extraQmpSockets: 2 });
    });
    after(async () => {
      await labDown(guest.name).catch(() => undefined);
      fs.rmSync(dir, { recursive: true, force: true });
    });

    test('hundreds of guest actions arrive as events, in order, none duplicated, every start seen or counted', async () => {
      const r = await startMonitor(guest, dir);
      const { sink } = r;
      // 30 long-lived processes, started in one go, killed later.
      const started = await labRun(guest, ['sh', '-c', 'for i in $(seq 1 30); do sleep 600 & echo "long pid=$!"; done']);
      const longPids = pidsIn(started, 'long');
      assert.equal(longPids.length, 30);
      // Bursts of short-lived children: 150 living 20 ms, 150 living not at all.
      const burstPids = [
        ...[...(await labRun(guest, [HELPER, 'burst', '150', '20'])).matchAll(/child pid=(\d+)/g)].map((m) => Number(m[1])),
        ...[...(await labRun(guest, [HELPER, 'burst', '150', '0'])).matchAll(/child pid=(\d+)/g)].map((m) => Number(m[1])),
      ];
      assert.equal(burstPids.length, 300);
      // Execs, listeners, privilege escalations, a module in and out.
      const execPids: number[] = [];
      for (let i = 0; i < 5; i++) execPids.push(...pidsIn(await labRun(guest, [HELPER, 'execafter', '100', '/bin/sleep', '0.5']), 'execafter'));
      const ports = [6101, 6102, 6103, 6104, 6105];
      for (const p of ports) await labRun(guest, [HELPER, 'listen', String(p), '1']);
      const escalated: number[] = [];
      for (let i = 0; i < 3; i++) escalated.push(...pidsIn(await labRun(guest, ['sh', '-c', `${HELPER} escalate 200 & p=$!; sleep 1; kill $p`]), 'escalate'));
      for (let i = 0; i < 3; i++) await labRun(guest, ['sh', '-c', `insmod ${ONDEMAND_MODULE.path} && sleep 0.3 && rmmod ${ONDEMAND_MODULE.name}`]);
      await labRun(guest, ['kill', ...longPids.map(String)]);
      let rootkit = false;
      if (kernelSpec === '6.1') {
        const ko = await rootkitModule({ release: r.kernel.profile.release });
        await labRun(guest, ['sh', '-c', `cat > /tmp/r.ko && insmod /tmp/r.ko hide_comm=${ROOTKIT.hideComm} hook_nr=${ROOTKIT.hookNr} unlink=1`], { stdin: ko });
        rootkit = true;
        await sink.until('hidden-process', (e) => e.type === 'hidden-process' && e.process?.comm === ROOTKIT.hideComm);
        await sink.until('syscall-hook', (e) => e.type === 'syscall-hook' && e.data?.['index'] === ROOTKIT.hookNr);
        await sink.until('hidden-module', (e) => e.type === 'hidden-module');
      }
      for (const pid of longPids) await sink.until(`exit of ${pid}`, (e) => e.type === 'process-exit' && e.process?.pid === pid);
      await sleep(500);
      const result = await stopMonitor(r);
      assert.equal(result.reason, 'signal');
      const events = sink.events;

      // Sequence numbers 1..n, no gaps; times within the pass windows' order.
      assert.deepEqual(
        events.map((e) => e.seq),
        events.map((_, i) => i + 1),
      );
      for (const e of events) assert.ok(e.window.from <= e.window.to, `window of #${e.seq}`);
      // No duplicates: one start and at most one exit per task key.
      for (const type of ['process-start', 'process-exit', 'thread-start', 'thread-exit'] as const) {
        const keys = sink.of(type).map((e) => e.key);
        assert.equal(new Set(keys).size, keys.length, `${type} keys are unique`);
      }
      const startOf = new Map(sink.of('process-start').map((e) => [e.process!.pid, e]));
      const exits = sink.of('process-exit');
      // Long-lived processes: start (parent the sh that started them), then exit, in that order.
      for (const pid of longPids) {
        const s = startOf.get(pid);
        assert.ok(s, `start of long-lived pid ${pid}`);
        const x = exits.find((e) => e.key === s.key);
        assert.ok(x && x.seq > s.seq, `exit of ${pid} after its start`);
      }
      const longComms = new Set(longPids.map((pid) => [...sink.events].reverse().find((e) => e.process?.pid === pid && (e.type === 'process-exec' || e.type === 'process-start'))?.process?.comm));
      assert.deepEqual([...longComms], ['sleep']);
      // Bursts: every child is seen or inside the pid range of an unseen-starts event.
      const unseen = sink.of('unseen-starts');
      const counted = (pid: number) =>
        unseen.some((e) => {
          const d = e.data!;
          return (d['pids'] as number[]).includes(pid) || (typeof d['pidFrom'] === 'number' && pid >= (d['pidFrom'] as number) && pid <= (d['pidTo'] as number));
        });
      const missed = burstPids.filter((pid) => !startOf.has(pid) && !counted(pid));
      assert.deepEqual(missed, [], 'burst children neither seen nor counted');
      for (const e of unseen) assert.equal(e.data!['count'], (e.data!['forks'] as number) - (e.data!['seen'] as number));
      // Every start the kernel counted is accounted for: seen individually or in an unseen count.
      // Execs under the same pid, with the final name.
      for (const pid of execPids) assert.ok(sink.of('process-exec').some((e) => e.process?.pid === pid && e.after?.['comm'] === 'sleep'), `exec of ${pid}; its events: ${JSON.stringify(sink.events.filter((e) => e.process?.pid === pid || (e.type === 'unseen-starts' && ((e.data?.['pids'] as number[] | undefined) ?? []).includes(pid))).map((e) => [e.type, e.before, e.after, e.data]))}`);
      // Listeners opened and closed, with their owner.
      for (const port of ports) {
        const l = sink.of('socket-listen').find((e) => e.data?.['localPort'] === port);
        assert.ok(l, `listen on ${port}`);
        assert.equal(l.process?.comm, 'vmi-listen', `owner of the listener on ${port}: ${JSON.stringify(l)}`);
        assert.ok(sink.of('socket-close').some((e) => e.key === l.key && e.seq > l.seq), `close of ${port}`);
      }
      // Privilege escalation without exec: uid 1000 → 0, severity high.
      for (const pid of escalated) {
        const c = sink.of('cred-change').find((e) => e.process?.pid === pid && e.data?.['raised'] === true);
        assert.ok(c, `cred-change of ${pid}; its events: ${JSON.stringify(sink.events.filter((e) => e.process?.pid === pid).map((e) => [e.type, e.before, e.after]))}`);
        assert.equal(c.before?.['uid'], 1000);
        assert.equal(c.after?.['uid'], 0);
        assert.equal(c.severity, 'high');
      }
      assert.equal(sink.of('module-load').filter((e) => e.data?.['name'] === ONDEMAND_MODULE.name).length, 3);
      assert.equal(sink.of('module-unload').filter((e) => e.data?.['name'] === ONDEMAND_MODULE.name).length, 3);
      if (rootkit) {
        assert.equal(sink.of('hidden-process').filter((e) => e.process?.comm === ROOTKIT.hideComm).length, 1, 'hidden once, no exit');
        const hidden = sink.of('hidden-process')[0]!;
        assert.ok(!exits.some((e) => e.key === hidden.key), 'a hidden process is not reported as exited');
        const hook = sink.of('syscall-hook').find((e) => e.data?.['index'] === ROOTKIT.hookNr)!;
        assert.equal(hook.data?.['suspicious'], true);
        assert.ok(sink.of('module-load').some((e) => e.data?.['name'] === 'vmi_rootkit'));
      }
      // Several hundred actions: every start of them seen, or counted by the kernel's counters.
      const starts = sink.of('process-start').length + unseen.reduce((n, e) => n + (e.data!['count'] as number), 0);
      assert.ok(starts >= longPids.length + burstPids.length + execPids.length + ports.length + escalated.length, `${starts} starts accounted`);
      assertStoreEquals(r.store, events);
    });

    if (kernelSpec === '6.1') {
      test('a paused guest is reported and not read until it resumes', async () => {
        const r = await startMonitor(guest, dir);
        const qmp = await QmpClient.connect(guest.qmpSockets[guest.qmpSockets.length - 1]!);
        try {
          await qmp.execute('stop');
          const paused = await r.sink.until('guest-paused', (e) => e.type === 'guest-paused');
          const ticks = r.monitor.stats.ticks;
          await sleep(1000);
          assert.ok(r.monitor.stats.ticks - ticks <= 1, 'no ticks while paused');
          await qmp.execute('cont');
          const resumed = await r.sink.until('guest-resumed', (e) => e.type === 'guest-resumed');
          assert.ok(resumed.seq > paused.seq);
        } finally {
          await qmp.execute('cont').catch(() => undefined);
          await qmp.close();
        }
        await stopMonitor(r);
      });

      test('a guest reset ends in guest-rebooted, and monitoring goes on with the new kernel', async () => {
        const r = await startMonitor(guest, dir);
        const qmp = await QmpClient.connect(guest.qmpSockets[guest.qmpSockets.length - 1]!);
        try {
          // The lab runs QEMU with -no-reboot (a reset exits QEMU, so a kernel panic ends a test run): make
          // this guest's resets real resets, as on a host that runs guests for people.
          await qmp.execute('set-action', { reboot: 'reset' });
          await qmp.execute('system_reset');
        } finally {
          await qmp.close();
        }
        const rebooted = await r.sink.until('guest-rebooted', (e) => e.type === 'guest-rebooted', 180_000);
        assert.notEqual(rebooted.data?.['kaslrShift'], undefined);
        // The lab's exec agent comes back with the new boot; a process started now is seen.
        let out = '';
        for (let i = 0; i < 60 && !out; i++) {
          out = await labRun(guest, [HELPER, 'execafter', '300', '/bin/true']).catch(() => '');
          if (!out) await sleep(1000);
        }
        const [pid] = pidsIn(out, 'execafter');
        await r.sink.until('start after reboot', (e) => e.type === 'process-start' && e.seq > rebooted.seq && e.process?.pid === pid);
        await stopMonitor(r);
        assertStoreEquals(r.store, r.sink.events);
      });

      test('QEMU killed: the monitor ends with qemu-exited and a clean store; the CLI exits 3 with one line', async () => {
        const store = path.join(dir, 'cli.db');
        const cli = spawn(process.execPath, [path.join(root, 'bin/vmsight.js'), 'monitor', guest.name, '--store', store, '--jsonl'], { stdio: ['ignore', 'pipe', 'pipe'] });
        let stdout = '';
        let stderr = '';
        cli.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
        cli.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        const exited = new Promise<number | null>((resolve) => cli.on('exit', (code) => resolve(code)));
        for (let i = 0; i < 600 && !stdout.includes('monitor-started'); i++) await sleep(100);
        assert.match(stdout, /monitor-started/);
        process.kill(guest.pid, 'SIGKILL');
        const code = await exited;
        assert.equal(code, 3, stderr);
        const lines = stderr.trim().split('\n');
        assert.equal(lines.length, 1, stderr);
        assert.match(lines[0]!, /QEMU exited/);
        const streamed = stdout.trim().split('\n').map((l) => JSON.parse(l) as MonitorEvent);
        assert.equal(streamed.at(-1)?.type, 'monitor-stopped');
        assert.equal(streamed.at(-1)?.data?.['reason'], 'qemu-exited');
        assertStoreEquals(store, streamed);
      });
    }
  });
}
