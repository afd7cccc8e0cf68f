/**
 * The lab guest as a libvirt domain (`vmsight lab up NAME --libvirt`): the same kernel, initramfs and
 * scenario as a lab guest, defined and started as a transient `<domain type='qemu'>` (TCG, q35) so the
 * libvirt path can be tried, and tested, the way people run guests. Its serial console goes to a file, so
 * the guest's ground truth parses exactly as for a lab guest. `lab down NAME` destroys it.
 *
 * Also: starting libvirt's daemons where no service manager does (containers, CI), and stopping only the
 * ones we started.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { LabError, UsageError } from '../core/errors.js';
import { DEFAULT_LIBVIRT_URI, domainState, findDomainPid, virsh } from '../qemu/libvirt.js';
import { checkName } from './guests.js';
import { ensureInitramfs } from './initramfs.js';
import { DEFAULT_KERNEL, ensureKernel } from './kernels.js';
import { runDir } from './paths.js';
import { monotonicMs } from '../core/clock.js';

/** RAM backings a lab domain can ask libvirt for. */
export type LibvirtLabBacking = 'anon' | 'memfd' | 'file';

export interface LibvirtUpOptions {
  name: string;
  kernel?: string;
  /** Guest RAM in MiB (default 256). */
  memory?: number;
  backing?: LibvirtLabBacking;
  /** false leaves `<acpi/>` out: libvirt adds -no-acpi and the vmcoreinfo device stays empty. */
  acpi?: boolean;
  uri?: string;
  timeoutMs?: number;
  /** What a guest reset does: 'destroy' (the default: a panicking lab guest ends) or 'restart' (a real reset). */
  onReboot?: 'destroy' | 'restart';
}

/** What `lab up --libvirt` leaves behind for `lab down`, `lab truth` and the tests. */
export interface LibvirtLabGuest {
  name: string;
  uri: string;
  backing: LibvirtLabBacking;
  acpi: boolean;
  memoryMiB: number;
  kernel: { package: string; version: string; release: string };
  /** Directory of the domain's kernel, initramfs and console (readable by the libvirt-qemu user). */
  dir: string;
  consolePath: string;
  pid: number;
  started: string;
  readyMs: number;
}

/** Where lab domains keep their files: QEMU runs as libvirt-qemu and must read the kernel and initramfs. */
export function libvirtLabDir(name: string): string {
  return path.join(process.env['VMSIGHT_LIBVIRT_DIR'] || '/var/lib/libvirt/vmsight', name);
}

function recordPath(name: string): string {
  return path.join(runDir(), `libvirt-${name}.json`);
}

export function readLibvirtRecord(name: string): LibvirtLabGuest | undefined {
  try {
    return JSON.parse(fs.readFileSync(recordPath(name), 'utf8')) as LibvirtLabGuest;
  } catch {
    return undefined;
  }
}

function xmlText(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/'/g, '&apos;').replace(/"/g, '&quot;');
}

