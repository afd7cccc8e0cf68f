/**
 * Techniques on a lab guest, as a user runs them (issue 10): the debugger stub never leaves the guest paused
 * when vmsight is interrupted (bug 3), monitor-read works on a lab guest name (bug 4), and a pid beside a QMP
 * socket must be that socket's QEMU (bug 10).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { before, describe, test } from 'node:test';
import { SourceError } from '../../src/core/errors.js';
import { readPhys } from '../../src/memory/access.js';
import { openSource } from '../../src/memory/open.js';
import { acquireQmp } from '../../src/qemu/discover.js';
import { startCli } from '../cli/helpers/spawn-cli.js';
import { ownQmpSocket, sharedGuest, type SharedGuest } from '../helpers/guest.js';

let g: SharedGuest;
let qmp: string;
before(async () => {
  g = await sharedGuest({ kernel: '6.1' });
  qmp = await ownQmpSocket(g.guest);
});

async function status(): Promise<string> {
  const lease = await acquireQmp(qmp);
  try {
    return (await lease.client.execute<{ status: string }>('query-status')).status;
  } finally {
    await lease.release();
  }
}

async function waitStatus(want: string, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if ((await status()) === want) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

describe('debugger stub interrupted', { timeout: 180_000 }, () => {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    test(`${signal} during a read leaves the guest running`, async () => {
      assert.equal(await status(), 'running');
      // 2 MiB through the gdbstub: several seconds of all-stop reads. (The signal is handled once the
      // synchronous read returns: the guest must then run again, not stay paused after the process ends.)
      const child = startCli(['read', g.guest.name, '--pa', '0x100000', '--len', '0x200000', '--technique', 'debugger-stub']);
      let stderr = '';
      child.stderr!.on('data', (d) => (stderr += d));
      child.stdout!.resume();
      const exited = new Promise<NodeJS.Signals | number | null>((r) => child.on('exit', (code, sig) => r(sig ?? code)));
      try {
        assert.ok(await waitStatus('paused', 60_000), `the read never paused the guest: ${stderr}`);
        await new Promise((r) => setTimeout(r, 500));
        assert.equal(await status(), 'paused', 'still reading');
        child.kill(signal);
        const how = await exited;
        assert.ok(how === signal || typeof how === 'number', String(how));
        assert.ok(await waitStatus('running', 5000), `guest left ${await status()} after ${signal}`);
      } finally {
        child.kill('SIGKILL');
        if ((await status()) === 'paused') {
          const lease = await acquireQmp(qmp);
          await lease.client.execute('cont').finally(() => lease.release());
        }
      }
    });
  }
});

test('a process that ends with process.exit while the debugger stub holds the guest stopped leaves it running', { timeout: 120_000 }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmsight-test-gdbexit-'));
  try {
    const script = path.join(dir, 'child.mts');
    const src = (p: string) => JSON.stringify(fileURLToPath(new URL(`../../src/${p}`, import.meta.url)));
    fs.writeFileSync(
      script,
      `import { openSource } from ${src('memory/open.ts')};
       import { readPhys } from ${src('memory/access.ts')};
       import { useLabGuests } from ${src('lab/resolver.ts')};
       useLabGuests();
       const r = await openSource(${JSON.stringify(g.guest.name)}, { technique: 'debugger-stub' });
       readPhys(r.memory, 0x100000, 4096); // all-stop: the guest now stays stopped until refresh or close
       console.log('STOPPED');
       process.exit(0);`,
    );
    const tsx = fileURLToPath(new URL('../../node_modules/tsx/dist/cli.mjs', import.meta.url));
    const r = spawnSync(process.execPath, [tsx, script], { encoding: 'utf8', timeout: 120_000 });
    assert.match(r.stdout, /STOPPED/, r.stderr);
    assert.ok(await waitStatus('running', 5000), `guest left ${await status()}`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
    if ((await status()) === 'paused') {
      const lease = await acquireQmp(qmp);
      await lease.client.execute('cont').finally(() => lease.release());
    }
  }
});

test('monitor-read opens on a lab guest name and reads what live map reads', { timeout: 120_000 }, async () => {
  const t0 = Date.now();
  const m = await openSource(g.guest.name, { technique: 'monitor-read' });
  try {
    assert.equal(m.chosen.factory, 'monitor-read');
    assert.ok(Date.now() - t0 < 4000, `opening took ${Date.now() - t0} ms (waited for a QMP socket this process held)`);
    // Both techniques read the same bytes.
    const at = 0xf0000; // the BIOS shadow: never written while the guest runs
    const viaMonitor = readPhys(m.memory, at, 4096);
    const shm = fs.readFileSync(g.guest.shmPath!, { flag: 'r' }).subarray(at, at + 4096);
    assert.deepEqual(Buffer.from(viaMonitor), Buffer.from(shm));
  } finally {
    await m.memory.close();
  }
});

describe('a pid beside a QMP socket', () => {
  test('that is not the socket\'s QEMU is refused, naming the right pid', async () => {
    await assert.rejects(
      openSource(`pid:1?qmp=${qmp}`),
      (e: unknown) => e instanceof SourceError && e.exitCode === 3 && e.message.includes(`is not the QEMU behind QMP ${qmp} (that QEMU is pid ${g.guest.pid})`),
    );
    await assert.rejects(openSource(`pid:999999?qmp=${qmp}`, { technique: 'live-read' }), /no process 999999 is running/);
  });

  test('that is the socket\'s QEMU opens', async () => {
    const m = await openSource(`pid:${g.guest.pid}?qmp=${qmp}`);
    await m.memory.close();
    assert.ok(m.chosen.factory);
  });
});
