/**
 * Debian kernels for the lab: a spec ('6.1', '5.10-cloud', 'trixie-rt', or a
 * package name) is resolved through the suite's metapackage to the kernel the
 * archive carries today (never a pinned version), downloaded with a private
 * apt configuration, unpacked with `dpkg -x` and cached by package+version.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { LabError, UsageError } from '../core/errors.js';
import { candidate, download, kernelDependency, preparePrivateApt, SUITES, updateLists, type Suite } from './apt.js';
import { withLock } from './lock.js';
import { cacheDir } from './paths.js';
import { monotonicMs } from '../core/clock.js';

const run = promisify(execFile);

export const DEFAULT_KERNEL = '6.1';

/** Kernel series of each suite, as users name them. */
const SERIES: Record<string, Suite> = { '6.1': 'bookworm', '5.10': 'bullseye', '6.12': 'trixie' };
const FLAVOURS = ['amd64', 'cloud-amd64', 'rt-amd64'] as const;

export type KernelRequest =
  | { kind: 'meta'; suite: Suite; metapackage: string }
  | { kind: 'package'; package: string };

/**
 * '6.1' | '5.10' | '6.12' | 'bookworm' | 'bullseye' | 'trixie', optionally
 * suffixed '-cloud' or '-rt'; anything starting with 'linux-image-' is a
 * package name (a metapackage name is searched in every suite).
 */
export function parseKernelSpec(spec: string): KernelRequest {
  const s = spec.trim();
  if (s.startsWith('linux-image-')) {
    if (!/^linux-image-[a-z0-9.+~-]+$/.test(s)) throw new UsageError(`kernel package name '${spec}' has invalid characters`);
    return { kind: 'package', package: s };
  }
  const m = /^([a-z0-9.]+?)(?:-(cloud|rt))?$/.exec(s);
  const base = m?.[1];
  const suite: Suite | undefined =
    base === undefined ? undefined : SERIES[base] ?? ((SUITES as readonly string[]).includes(base) ? (base as Suite) : undefined);
  if (!m || !suite) {
    throw new UsageError(`unknown kernel '${spec}'`, {
      hint: `use one of ${Object.keys(SERIES).join(', ')} (or a suite name), optionally with -cloud or -rt, or a linux-image-* package name`,
    });
  }
  const flavour = m[2] ? `${m[2]}-amd64` : 'amd64';
  if (!(FLAVOURS as readonly string[]).includes(flavour)) throw new UsageError(`unknown kernel flavour in '${spec}'`);
  return { kind: 'meta', suite, metapackage: `linux-image-${flavour}` };
}

export interface LabKernel {
  /** The spec this was resolved from. */
  spec: string;
  /** Suite whose lists provided the package. */
  suite: Suite;
  package: string;
  version: string;
  /** `uname -r` of the kernel (the modules directory name). */
  release: string;
  /** The compressed bzImage from the package (`boot/vmlinuz-*`). */
  vmlinuzPath: string;
  /** `lib/modules/<release>` (or `usr/lib/modules/<release>` on trixie) inside the unpacked tree. */
  modulesDir: string;
  configPath: string;
  /** The `dpkg -x` tree. */
  root: string;
  /** Milliseconds spent when this kernel was first fetched (0 when it came from the cache). */
  downloadMs: number;
  unpackMs: number;
  fromCache: boolean;
}

interface Resolution {
  spec: string;
  suite: Suite;
  package: string;
  version: string;
  resolvedAt: string;
}

const RESOLVE_MAX_AGE_MS = 24 * 3600_000;

function kernelsDir(): string {
  return path.join(cacheDir(), 'kernels');
}

function aptRoot(): string {
  return path.join(cacheDir(), 'apt');
}

/** One apt process at a time per suite: an update must not swap the lists under a download. */
function withSuite<T>(suite: Suite, fn: () => Promise<T>): Promise<T> {
  return withLock(path.join(aptRoot(), `.${suite}.lock`), fn);
}

