/**
 * Builds the lab guest's initramfs: busybox-static with its applet links, the
 * scenario helper under its role names, a few dependency-free modules from
 * the kernel package (decompressed on the host: busybox insmod cannot read
 * .ko.xz), optional extra modules, and /init. Written with our own newc cpio
 * writer and gzip; cached under a hash of every input.
 */
import { execFile, execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { LabError } from '../core/errors.js';
import { CpioWriter } from './cpio.js';
import { ensureHelper } from './helper.js';
import type { LabKernel } from './kernels.js';
import { withLock } from './lock.js';
import { cacheDir } from './paths.js';
import { HELPER_ROLES, initScript, ONDEMAND_MODULE, type ExtraModule } from './scenario/init-script.js';
import { ensureUserland, USERLAND_TOOLS, userlandModulePath, type UserlandTool } from './userland.js';
import { monotonicMs } from '../core/clock.js';

const run = promisify(execFile);

/**
 * Modules loaded in every guest. dummy gives an extra interface with
 * addresses; qemu_fw_cfg makes the guest publish its vmcoreinfo to QEMU (the
 * VMCOREINFO note in dumps); nlmon and veth are harmless extra list entries.
 * All have no dependencies in 5.10, 6.1 and 6.12 (checked at build time).
 */
export const LAB_MODULES = ['dummy', 'qemu_fw_cfg', 'nlmon', 'veth'] as const;

export interface ExtraModuleFile {
  /** Host path of a .ko built for this kernel (e.g. against its linux-headers). */
  path: string;
  params?: string;
}

export interface InitramfsOptions {
  kernel: LabKernel;
  extraModules?: readonly ExtraModuleFile[];
  /** Debian userland tools to add (binaries + libraries; their kernel modules under /lib/modules/ondemand). */
  tools?: readonly UserlandTool[];
}

export interface Initramfs {
  path: string;
  /** Module names loaded at boot, in order (extra modules last). */
  modules: string[];
  built: boolean;
  buildMs: number;
  bytes: number;
}

/** Where the busybox binary comes from (`VMSIGHT_BUSYBOX` overrides /bin/busybox). */
export function busyboxPath(): string {
  return process.env['VMSIGHT_BUSYBOX'] || '/bin/busybox';
}

/** True when the ELF at `p` has no PT_INTERP (is statically linked). */
export function isStaticElf(bytes: Uint8Array): boolean {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (b.byteLength < 64 || b.readUInt32BE(0) !== 0x7f454c46 || b[4] !== 2) return false;
  const phoff = Number(b.readBigUInt64LE(32));
  const phentsize = b.readUInt16LE(54);
  const phnum = b.readUInt16LE(56);
  if (phentsize < 56 || phnum > 256 || phoff + phnum * phentsize > b.byteLength) return false;
  for (let i = 0; i < phnum; i++) {
    if (b.readUInt32LE(phoff + i * phentsize) === 3 /* PT_INTERP */) return false;
  }
  return true;
}

function readBusybox(): { bytes: Buffer; applets: string[] } {
  const p = busyboxPath();
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(p);
  } catch {
    throw new LabError(`busybox not found at ${p}`, { hint: 'install busybox-static (apt-get install busybox-static) or set VMSIGHT_BUSYBOX' });
  }
  if (!isStaticElf(bytes)) {
    throw new LabError(`${p} is not a static x86-64 ELF`, { hint: 'install busybox-static (the dynamic busybox cannot run in the initramfs)' });
  }
  const list = execFileSync(p, ['--list'], { encoding: 'utf8' });
  // `busybox --list` names busybox itself: linking it would replace the binary with a self-loop.
  const applets = list.split('\n').map((s) => s.trim()).filter((s) => /^[A-Za-z0-9_.[-]+$/.test(s) && s !== 'busybox');
  return { bytes, applets };
}

/** Every `<name>.ko[.xz|.zst|.gz]` under the kernel's modules directory, by module name. */
function indexModules(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const stack = [dir];
  let visited = 0;
  while (stack.length && visited++ < 100_000) {
    const d = stack.pop()!;
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      continue;
    }
    for (const e of entries) {
      const full = path.join(d, e.name);
      if (e.isDirectory()) stack.push(full);
      else {
        const m = /^(.+)\.ko(\.xz|\.zst|\.gz)?$/.exec(e.name);
        if (m && !out.has(m[1]!)) out.set(m[1]!, full);
      }
    }
  }
  return out;
}

