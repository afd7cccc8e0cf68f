/**
 * Builds vmsight's own test rootkit (vmi_rootkit.c, next to this file) for a
 * lab kernel: installs the host package `linux-headers-<release>` for the exact
 * release the lab boots (apt-get on the host; this also upgrades
 * linux-libc-dev, see guest-lab.md §6), runs Kbuild against it, and caches the
 * .ko by source hash + release. The result plugs into the lab as an extra
 * module: `labUp({ kernel: '6.1', extraModules: [rootkitModuleFile(build)] })`.
 */
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { LabError } from '../../core/errors.js';
import type { ExtraModuleFile } from '../initramfs.js';
import { ensureKernel } from '../kernels.js';
import { withLock } from '../lock.js';
import { cacheDir } from '../paths.js';
import { monotonicMs } from '../../core/clock.js';

const run = promisify(execFile);

/** What the rootkit does by default (also what the tests expect). */
export const ROOTKIT = {
  module: 'vmi_rootkit',
  /** comm of the scenario process it hides from the task list (a single-threaded scenario process). */
  hideComm: 'vmi-user',
  /** sys_call_table index it hooks: __NR_kill on x86-64. */
  hookNr: 62,
} as const;

export interface RootkitOptions {
  /** Lab kernel spec (default '6.1'); ignored when `release` is given. */
  kernel?: string;
  /** `uname -r` of the target kernel, e.g. '6.1.0-56-amd64'. */
  release?: string;
  /** Install linux-headers-<release> on the host when missing (default true). */
  installHeaders?: boolean;
}

export interface RootkitBuild {
  koPath: string;
  release: string;
  sha256: string;
  built: boolean;
  buildMs: number;
}

const SOURCES = ['vmi_rootkit.c', 'Kbuild'] as const;

/** The directory holding vmi_rootkit.c and Kbuild (next to this module, or src/ from dist/). */
export function rootkitSourceDir(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const candidates = [here, path.resolve(here, '..', '..', '..', '..', 'src', 'lab', 'rootkit')];
  const found = candidates.find((d) => SOURCES.every((f) => fs.existsSync(path.join(d, f))));
  if (!found) throw new LabError(`rootkit sources (${SOURCES.join(', ')}) not found in ${candidates.join(', ')}`, { hint: 'reinstall vmsight' });
  return found;
}

/** The kernel build tree Debian's headers package installs. */
export function headersDir(release: string): string {
  return `/usr/src/linux-headers-${release}`;
}

const RELEASE_RE = /^[0-9][A-Za-z0-9.+_-]*$/;

/** Installs linux-headers-<release> with the host's apt when its build tree is missing. */
export async function ensureHeaders(release: string): Promise<string> {
  if (!RELEASE_RE.test(release)) throw new LabError(`kernel release '${release}' has unexpected characters`);
  const dir = headersDir(release);
  if (fs.existsSync(path.join(dir, 'Makefile'))) return dir;
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    throw new LabError(`${dir} is missing and installing linux-headers-${release} needs root`, {
      hint: `run: sudo apt-get install --no-install-recommends linux-headers-${release}`,
    });
  }
  const env = { ...process.env, LC_ALL: 'C', DEBIAN_FRONTEND: 'noninteractive' };
  const install = () => run('apt-get', ['-q', '-y', '--no-install-recommends', 'install', `linux-headers-${release}`], { env, maxBuffer: 64 << 20 });
  try {
    try {
      await install();
    } catch {
      // The host's package lists may predate this kernel: refresh them once and retry.
      await run('apt-get', ['-q', 'update'], { env, maxBuffer: 64 << 20 });
      await install();
    }
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: string };
    if (err.code === 'ENOENT') throw new LabError('apt-get not found', { hint: `install linux-headers-${release} by hand (a Debian host is expected)` });
    const why = (err.stderr ?? err.message).trim().split('\n').slice(-2).join(' | ');
    throw new LabError(`apt-get install linux-headers-${release} failed: ${why}`, { hint: 'run apt-get update first, or check the mirror' });
  }
  if (!fs.existsSync(path.join(dir, 'Makefile'))) throw new LabError(`linux-headers-${release} installed but ${dir}/Makefile is missing`);
  return dir;
}