function safeFile(s: string): string {
  return s.replace(/[^A-Za-z0-9.+_-]/g, '_');
}

async function resolveOnline(spec: string, req: KernelRequest): Promise<Resolution> {
  const suites: readonly Suite[] = req.kind === 'meta' ? [req.suite] : SUITES;
  for (const suite of suites) {
    const dir = preparePrivateApt(aptRoot(), suite);
    const name = req.kind === 'meta' ? req.metapackage : req.package;
    const rec = await withSuite(suite, async () => {
      await updateLists(dir);
      return candidate(dir, name);
    });
    if (!rec) continue;
    // A metapackage (given as spec or by name) points at today's image package.
    const target = /^linux-image-\d/.test(rec.package) ? rec : undefined;
    if (target) return { spec, suite, package: target.package, version: target.version, resolvedAt: new Date().toISOString() };
    const dep = kernelDependency(rec);
    if (!dep) throw new LabError(`${name} in ${suite} depends on no linux-image package (${rec.depends.join(', ')})`);
    const img = await candidate(dir, dep);
    if (!img) throw new LabError(`${name} in ${suite} points at ${dep}, which ${suite}'s lists do not carry`);
    return { spec, suite, package: img.package, version: img.version, resolvedAt: new Date().toISOString() };
  }
  throw new LabError(`no Debian suite (${suites.join(', ')}) carries ${req.kind === 'meta' ? req.metapackage : req.package}`, {
    hint: 'check the package name with apt-cache search linux-image',
  });
}

/** Resolves the spec, preferring a fresh cached resolution and falling back to a stale one when offline. */
async function resolve(spec: string, req: KernelRequest): Promise<Resolution> {
  const file = path.join(kernelsDir(), `resolved-${safeFile(spec)}.json`);
  let cached: Resolution | undefined;
  try {
    cached = JSON.parse(fs.readFileSync(file, 'utf8')) as Resolution;
  } catch {
    cached = undefined;
  }
  if (cached && Date.now() - Date.parse(cached.resolvedAt) < RESOLVE_MAX_AGE_MS && fs.existsSync(unpackedDir(cached))) {
    return cached;
  }
  try {
    const fresh = await resolveOnline(spec, req);
    fs.mkdirSync(kernelsDir(), { recursive: true });
    fs.writeFileSync(file, JSON.stringify(fresh, null, 2) + '\n');
    return fresh;
  } catch (e) {
    if (cached && fs.existsSync(unpackedDir(cached))) return cached; // offline: the last kernel we had
    throw e;
  }
}

function unpackedDir(r: { package: string; version: string }): string {
  return path.join(kernelsDir(), safeFile(`${r.package}_${r.version}`));
}

function findModulesDir(root: string): { modulesDir: string; release: string } {
  for (const base of ['lib/modules', 'usr/lib/modules']) {
    const dir = path.join(root, base);
    let entries: string[];
    try {
      entries = fs.readdirSync(dir);
    } catch {
      continue;
    }
    const release = entries.find((e) => fs.statSync(path.join(dir, e)).isDirectory());
    if (release) return { modulesDir: path.join(dir, release), release };
  }
  throw new LabError(`unpacked kernel ${root} has no lib/modules/<release> directory`, {
    hint: `remove ${root} and retry`,
  });
}

function describe(r: Resolution, root: string, meta: { downloadMs: number; unpackMs: number }, fromCache: boolean): LabKernel {
  const { modulesDir, release } = findModulesDir(root);
  const vmlinuzPath = path.join(root, 'boot', `vmlinuz-${release}`);
  const configPath = path.join(root, 'boot', `config-${release}`);
  if (!fs.existsSync(vmlinuzPath)) throw new LabError(`kernel package ${r.package} has no boot/vmlinuz-${release}`, { hint: `remove ${root} and retry` });
  return { spec: r.spec, suite: r.suite, package: r.package, version: r.version, release, vmlinuzPath, modulesDir, configPath, root, ...meta, fromCache };
}