async function readModule(file: string): Promise<Buffer> {
  if (file.endsWith('.ko')) return fs.readFileSync(file);
  if (file.endsWith('.gz')) return zlib.gunzipSync(fs.readFileSync(file));
  const tool = file.endsWith('.xz') ? 'xz' : 'zstd';
  try {
    const { stdout } = await run(tool, ['-dc', file], { encoding: 'buffer', maxBuffer: 256 * 1024 * 1024 });
    return stdout;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new LabError(`cannot decompress ${file} with ${tool}${code === 'ENOENT' ? ': not installed' : ''}`, {
      hint: `install ${tool === 'xz' ? 'xz-utils' : 'zstd'}`,
    });
  }
}

/** The `depends=` value of a module's .modinfo (empty string when it has none). */
export function moduleDepends(ko: Uint8Array): string | undefined {
  const b = Buffer.from(ko.buffer, ko.byteOffset, ko.byteLength);
  const i = b.indexOf('\0depends=');
  if (i < 0) return undefined;
  const end = b.indexOf(0, i + 9);
  return b.toString('utf8', i + 9, end < 0 ? Math.min(b.byteLength, i + 9 + 256) : end);
}

const FORMAT_VERSION = 'initramfs-v2';

export interface InitramfsInputs {
  kernel: Pick<LabKernel, 'package' | 'version'>;
  busybox: Uint8Array;
  /** sha256 of the scenario helper's C source (helper.ts). */
  helperSha256: string;
  extras: readonly { name: string; params?: string; bytes: Uint8Array }[];
  modules: readonly string[];
  ondemand: string;
  /** The /init script text. */
  script: string;
  /** Userland packages (`name=version`) and on-demand modules of the tools, when any. */
  userland?: readonly string[];
}

/** The cache key of an initramfs: every input that ends up in the image, so any change rebuilds it. */
export function initramfsKey(i: InitramfsInputs): string {
  const hash = crypto.createHash('sha256');
  hash.update(FORMAT_VERSION).update(i.kernel.package).update(i.kernel.version).update(i.busybox).update(i.helperSha256);
  for (const x of i.extras) hash.update(x.name).update(x.params ?? '').update(x.bytes);
  hash.update(i.modules.join(',')).update(HELPER_ROLES.join(',')).update(`ondemand:${i.ondemand}`).update(i.script);
  if (i.userland?.length) hash.update(`userland:${i.userland.join(',')}`);
  return hash.digest('hex').slice(0, 24);
}

