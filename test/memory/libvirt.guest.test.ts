/**
 * libvirt: domains (issue 11), against a real libvirt daemon. Starts virtlogd and libvirtd when they do not
 * run (and stops what it started), boots three lab domains — anonymous RAM without <acpi/>, memfd RAM, file
 * RAM — and checks on each that the technique fits the backing and that info, pslist, sockstat and lsmod
 * agree with the guest's own ground truth; that an interrupted guest-halting run leaves the domain running;
 * that `sources libvirt:` lists all three; and that a second vmsight process works beside the first.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { command as info } from '../../src/cli/commands/info.js';
import { parseCommandLine } from '../../src/cli/main.js';
import { createOutput } from '../../src/cli/render.js';
import {
  ensureLibvirtDaemons,
  libvirtLabDown,
  libvirtLabUp,
  readGroundTruth,
  readLibvirtRecord,
  stopLibvirtDaemons,
  type GroundTruth,
  type LibvirtLabBacking,
  type LibvirtLabGuest,
} from '../../src/lab/index.js';
import { attachKernel } from '../../src/linux/attach.js';
import { runPlugin } from '../../src/linux/plugin.js';
import lsmod from '../../src/linux/plugins/lsmod.js';
import pslist from '../../src/linux/plugins/pslist.js';
import sockstat from '../../src/linux/plugins/sockstat.js';
import { openSource } from '../../src/memory/open.js';
import { describeLibvirtDomains } from '../../src/memory/sources/libvirt.js';
import { domainState } from '../../src/qemu/libvirt.js';
import { TEST_GUEST_PREFIX } from '../helpers/guest.js';

const URI = 'qemu:///system';
const usable = process.getuid?.() === 0 && fs.existsSync('/usr/sbin/libvirtd') && fs.existsSync('/usr/bin/virsh');
const skip = usable ? false : 'needs root and libvirt (node scripts/setup.mjs --test installs it)';

interface Domain {
  readonly name: string;
  readonly backing: LibvirtLabBacking;
  readonly acpi: boolean;
  readonly technique: 'live-read' | 'live-map';
  guest?: LibvirtLabGuest;
  truth?: GroundTruth;
}

const DOMAINS: Domain[] = [
  { name: `${TEST_GUEST_PREFIX}anon`, backing: 'anon', acpi: false, technique: 'live-read' },
  { name: `${TEST_GUEST_PREFIX}memfd`, backing: 'memfd', acpi: true, technique: 'live-map' },
  { name: `${TEST_GUEST_PREFIX}file`, backing: 'file', acpi: true, technique: 'live-map' },
];

const tsx = fileURLToPath(new URL('../../node_modules/tsx/dist/cli.mjs', import.meta.url));
const mainTs = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

/** The child scripts' directory, removed after the run. */
let scriptDir: string | undefined;
let scripts = 0;

/** A node command line running `script` (an ES module, through tsx) in a separate process. */
function childArgs(script: string): string[] {
  scriptDir ??= fs.mkdtempSync(path.join(os.tmpdir(), 'vmsight-lv-'));
  const file = path.join(scriptDir, `child-${++scripts}.mts`);
  fs.writeFileSync(file, script);
  return [tsx, file];
}

/** Runs `vmsight ARGS` in a separate process, as a user would. */
function vmsightArgs(args: readonly string[]): string[] {
  return childArgs(`import { main } from ${JSON.stringify(mainTs)};\nprocess.exitCode = await main(${JSON.stringify(args)});\n`);
}

/** Set VMSIGHT_TEST_LIBVIRT_KEEP=1 to keep the domains after the run and reuse running ones (development). */
const KEEP = process.env['VMSIGHT_TEST_LIBVIRT_KEEP'] === '1';

let started: string[] = [];

async function runInfo(source: string): Promise<string> {
  const parsed = parseCommandLine(info, [source]);
  let out = '';
  await info.run({ positionals: parsed.positionals, values: parsed.values as Record<string, string | boolean | undefined> }, { out: createOutput('table', (s) => (out += s)), debug: false });
  return out;
}

