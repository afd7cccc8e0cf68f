/**
 * Debian userland tools for the lab guest's initramfs (`bpftool`, `nft`):
 * the tool's package and the closure of its Depends, downloaded from
 * bookworm through the private apt configuration, unpacked with `dpkg-deb -x`
 * and cached by package+version. Only the tool binaries and the shared
 * libraries (with ld.so) go into the image; the guest's busybox stays the
 * rest of its userland. The guest uses them to report its own view (`bpftool
 * prog show`, `nft list ruleset`) for the plugin tests; introspection itself
 * stays agentless.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { LabError } from '../core/errors.js';
import { candidate, download, preparePrivateApt, updateLists, type PackageRecord, type Suite } from './apt.js';
import { withLock } from './lock.js';
import { cacheDir } from './paths.js';

const run = promisify(execFile);

/** The tools the lab can add, with their package, binaries and kernel modules they need loaded on demand. */
export const USERLAND_TOOLS = {
  bpftool: { package: 'bpftool', binaries: ['usr/sbin/bpftool'], modules: [] as string[] },
  // nft talks nfnetlink to nf_tables; all are modules in Debian kernels, listed in load order (libcrc32c
  // asks the crypto API for crc32c at init, and without modprobe only a loaded crc32c_generic answers).
  nft: { package: 'nftables', binaries: ['usr/sbin/nft'], modules: ['crc32c_generic', 'nfnetlink', 'libcrc32c', 'nf_tables'] },
} as const;
export type UserlandTool = keyof typeof USERLAND_TOOLS;

/** The userland comes from one suite whatever the guest kernel (glibc's syscalls work on 5.10 to 6.12). */
const SUITE: Suite = 'bookworm';
/** Bound on the dependency closure (a library stack is a dozen packages). */
const MAX_PACKAGES = 64;

export interface UserlandFile {
  /** Path inside the image, without the leading slash. */
  path: string;
  type: 'file' | 'symlink';
  mode: number;
  data?: Buffer;
  target?: string;
}

export interface Userland {
  /** Packages and versions, in the order resolved (part of the initramfs cache key). */
  packages: string[];
  files: UserlandFile[];
}

function aptRoot(): string {
  return path.join(cacheDir(), 'apt');
}

/** The first alternative's package name of each Depends/Pre-Depends entry. */
export function dependencyNames(rec: PackageRecord): string[] {
  return rec.depends.map((d) => d.split('|')[0]!.trim().split(/[\s(:]/)[0]!).filter(Boolean);
}

/** The tool packages and their Depends closure, each with its candidate version. */
async function resolveClosure(dir: string, roots: readonly string[]): Promise<PackageRecord[]> {
  const out: PackageRecord[] = [];
  const seen = new Set<string>();
  const queue = [...roots];
  while (queue.length) {
    const name = queue.shift()!;
    if (seen.has(name)) continue;
    seen.add(name);
    if (seen.size > MAX_PACKAGES) throw new LabError(`the dependencies of ${roots.join(', ')} exceed ${MAX_PACKAGES} packages`);
    const rec = await candidate(dir, name);
    if (!rec) throw new LabError(`${SUITE} carries no package ${name} (needed by ${roots.join(', ')})`, { hint: 'check the mirror (VMSIGHT_DEBIAN_MIRROR)' });
    out.push(rec);
    queue.push(...dependencyNames(rec));
  }
  return out;
}

/** The unpacked tree of one package (downloaded and unpacked once). */
async function unpacked(dir: string, rec: PackageRecord): Promise<string> {
  const root = path.join(cacheDir(), 'userland', `${rec.package}_${rec.version}`.replace(/[^A-Za-z0-9.+_-]/g, '_'));
  const stamp = path.join(root, '.vmsight-unpacked');
  if (fs.existsSync(stamp)) return root;
  return withLock(`${root}.lock`, async () => {
    if (fs.existsSync(stamp)) return root;
    const partial = `${root}.partial-${process.pid}`;
    fs.rmSync(partial, { recursive: true, force: true });
    try {
      const deb = await withLock(path.join(aptRoot(), `.${SUITE}.lock`), () => download(dir, rec.package, rec.version, path.join(partial, 'deb')));
      try {
        await run('dpkg-deb', ['-x', deb, path.join(partial, 'root')], { maxBuffer: 16 * 1024 * 1024 });
      } catch (e) {
        throw new LabError(`dpkg-deb -x ${deb} failed: ${(e as Error).message.split('\n')[0]}`, { hint: 'is dpkg installed and the disk not full?' });
      }
      fs.rmSync(root, { recursive: true, force: true });
      fs.renameSync(path.join(partial, 'root'), root);
      fs.writeFileSync(stamp, `${rec.package} ${rec.version}\n`);
      return root;
    } finally {
      fs.rmSync(partial, { recursive: true, force: true });
    }
  });
}

/** Directories whose shared objects the dynamic loader searches by default (multiarch Debian). */
const LIB_DIRS = ['lib/x86_64-linux-gnu', 'usr/lib/x86_64-linux-gnu', 'lib64'];
const isSharedObject = (name: string): boolean => /\.so(\.[0-9.]+)?$/.test(name) || /^ld-linux/.test(name);

/** The binaries and libraries of one unpacked package that the image needs. */
function collect(root: string, binaries: readonly string[]): UserlandFile[] {
  const out: UserlandFile[] = [];
  const take = (rel: string) => {
    const full = path.join(root, rel);
    const st = fs.lstatSync(full);
    if (st.isSymbolicLink()) out.push({ path: rel, type: 'symlink', mode: 0o777, target: fs.readlinkSync(full) });
    else if (st.isFile()) out.push({ path: rel, type: 'file', mode: st.mode & 0o755, data: fs.readFileSync(full) });
  };
  for (const b of binaries) {
    if (!fs.existsSync(path.join(root, b))) throw new LabError(`the package unpacked at ${root} has no ${b}`);
    take(b);
  }
  for (const d of LIB_DIRS) {
    let names: string[];
    try {
      names = fs.readdirSync(path.join(root, d));
    } catch {
      continue;
    }
    for (const n of names.sort()) if (isSharedObject(n)) take(`${d}/${n}`);
  }
  return out;
}

/** The files of `tools` (binaries, every library of their Depends closure, ld.so), for the initramfs. */
export async function ensureUserland(tools: readonly UserlandTool[]): Promise<Userland> {
  if (tools.length === 0) return { packages: [], files: [] };
  const dir = preparePrivateApt(aptRoot(), SUITE);
  const roots = tools.map((t) => USERLAND_TOOLS[t].package);
  const recs = await withLock(path.join(aptRoot(), `.${SUITE}.lock`), async () => {
    await updateLists(dir);
    return resolveClosure(dir, roots);
  });
  const files: UserlandFile[] = [];
  const seen = new Set<string>();
  for (const rec of recs) {
    const root = await unpacked(dir, rec);
    const binaries = tools.filter((t) => USERLAND_TOOLS[t].package === rec.package).flatMap((t) => USERLAND_TOOLS[t].binaries);
    for (const f of collect(root, binaries)) {
      if (seen.has(f.path)) continue;
      seen.add(f.path);
      files.push(f);
    }
  }
  return { packages: recs.map((r) => `${r.package}=${r.version}`), files };
}

/** Where a tool's on-demand kernel module lies in the image (`insmod` it before using the tool). */
export const userlandModulePath = (name: string): string => `/lib/modules/ondemand/${name}.ko`;