/** Builds (or reuses) the initramfs for `kernel`. */
export async function ensureInitramfs(opts: InitramfsOptions): Promise<Initramfs> {
  const t0 = monotonicMs();
  const { kernel } = opts;
  const busybox = readBusybox();
  const helper = await ensureHelper();
  const extras: { name: string; module: string; bytes: Buffer; params?: string }[] = [];
  for (const e of opts.extraModules ?? []) {
    if (!fs.existsSync(e.path)) throw new LabError(`extra module ${e.path} not found`, { hint: 'build it first, e.g. against the kernel linux-headers' });
    const m = /^(.+)\.ko(\.xz|\.zst|\.gz)?$/.exec(path.basename(e.path));
    if (!m) throw new LabError(`extra module ${e.path} is not a .ko file`);
    const bytes = await readModule(e.path);
    extras.push({ name: `${m[1]}.ko`, module: m[1]!, bytes, ...(e.params !== undefined ? { params: e.params } : {}) });
  }
  const moduleIndex = indexModules(kernel.modulesDir);
  const mods: { name: string; file: string }[] = [];
  for (const m of LAB_MODULES) {
    const f = moduleIndex.get(m) ?? moduleIndex.get(m.replace(/_/g, '-'));
    if (f) mods.push({ name: m, file: f });
  }
  const ondemand = moduleIndex.get(ONDEMAND_MODULE.name);
  const extraSpecs: ExtraModule[] = extras.map((x) => ({ name: x.name, ...(x.params !== undefined ? { params: x.params } : {}) }));
  const script = initScript(mods.map((m) => `${m.name}.ko`), extraSpecs);
  const userland = await ensureUserland(opts.tools ?? []);
  const toolModules = [...new Set((opts.tools ?? []).flatMap((t) => USERLAND_TOOLS[t].modules))].map((name) => {
    const file = moduleIndex.get(name);
    if (!file) throw new LabError(`kernel ${kernel.release} has no module ${name} (needed by ${opts.tools!.join(', ')})`);
    return { name, file };
  });
  const key = initramfsKey({
    kernel,
    busybox: busybox.bytes,
    helperSha256: helper.sha256,
    extras,
    modules: mods.map((m) => m.name),
    ondemand: ondemand ? ONDEMAND_MODULE.name : '',
    script,
    userland: [...userland.packages, ...toolModules.map((m) => `module:${m.name}`)],
  });
  const dir = path.join(cacheDir(), 'initramfs');
  const out = path.join(dir, `${key}.cpio.gz`);
  const moduleNames = [...mods.map((m) => m.name), ...extras.map((x) => x.module)];
  if (fs.existsSync(out)) {
    return { path: out, modules: moduleNames, built: false, buildMs: Math.round(monotonicMs() - t0), bytes: fs.statSync(out).size };
  }
  return withLock(`${out}.lock`, async () => {
    if (fs.existsSync(out)) {
      return { path: out, modules: moduleNames, built: false, buildMs: Math.round(monotonicMs() - t0), bytes: fs.statSync(out).size };
    }
    const w = new CpioWriter();
    for (const d of ['bin', 'dev', 'etc', 'proc', 'sys', 'tmp', 'run', 'root', 'home', 'lib/modules/extra']) w.ensureDir(d);
    w.add({ path: 'dev/console', type: 'char', mode: 0o600, rdevMajor: 5, rdevMinor: 1 });
    w.add({ path: 'dev/null', type: 'char', mode: 0o666, rdevMajor: 1, rdevMinor: 3 });
    w.add({ path: 'dev/ttyS0', type: 'char', mode: 0o600, rdevMajor: 4, rdevMinor: 64 });
    w.add({ path: 'dev/ttyS1', type: 'char', mode: 0o600, rdevMajor: 4, rdevMinor: 65 });
    w.add({ path: 'bin/busybox', type: 'file', mode: 0o755, data: busybox.bytes });
    for (const a of busybox.applets) {
      if (!a.includes('/') && !w.has(`bin/${a}`)) w.add({ path: `bin/${a}`, type: 'symlink', mode: 0o777, target: 'busybox' });
    }
    w.add({ path: 'bin/vmi-helper', type: 'file', mode: 0o755, data: fs.readFileSync(helper.path) });
    for (const role of HELPER_ROLES) w.add({ path: `bin/${role}`, type: 'symlink', mode: 0o777, target: 'vmi-helper' });
    w.add({ path: 'etc/passwd', type: 'file', mode: 0o644, data: Buffer.from('root:x:0:0:root:/root:/bin/sh\nvmi:x:1000:1000:vmi:/home/vmi:/bin/sh\n') });
    w.add({ path: 'etc/group', type: 'file', mode: 0o644, data: Buffer.from('root:x:0:\nvmi:x:1000:\n') });
    for (const m of mods) {
      const bytes = await readModule(m.file);
      const deps = moduleDepends(bytes);
      if (deps) throw new LabError(`lab module ${m.name} of ${kernel.release} depends on ${deps}`, { hint: 'the lab only loads dependency-free modules; report this kernel' });
      w.add({ path: `lib/modules/${m.name}.ko`, type: 'file', mode: 0o644, data: bytes });
    }
    for (const x of extras) w.add({ path: `lib/modules/extra/${x.name}`, type: 'file', mode: 0o644, data: x.bytes });
    if (ondemand) {
      const bytes = await readModule(ondemand);
      const deps = moduleDepends(bytes);
      if (deps) throw new LabError(`on-demand module ${ONDEMAND_MODULE.name} of ${kernel.release} depends on ${deps}`, { hint: 'report this kernel' });
      w.add({ path: ONDEMAND_MODULE.path.slice(1), type: 'file', mode: 0o644, data: bytes });
    }
    for (const f of userland.files) if (!w.has(f.path)) w.add(f);
    for (const [i, m] of toolModules.entries()) {
      const bytes = await readModule(m.file);
      const missing = (moduleDepends(bytes) ?? '').split(',').filter((d) => d && !toolModules.slice(0, i).some((x) => x.name === d));
      if (missing.length) throw new LabError(`module ${m.name} of ${kernel.release} depends on ${missing.join(', ')}, not loaded before it`, { hint: 'add them to USERLAND_TOOLS in src/lab/userland.ts' });
      w.add({ path: userlandModulePath(m.name).slice(1), type: 'file', mode: 0o644, data: bytes });
    }
    w.add({ path: 'init', type: 'file', mode: 0o755, data: Buffer.from(script) });
    const gz = zlib.gzipSync(w.finish(), { level: 6 });
    fs.mkdirSync(dir, { recursive: true });
    const tmp = `${out}.tmp-${process.pid}`;
    fs.writeFileSync(tmp, gz);
    fs.renameSync(tmp, out);
    return { path: out, modules: moduleNames, built: true, buildMs: Math.round(monotonicMs() - t0), bytes: gz.byteLength };
  });
}
