/**
 * The monitor on a libvirt domain (issue 7 "Lifecycle", issue 11), against a real libvirt daemon.
 * libvirtd holds QEMU's only QMP session, so the monitor hears STOP, RESUME and RESET through libvirt's
 * relay (`virsh qemu-monitor-event`) and watches QEMU's pid from libvirt's pid file. One lab domain (memfd
 * RAM, resets that reset) for every case, driven through libvirt as its users would: `virsh suspend` →
 * guest-paused, `virsh resume` → guest-resumed, `virsh reset` → guest-rebooted and monitoring goes on
 * (a second pause and resume are seen),
 * `virsh destroy` → the CLI ends with qemu-exited, one line and exit code 3.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ensureLibvirtDaemons, libvirtLabDown, libvirtLabUp, stopLibvirtDaemons, type LibvirtLabGuest } from '../../src/lab/index.js';
import type { MonitorEvent } from '../../src/monitor/events.js';
import { virsh } from '../../src/qemu/libvirt.js';
import { TEST_GUEST_PREFIX } from '../helpers/guest.js';

const URI = 'qemu:///system';
const usable = process.getuid?.() === 0 && fs.existsSync('/usr/sbin/libvirtd') && fs.existsSync('/usr/bin/virsh');
const skip = usable ? false : 'needs root and libvirt (node scripts/setup.mjs --test installs it)';
const NAME = `${TEST_GUEST_PREFIX}lvmon`;

const tsx = fileURLToPath(new URL('../../node_modules/tsx/dist/cli.mjs', import.meta.url));
const mainTs = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `vmsight ARGS` in a child process (through tsx, so the sources under test run, not a stale build). */
function spawnVmsight(args: readonly string[]) {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'vmsight-lvmon-')), 'child.mts');
  fs.writeFileSync(file, `import { main } from ${JSON.stringify(mainTs)};\nprocess.exitCode = await main(${JSON.stringify(args)});\n`);
  return spawn(process.execPath, [tsx, file], { stdio: ['ignore', 'pipe', 'pipe'] });
}

describe('monitor on a libvirt domain', { skip, timeout: 900_000 }, () => {
  let started: string[] = [];
  let guest: LibvirtLabGuest;
  before(async () => {
    started = await ensureLibvirtDaemons(URI);
    await libvirtLabDown(NAME, URI).catch(() => false);
    guest = await libvirtLabUp({ name: NAME, backing: 'memfd', uri: URI, onReboot: 'restart' });
  });
  after(async () => {
    await libvirtLabDown(NAME, URI).catch(() => false);
    await stopLibvirtDaemons(started);
  });

  test('pause, resume, reset and destroy through libvirt arrive as lifecycle events; destroy ends with exit 3', async () => {
    const cli = spawnVmsight(['monitor', `libvirt:${NAME}`, '--jsonl']);
    let stdout = '';
    let stderr = '';
    const events: MonitorEvent[] = [];
    cli.stdout.setEncoding('utf8');
    cli.stderr.setEncoding('utf8');
    cli.stdout.on('data', (d: string) => {
      stdout += d;
      const lines = stdout.split('\n');
      stdout = lines.pop()!;
      for (const l of lines) if (l.trim()) events.push(JSON.parse(l) as MonitorEvent);
    });
    cli.stderr.on('data', (d: string) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => cli.on('exit', (code) => resolve(code)));
    let gone = false;
    void exited.then(() => (gone = true));
    const until = async (what: string, pred: (e: MonitorEvent) => boolean, timeoutMs = 120_000): Promise<MonitorEvent> => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const e = events.find(pred);
        if (e) return e;
        if (gone) throw new Error(`the monitor exited before ${what}: ${stderr}`);
        if (Date.now() > deadline) throw new Error(`no ${what} within ${timeoutMs} ms; stderr: ${stderr}`);
        await sleep(50);
      }
    };
    try {
      const first = await until('monitor-started', (e) => e.type === 'monitor-started', 300_000);
      assert.match(String(first.data?.['lifecycle']), /virsh qemu-monitor-event/, JSON.stringify(first.data));
      await sleep(1000); // let virsh's event registration settle (a pause before it is caught by domstate only)

      await virsh(URI, ['suspend', NAME]);
      const paused = await until('guest-paused', (e) => e.type === 'guest-paused');
      await virsh(URI, ['resume', NAME]);
      const resumed = await until('guest-resumed', (e) => e.type === 'guest-resumed');
      assert.ok(resumed.seq > paused.seq);

      await virsh(URI, ['reset', NAME]);
      const rebooted = await until('guest-rebooted', (e) => e.type === 'guest-rebooted', 300_000);
      assert.ok(rebooted.seq > resumed.seq);
      assert.notEqual(rebooted.data?.['kaslrShift'], undefined);
      // Monitoring goes on with the new kernel, lifecycle included: a second pause and resume are seen.
      // (The domain has no exec channel to start a process in; the new boot's own processes may all be
      // up before the new kernel is attached, so no process-start is required.)
      await sleep(1000);
      await virsh(URI, ['suspend', NAME]);
      const paused2 = await until('guest-paused after the reboot', (e) => e.type === 'guest-paused' && e.seq > rebooted.seq);
      await virsh(URI, ['resume', NAME]);
      await until('guest-resumed after the reboot', (e) => e.type === 'guest-resumed' && e.seq > paused2.seq);

      await virsh(URI, ['destroy', NAME]);
      const code = await Promise.race([exited, sleep(60_000).then(() => 'timeout' as const)]);
      assert.equal(code, 3, `exit code; stderr: ${stderr}`);
      const lines = stderr.trim().split('\n');
      assert.equal(lines.length, 1, stderr);
      assert.match(lines[0]!, /QEMU exited/);
      if (stdout.trim()) events.push(JSON.parse(stdout) as MonitorEvent);
      const last = events.at(-1)!;
      assert.equal(last.type, 'monitor-stopped');
      assert.equal(last.data?.['reason'], 'qemu-exited');
      assert.equal(last.data?.['reboots'], 1);
      // One of each, in order, with nothing duplicated.
      assert.deepEqual(
        events.filter((e) => e.type.startsWith('guest-')).map((e) => e.type),
        ['guest-paused', 'guest-resumed', 'guest-rebooted', 'guest-paused', 'guest-resumed'],
      );
      assert.deepEqual(
        events.map((e) => e.seq),
        events.map((_, i) => i + 1),
      );
    } finally {
      if (!gone) cli.kill('SIGTERM');
      await virsh(URI, ['resume', NAME]).catch(() => undefined);
    }
    assert.ok(guest.pid > 0);
  });
});