/**
 * Makes the kernel named by `spec` available locally and describes it.
 * Safe to call from several processes at once (one downloads, the others wait).
 */
export async function ensureKernel(spec: string = DEFAULT_KERNEL): Promise<LabKernel> {
  const req = parseKernelSpec(spec);
  const r = await withLock(path.join(kernelsDir(), '.resolve.lock'), () => resolve(spec, req));
  const root = unpackedDir(r);
  const stampFile = path.join(root, '.vmsight-kernel.json');
  if (fs.existsSync(stampFile)) {
    return describe(r, root, { downloadMs: 0, unpackMs: 0 }, true);
  }
  return withLock(`${root}.lock`, async () => {
    if (fs.existsSync(stampFile)) return describe(r, root, { downloadMs: 0, unpackMs: 0 }, true);
    const partial = `${root}.partial-${process.pid}`;
    cleanPartials(path.dirname(root), path.basename(root));
    fs.mkdirSync(partial, { recursive: true });
    try {
      const t0 = monotonicMs();
      const aptDir = preparePrivateApt(aptRoot(), r.suite);
      const deb = await withSuite(r.suite, () => download(aptDir, r.package, r.version, path.join(partial, 'deb')));
      const t1 = monotonicMs();
      const tree = path.join(partial, 'root');
      try {
        await run('dpkg-deb', ['-x', deb, tree], { maxBuffer: 16 * 1024 * 1024 });
      } catch (e) {
        throw new LabError(`dpkg-deb -x ${deb} failed: ${(e as Error).message.split('\n')[0]}`, { hint: 'is dpkg installed and the disk not full?' });
      }
      const t2 = monotonicMs();
      const meta = { downloadMs: Math.round(t1 - t0), unpackMs: Math.round(t2 - t1) };
      fs.rmSync(path.join(partial, 'deb'), { recursive: true, force: true });
      fs.rmSync(root, { recursive: true, force: true });
      fs.renameSync(tree, root);
      const k = describe(r, root, meta, false);
      fs.writeFileSync(stampFile, JSON.stringify({ package: r.package, version: r.version, release: k.release, ...meta }, null, 2) + '\n');
      return k;
    } finally {
      fs.rmSync(partial, { recursive: true, force: true });
    }
  });
}

/** Removes leftovers of interrupted downloads whose owner process is gone. */
function cleanPartials(dir: string, base: string): void {
  let entries: string[] = [];
  try {
    entries = fs.readdirSync(dir);
  } catch {
    return;
  }
  for (const e of entries) {
    const m = e.startsWith(`${base}.partial-`) ? /\.partial-(\d+)$/.exec(e) : null;
    if (!m) continue;
    const pid = Number(m[1]);
    let alive = false;
    try {
      process.kill(pid, 0);
      alive = true;
    } catch (err) {
      alive = (err as NodeJS.ErrnoException).code === 'EPERM';
    }
    if (!alive || pid === process.pid) fs.rmSync(path.join(dir, e), { recursive: true, force: true });
  }
}

/** Every kernel in the cache (for `vmsight lab kernels` and cleanup). */
export function cachedKernels(): { package: string; version: string; release: string; root: string }[] {
  const out: { package: string; version: string; release: string; root: string }[] = [];
  let entries: string[] = [];
  try {
    entries = fs.readdirSync(kernelsDir());
  } catch {
    return out;
  }
  for (const e of entries) {
    const stamp = path.join(kernelsDir(), e, '.vmsight-kernel.json');
    try {
      const j = JSON.parse(fs.readFileSync(stamp, 'utf8')) as { package: string; version: string; release: string };
      out.push({ package: j.package, version: j.version, release: j.release, root: path.join(kernelsDir(), e) });
    } catch {
      /* not a finished kernel */
    }
  }
  return out;
}