/** Builds (or reuses) vmi_rootkit.ko for the lab kernel. */
export async function ensureRootkit(opts: RootkitOptions = {}): Promise<RootkitBuild> {
  const t0 = monotonicMs();
  const release = opts.release ?? (await ensureKernel(opts.kernel ?? '6.1')).release;
  const srcDir = rootkitSourceDir();
  const hash = crypto.createHash('sha256').update('rootkit-v1').update(release);
  for (const f of SOURCES) hash.update(f).update(fs.readFileSync(path.join(srcDir, f)));
  const sha = hash.digest('hex');
  const outDir = path.join(cacheDir(), 'rootkit', `${release}-${sha.slice(0, 16)}`);
  const ko = path.join(outDir, `${ROOTKIT.module}.ko`);
  const done = (built: boolean): RootkitBuild => ({ koPath: ko, release, sha256: sha, built, buildMs: Math.round(monotonicMs() - t0) });
  if (fs.existsSync(ko)) return done(false);
  return withLock(`${outDir}.lock`, async () => {
    if (fs.existsSync(ko)) return done(false);
    const kdir = opts.installHeaders === false ? headersDir(release) : await ensureHeaders(release);
    if (!fs.existsSync(path.join(kdir, 'Makefile'))) throw new LabError(`${kdir} is missing`, { hint: `install linux-headers-${release}` });
    // Kbuild writes next to the sources: build in a private copy.
    const work = fs.mkdtempSync(path.join(cacheDir(), 'rootkit', 'build-'));
    try {
      for (const f of SOURCES) fs.copyFileSync(path.join(srcDir, f), path.join(work, f));
      try {
        await run('make', ['-C', kdir, `M=${work}`, 'modules'], { maxBuffer: 16 << 20, env: { ...process.env, LC_ALL: 'C' } });
      } catch (e) {
        const err = e as NodeJS.ErrnoException & { stderr?: string; stdout?: string };
        if (err.code === 'ENOENT') throw new LabError('make not found', { hint: 'install make and gcc (the kernel headers need the compiler the kernel was built with)' });
        const why = (err.stderr || err.stdout || err.message).trim().split('\n').slice(-3).join(' | ');
        throw new LabError(`building ${ROOTKIT.module}.ko against ${kdir} failed: ${why}`, { hint: `check that gcc matching ${release} is installed (linux-compiler-gcc-*)` });
      }
      const built = path.join(work, `${ROOTKIT.module}.ko`);
      if (!fs.existsSync(built)) throw new LabError(`make succeeded but produced no ${ROOTKIT.module}.ko in ${work}`);
      fs.mkdirSync(outDir, { recursive: true });
      fs.copyFileSync(built, `${ko}.tmp`);
      fs.renameSync(`${ko}.tmp`, ko);
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
    return done(true);
  });
}

export interface RootkitScenario {
  /** comm of the process to hide ('' for none). */
  hideComm?: string;
  /** sys_call_table index to hook (-1 for none). */
  hookNr?: number;
  /** Unlink from the module list (default true). */
  unlink?: boolean;
}

/** The lab's extra-module entry for a built rootkit, with its insmod parameters. */
export function rootkitModuleFile(build: Pick<RootkitBuild, 'koPath'>, scenario: RootkitScenario = {}): ExtraModuleFile {
  const hide = scenario.hideComm ?? ROOTKIT.hideComm;
  if (!/^[A-Za-z0-9_.-]{0,15}$/.test(hide)) throw new LabError(`hideComm '${hide}' is not a plain comm (max 15 characters)`);
  const nr = scenario.hookNr ?? ROOTKIT.hookNr;
  if (!Number.isInteger(nr) || nr < -1 || nr > 1023) throw new LabError(`hookNr ${nr} is out of range`);
  const params = [`hook_nr=${nr}`, `unlink=${scenario.unlink === false ? 0 : 1}`];
  if (hide) params.unshift(`hide_comm=${hide}`);
  else params.unshift('hide_comm=');
  return { path: build.koPath, params: params.join(' ') };
}

/** The test rootkit's .ko bytes for a lab kernel (built once and cached), e.g. for `lab exec … insmod` while a monitor watches. */
export async function rootkitModule(opts: RootkitOptions = {}): Promise<Buffer> {
  return fs.readFileSync((await ensureRootkit(opts)).koPath);
}