describe('libvirt domains', { skip, timeout: 900_000 }, () => {
  before(async () => {
    started = await ensureLibvirtDaemons(URI);
    const reuse = async (d: Domain) => {
      const rec = KEEP ? readLibvirtRecord(d.name) : undefined;
      if (rec && rec.backing === d.backing && rec.acpi === d.acpi && (await domainState(URI, d.name).catch(() => '')) === 'running') return rec;
      await libvirtLabDown(d.name, URI).catch(() => false);
      return undefined;
    };
    // In parallel: libvirt serialises its own part (capability probing), the guests boot side by side.
    const t0 = performance.now();
    await Promise.all(
      DOMAINS.map(async (d) => {
        d.guest = (await reuse(d)) ?? (await libvirtLabUp({ name: d.name, backing: d.backing, acpi: d.acpi, uri: URI }));
        d.truth = readGroundTruth(d.guest);
      }),
    );
    process.stderr.write(`libvirt test: three domains ready in ${Math.round(performance.now() - t0)} ms (${DOMAINS.map((d) => `${d.name} ${d.guest!.readyMs} ms`).join(', ')})\n`);
  });

  after(async () => {
    if (scriptDir) fs.rmSync(scriptDir, { recursive: true, force: true });
    if (KEEP) return;
    for (const d of DOMAINS) await libvirtLabDown(d.name, URI).catch(() => false);
    await stopLibvirtDaemons(started);
  });

  for (const d of DOMAINS) {
    describe(`${d.backing} RAM${d.acpi ? '' : ' without <acpi/>'}`, () => {
      test(`the technique is ${d.technique}, and info says why`, async () => {
        const text = await runInfo(`libvirt:${d.name}`);
        assert.match(text, new RegExp(`^technique\\s+${d.technique} \\(${d.technique === 'live-map' ? 'qemu-shm, zero-copy' : 'qemu-process'}\\)`, 'm'), text);
        assert.match(text, /chosen because .*virsh qemu-monitor-command/, text);
        assert.match(text, new RegExp(`^release\\s+${d.truth!.release.replace(/\./g, '\\.')}$`, 'm'), text);
        if (d.backing === 'memfd') assert.match(text, /a memfd mapped shared/);
        if (d.backing === 'file') assert.match(text, /the file \/var\/lib\/libvirt\/qemu\/ram\//);
        // No <acpi/>: libvirt adds -no-acpi and the vmcoreinfo device stays empty, so it is found in RAM.
        if (!d.acpi) assert.match(text, /^vmcoreinfo\s+memory 0x/m, text);
      });

      test('pslist, sockstat and lsmod agree with the ground truth', async () => {
        const opened = await openSource(`libvirt:${d.name}`);
        assert.equal(opened.chosen.class, d.technique);
        const k = await attachKernel(opened.memory);
        try {
          const truth = d.truth!;
          const ps = runPlugin(pslist, k);
          const ours = new Map(ps.rows.map((r) => [Number(r.pid), r]));
          // Every user process of the scenario, with its comm and parent (kernel threads come and go, and
          // /proc adds a kworker's workqueue to its name); kernel threads by name prefix where still there.
          const users = truth.processes.filter((p) => !p.kthread);
          assert.ok(users.length >= 5);
          for (const p of users) {
            const r = ours.get(p.pid);
            assert.ok(r, `pid ${p.pid} (${p.comm}) missing`);
            assert.equal(r.comm, p.comm);
            assert.equal(Number(r.ppid), p.ppid);
          }
          const kthreads = truth.processes.filter((p) => p.kthread && !p.comm.startsWith('kworker/'));
          for (const p of kthreads) {
            const r = ours.get(p.pid);
            assert.ok(r, `kernel thread ${p.pid} (${p.comm}) missing`);
            assert.ok(p.comm.startsWith(r.comm), `${r.comm} vs ${p.comm}`);
          }
          const sk = runPlugin(sockstat, k);
          const key = (s: { proto: string; localPort: unknown; remotePort: unknown; inode: unknown }) => `${s.proto} ${String(s.localPort)} ${String(s.remotePort)} ${String(s.inode)}`;
          const n = truth.net;
          const inetTruth = [...n.tcp, ...n.tcp6, ...n.udp, ...n.udp6, ...n.raw, ...n.raw6].map((s) => key({ ...s, inode: BigInt(s.inode) }));
          const inetOurs = new Set(sk.rows.filter((x) => x.family === 'inet' || x.family === 'inet6').map((x) => key(x)));
          assert.ok(inetTruth.length >= 6);
          for (const t of inetTruth) assert.ok(inetOurs.has(t), `socket ${t} missing`);
          const mods = runPlugin(lsmod, k);
          assert.deepEqual(
            mods.rows.map((m) => [m.name, m.size, m.base.toString(16)].join(' ')),
            truth.modules.map((m) => [m.name, m.size, m.address.toString(16)].join(' ')),
          );
        } finally {
          await k.close?.();
          await opened.memory.close();
        }
      });
    });
  }

  test('an interrupted guest-halting run leaves the domain running', async () => {
    const d = DOMAINS[0]!;
    // A child holds the guest paused in a pass and is interrupted there.
    const script = `
      import { openSource } from ${JSON.stringify(fileURLToPath(new URL('../../src/memory/open.ts', import.meta.url)))};
      const o = await openSource('libvirt:${d.name}?halting=1');
      process.stdout.write('paused\\n');
      setInterval(() => {}, 1000);`;
    const child = spawn(process.execPath, childArgs(script), { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stderr.on('data', (c) => (err += c));
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`child never paused the guest: ${err}`)), 120_000);
      child.stdout.on('data', (c) => {
        out += c;
        if (out.includes('paused')) {
          clearTimeout(t);
          resolve();
        }
      });
      child.on('exit', (code) => reject(new Error(`child exited ${code} before pausing: ${err}`)));
    });
    assert.equal(await domainState(URI, d.name), 'paused');
    child.kill('SIGINT');
    await new Promise((r) => child.once('exit', r));
    assert.equal(await domainState(URI, d.name), 'running');
  });

  test('sources libvirt: lists all three with their backing and the techniques that fit', async () => {
    const rows = await describeLibvirtDomains(URI);
    const want: Record<LibvirtLabBacking, string> = { anon: 'anonymous', memfd: 'memfd', file: 'file' };
    for (const d of DOMAINS) {
      const r = rows.find((x) => x.domain === d.name);
      assert.ok(r, `${d.name} listed`);
      assert.equal(r.state, 'running');
      assert.equal(r.backing, want[d.backing]);
      assert.ok(r.techniques.startsWith(d.technique), r.techniques);
      assert.match(r.techniques, /guest-halting/);
    }
  });

  test('a second vmsight process works on a domain while a first one is attached', async () => {
    for (const d of DOMAINS.slice(0, 2)) {
      const first = await openSource(`libvirt:${d.name}`);
      const k = await attachKernel(first.memory);
      try {
        const r = spawnSync(process.execPath, vmsightArgs(['pslist', `libvirt:${d.name}`, '--json']), { encoding: 'utf8', timeout: 180_000 });
        assert.equal(r.status, 0, r.stderr);
        const rows = (JSON.parse(r.stdout) as { rows: Array<{ pid: number; comm: string }> }).rows;
        assert.ok(rows.some((x) => Number(x.pid) === 1 && x.comm === d.truth!.processes.find((p) => p.pid === 1)!.comm));
        // The first is still good after the second came and went.
        assert.ok(runPlugin(pslist, k).rows.length >= rows.length - 5);
      } finally {
        await k.close?.();
        await first.memory.close();
      }
    }
  });
});
