/**
 * `vmsight acquire` on a lab guest: the ELF core it writes analyses exactly like the live guest at that
 * moment, carries the kernel facts and its SHA-256, and the guest is always left running (signals too).
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { command as acquire } from '../../src/cli/commands/acquire.js';
import { parseCommandLine } from '../../src/cli/main.js';
import { createOutput } from '../../src/cli/render.js';
import { attachKernel } from '../../src/linux/attach.js';
import { runPlugin } from '../../src/linux/plugin.js';
import lsmod from '../../src/linux/plugins/lsmod.js';
import pslist from '../../src/linux/plugins/pslist.js';
import { parseElfCore } from '../../src/memory/formats/elf-core.js';
import { FileSource } from '../../src/memory/formats/byte-source.js';
import { acquireQmp } from '../../src/qemu/discover.js';
import { startCli } from './helpers/spawn-cli.js';
import { ownQmpSocket, sharedGuest, type SharedGuest } from '../helpers/guest.js';

let g: SharedGuest;
let qmp: string;
let dir: string;
before(async () => {
  g = await sharedGuest({ kernel: '6.1' });
  qmp = await ownQmpSocket(g.guest);
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmsight-acquire-'));
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

async function qmpRun<T>(command: string): Promise<T> {
  const lease = await acquireQmp(qmp);
  try {
    return await lease.client.execute<T>(command);
  } finally {
    await lease.release();
  }
}
const status = async () => (await qmpRun<{ status: string }>('query-status')).status;

async function runAcquire(args: string[]): Promise<Record<string, unknown>> {
  const parsed = parseCommandLine(acquire, [...args, '--json']);
  let out = '';
  await acquire.run({ positionals: parsed.positionals, values: parsed.values as Record<string, string | boolean | undefined> }, { out: createOutput('json', (s) => (out += s)), debug: false });
  return JSON.parse(out);
}

describe('vmsight acquire', { timeout: 300_000 }, () => {
  test('the file analyses exactly like the live guest at that moment (pslist, lsmod)', async () => {
    const file = path.join(dir, 'frozen.elf');
    await qmpRun('stop');
    try {
      const r = await runAcquire([g.guest.name, '-o', file]);
      assert.equal(r['consistency'], 'paused');
      const [live, image] = [await attachKernel(g.guest.name), await attachKernel(file, { cache: false })];
      try {
        assert.equal(image.report.technique.factory, 'elf-core');
        assert.deepEqual(runPlugin(pslist, image).rows, runPlugin(pslist, live).rows);
        assert.deepEqual(runPlugin(lsmod, image).rows, runPlugin(lsmod, live).rows);
      } finally {
        await live.close();
        await image.close();
      }
      assert.equal(await status(), 'paused', 'a guest someone else paused stays paused');
    } finally {
      await qmpRun('cont');
    }
  });

  test('prints the SHA-256 of the file and the kernel facts, in an ELF note and FILE.json; the guest runs again', async () => {
    const file = path.join(dir, 'facts.elf');
    const r = await runAcquire([g.guest.name, '-o', file]);
    assert.equal(await status(), 'running');
    assert.ok((r['guestPausedMs'] as number) >= 0);
    assert.equal(r['sha256'], crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex'));
    assert.equal(r['bytes'], fs.statSync(file).size);
    const side = JSON.parse(fs.readFileSync(`${file}.json`, 'utf8'));
    assert.equal(side.sha256, r['sha256']);
    assert.equal(side.release, g.truth.release);
    assert.match(side.buildId, /^[0-9a-f]{40}$/);
    assert.match(side.kaslrOffset, /^0x[0-9a-f]+$/);
    const src = FileSource.open(file);
    try {
      const core = parseElfCore(src);
      const note = core.notes.find((n) => n.name === 'VMSIGHT')!;
      const meta = JSON.parse(Buffer.from(note.desc).toString('utf8'));
      assert.equal(meta.buildId, side.buildId);
      assert.equal(meta.kaslrOffset, side.kaslrOffset);
      assert.match(core.vmcoreinfo ?? '', /^OSRELEASE=/m);
    } finally {
      src.close();
    }
    await assert.rejects(runAcquire([g.guest.name, '-o', file]), /already exists/);
  });

  test('SIGINT during a debugger-stub acquisition: the partial file is removed and the guest runs', async () => {
    const file = path.join(dir, 'interrupted.elf');
    assert.equal(await status(), 'running');
    const child = startCli(['acquire', g.guest.name, '-o', file, '--technique', 'debugger-stub']);
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    child.stdout!.resume();
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    try {
      const deadline = Date.now() + 60_000;
      while (!fs.existsSync(file) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      assert.ok(fs.existsSync(file), `the copy never started: ${stderr}`);
      await new Promise((r) => setTimeout(r, 500));
      child.kill('SIGINT');
      assert.equal(await exited, 3, stderr);
      assert.match(stderr, /interrupted by SIGINT; the partial file was removed/);
      assert.equal(fs.existsSync(file), false);
      const until = Date.now() + 5000;
      while ((await status()) !== 'running' && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
      assert.equal(await status(), 'running');
    } finally {
      child.kill('SIGKILL');
      if ((await status()) === 'paused') await qmpRun('cont');
    }
  });
});