/** The domain XML of a lab guest. */
export function labDomainXml(o: {
  name: string;
  memoryMiB: number;
  kernelPath: string;
  initrdPath: string;
  append: string;
  consolePath: string;
  backing: LibvirtLabBacking;
  acpi: boolean;
  onReboot?: 'destroy' | 'restart';
}): string {
  const backing =
    o.backing === 'memfd'
      ? "<memoryBacking><source type='memfd'/><access mode='shared'/></memoryBacking>"
      : o.backing === 'file'
        ? "<memoryBacking><source type='file'/><access mode='shared'/></memoryBacking>"
        : '';
  return `<domain type='qemu'>
  <name>${xmlText(o.name)}</name>
  <memory unit='MiB'>${o.memoryMiB}</memory>
  <vcpu>1</vcpu>
  ${backing}
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
    <kernel>${xmlText(o.kernelPath)}</kernel>
    <initrd>${xmlText(o.initrdPath)}</initrd>
    <cmdline>${xmlText(o.append)}</cmdline>
  </os>
  <features>${o.acpi ? '<acpi/>' : ''}<vmcoreinfo state='on'/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>${o.onReboot === 'restart' ? 'restart' : 'destroy'}</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <serial type='file'><source path='${xmlText(o.consolePath)}'/><target port='0'/></serial>
    <video><model type='none'/></video>
    <memballoon model='none'/>
  </devices>
</domain>
`;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Copies `src` into `dir` unless an identical-size copy is there already; returns the copy. */
function placeFile(src: string, dir: string, name: string): string {
  const dst = path.join(dir, name);
  const s = fs.statSync(src);
  let d: fs.Stats | undefined;
  try {
    d = fs.statSync(dst);
  } catch {
    d = undefined;
  }
  if (!d || d.size !== s.size || d.mtimeMs < s.mtimeMs) fs.copyFileSync(src, dst);
  fs.chmodSync(dst, 0o644);
  return dst;
}

/** Defines and starts a transient domain of the lab guest; returns once its ground truth is on the console. */
export async function libvirtLabUp(opts: LibvirtUpOptions): Promise<LibvirtLabGuest> {
  checkName(opts.name);
  const uri = opts.uri ?? DEFAULT_LIBVIRT_URI;
  const backing = opts.backing ?? 'anon';
  if (!['anon', 'memfd', 'file'].includes(backing)) throw new UsageError(`--backing ${backing}: use anon, memfd or file`);
  const memoryMiB = opts.memory ?? 256;
  if (!Number.isInteger(memoryMiB) || memoryMiB < 128 || memoryMiB > 65536) throw new UsageError(`--memory ${memoryMiB} must be an integer MiB between 128 and 65536`);
  const acpi = opts.acpi ?? true;
  const state = await domainState(uri, opts.name).catch(() => undefined);
  if (state !== undefined) {
    throw new LabError(`libvirt domain '${opts.name}' already exists (${state})`, { hint: `use it, or destroy it with: vmsight lab down ${opts.name}` });
  }
  const kernel = await ensureKernel(opts.kernel ?? DEFAULT_KERNEL);
  const initrd = await ensureInitramfs({ kernel });
  const dir = libvirtLabDir(opts.name);
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  fs.chmodSync(dir, 0o755);
  const kernelPath = placeFile(kernel.vmlinuzPath, dir, 'vmlinuz');
  const initrdPath = placeFile(initrd.path, dir, 'initramfs.cpio');
  const consolePath = path.join(dir, 'console.log');
  fs.rmSync(consolePath, { force: true });
  // The same command line as a lab guest (vm.ts), minus what needs a second serial port.
  const append = 'console=ttyS0 panic=-1 loglevel=4';
  const xml = labDomainXml({ name: opts.name, memoryMiB, kernelPath, initrdPath, append, consolePath, backing, acpi, ...(opts.onReboot ? { onReboot: opts.onReboot } : {}) });
  const xmlPath = path.join(dir, 'domain.xml');
  fs.writeFileSync(xmlPath, xml);
  const started = new Date().toISOString();
  const t0 = monotonicMs();
  const timeoutMs = opts.timeoutMs ?? (Number(process.env['VMSIGHT_LAB_TIMEOUT_MS']) || 600_000);
  try {
    // libvirt may probe QEMU's capabilities first (it re-probes on every start where /dev/kvm exists but
    // its QEMU user cannot open it), one domain at a time: tens of seconds each on a loaded machine.
    await virsh(uri, ['create', xmlPath], { domain: opts.name, timeoutMs });
    await waitReady(uri, opts.name, consolePath, t0 + timeoutMs);
  } catch (err) {
    await virsh(uri, ['destroy', opts.name], { domain: opts.name }).catch(() => undefined);
    throw err;
  }
  const pid = findDomainPid(uri, opts.name).pid ?? 0;
  const g: LibvirtLabGuest = {
    name: opts.name,
    uri,
    backing,
    acpi,
    memoryMiB,
    kernel: { package: kernel.package, version: kernel.version, release: kernel.release },
    dir,
    consolePath,
    pid,
    started,
    readyMs: Math.round(monotonicMs() - t0),
  };
  fs.mkdirSync(runDir(), { recursive: true, mode: 0o700 });
  fs.writeFileSync(recordPath(opts.name), JSON.stringify(g, null, 2) + '\n');
  return g;
}

async function waitReady(uri: string, name: string, consolePath: string, deadline: number): Promise<void> {
  for (let polls = 0; ; polls++) {
    let text = '';
    try {
      text = fs.readFileSync(consolePath, 'latin1');
    } catch {
      // not created yet
    }
    if (/^VMI-READY/m.test(text)) return;
    const panic = /Kernel panic - not syncing[^\n]*/.exec(text)?.[0];
    const tail = () => text.replace(/\r/g, '').trimEnd().split('\n').slice(-8).join(' | ') || '(no console output)';
    if (panic) throw new LabError(`libvirt domain '${name}' kernel panicked: ${panic}`, { hint: `console: ${tail()}` });
    if (polls % 10 === 9) {
      const st = await domainState(uri, name).catch(() => 'gone');
      if (st !== 'running' && st !== 'paused') throw new LabError(`libvirt domain '${name}' is ${st} before VMI-READY`, { hint: `console tail: ${tail()}` });
    }
    if (monotonicMs() > deadline) throw new LabError(`libvirt domain '${name}' not ready in time`, { hint: `console tail: ${tail()} (set VMSIGHT_LAB_TIMEOUT_MS)` });
    await sleep(100);
  }
}

/** Destroys a lab domain (transient: it is then gone from libvirt) and removes its files. */
export async function libvirtLabDown(name: string, uri?: string): Promise<boolean> {
  checkName(name);
  const rec = readLibvirtRecord(name);
  const u = uri ?? rec?.uri ?? DEFAULT_LIBVIRT_URI;
  const state = await domainState(u, name).catch(() => undefined);
  if (state === undefined && !rec) return false;
  if (state === 'running' || state === 'paused') await virsh(u, ['destroy', name], { domain: name });
  fs.rmSync(recordPath(name), { force: true });
  fs.rmSync(libvirtLabDir(name), { recursive: true, force: true });
  return state !== undefined;
}

// ---- The daemons ---------------------------------------------------------------------------------

/** libvirt's daemons in start order, with the pid files they write when run as root with --daemon. */
const DAEMONS = [
  { name: 'virtlogd', binary: '/usr/sbin/virtlogd', pidFile: '/run/virtlogd.pid' },
  { name: 'libvirtd', binary: '/usr/sbin/libvirtd', pidFile: '/run/libvirtd.pid' },
] as const;

function pidFromFile(file: string): number | undefined {
  try {
    const t = fs.readFileSync(file, 'utf8').trim();
    return /^\d{1,10}$/.test(t) ? Number(t) : undefined;
  } catch {
    return undefined;
  }
}

function runs(pid: number | undefined, name: string): boolean {
  if (pid === undefined) return false;
  try {
    return fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === name;
  } catch {
    return false;
  }
}

/** The running pid of each libvirt daemon, if any. */
export function libvirtDaemonPids(): Record<string, number | undefined> {
  const out: Record<string, number | undefined> = {};
  for (const d of DAEMONS) {
    const pid = pidFromFile(d.pidFile);
    out[d.name] = runs(pid, d.name) ? pid : undefined;
  }
  return out;
}

/**
 * Starts virtlogd and libvirtd when they are not running (no service manager here) and waits until virsh
 * answers. Returns the daemons this call started, for stopLibvirtDaemons. Idempotent.
 */
export async function ensureLibvirtDaemons(uri = DEFAULT_LIBVIRT_URI): Promise<string[]> {
  const started: string[] = [];
  for (const d of DAEMONS) {
    if (runs(pidFromFile(d.pidFile), d.name)) continue;
    if (!fs.existsSync(d.binary)) {
      throw new LabError(`${d.binary} is not installed`, { hint: 'install libvirt-daemon-system libvirt-clients libvirt-daemon-driver-qemu (node scripts/setup.mjs --test)' });
    }
    const r = spawnSync(d.binary, ['--daemon'], { encoding: 'utf8', timeout: 30_000 });
    if (r.status !== 0) throw new LabError(`${d.name} --daemon failed (${r.status}): ${(r.stderr || r.error?.message || '').trim().split('\n')[0]}`);
    const deadline = Date.now() + 15_000;
    while (!runs(pidFromFile(d.pidFile), d.name)) {
      if (Date.now() > deadline) throw new LabError(`${d.name} started but wrote no pid to ${d.pidFile} within 15 s`);
      await sleep(50);
    }
    started.push(d.name);
  }
  // The first connection probes QEMU's capabilities (seconds): wait for it here, once.
  await virsh(uri, ['list', '--all'], { timeoutMs: 120_000 });
  return started;
}

/** Stops the named daemons (those ensureLibvirtDaemons started), in reverse start order. */
export async function stopLibvirtDaemons(names: readonly string[]): Promise<void> {
  for (const d of [...DAEMONS].reverse()) {
    if (!names.includes(d.name)) continue;
    const pid = pidFromFile(d.pidFile);
    if (!runs(pid, d.name)) continue;
    process.kill(pid!, 'SIGTERM');
    const deadline = Date.now() + 10_000;
    while (runs(pid, d.name) && Date.now() < deadline) await sleep(50);
  }
}
