/**
 * A private apt configuration per Debian suite, so the lab can ask Debian's
 * archive for kernels without touching the host's sources, lists or dpkg
 * status. Each suite gets its own sources.list, lists and caches under the
 * vmsight cache directory; apt-get/apt-cache are driven with -o overrides.
 * Only the host's keyrings (read-only) and apt.conf.d (proxies) are shared.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { LabError } from '../core/errors.js';

const run = promisify(execFile);

export const SUITES = ['bookworm', 'bullseye', 'trixie'] as const;
export type Suite = (typeof SUITES)[number];

export interface MirrorConfig {
  /** Main archive (env `VMSIGHT_DEBIAN_MIRROR`; else the host's own apt sources). */
  archive: string;
  /** Security archive (env `VMSIGHT_DEBIAN_SECURITY_MIRROR`; else the host's own apt sources). */
  security: string;
}

/** A Debian source entry: where (URI) and which suites. */
export interface AptSource {
  uri: string;
  suites: string[];
}

/** Parses one-line (`deb URI SUITE COMPONENTS`) and deb822 (`URIs:`/`Suites:` stanzas) apt sources. */
export function parseAptSources(text: string): AptSource[] {
  const out: AptSource[] = [];
  const oneLine = /^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)/;
  for (const line of text.split('\n')) {
    const m = oneLine.exec(line);
    if (m) out.push({ uri: m[1]!, suites: [m[2]!] });
  }
  for (const stanza of text.split(/\n\s*\n/)) {
    const field = (name: string) => new RegExp(`^${name}:\\s*(.+)$`, 'mi').exec(stanza)?.[1]?.trim();
    const types = field('Types');
    if (!types || !types.split(/\s+/).includes('deb') || /^Enabled:\s*no/im.test(stanza)) continue;
    const suites = (field('Suites') ?? '').split(/\s+/).filter(Boolean);
    for (const uri of (field('URIs') ?? '').split(/\s+/).filter(Boolean)) out.push({ uri, suites });
  }
  return out;
}

/** The host's apt sources (read only), in apt's own order. */
function hostAptSources(): AptSource[] {
  const files = ['/etc/apt/sources.list'];
  try {
    for (const f of fs.readdirSync('/etc/apt/sources.list.d').sort()) if (/\.(list|sources)$/.test(f)) files.push(path.join('/etc/apt/sources.list.d', f));
  } catch {
    // no sources.list.d
  }
  return files.flatMap((f) => {
    try {
      return parseAptSources(fs.readFileSync(f, 'utf8'));
    } catch {
      return [];
    }
  });
}

/**
 * The Debian archive and security mirrors: the environment's, else the ones
 * the host's apt already uses (the entries serving a plain suite and a
 * -security suite), so the lab asks the same mirror the host's apt does.
 */
export function defaultMirrors(sources: readonly AptSource[] = hostAptSources()): MirrorConfig {
  const isDebian = (s: AptSource) => s.suites.some((x) => /^(buster|bullseye|bookworm|trixie|forky|sid|stable|oldstable|testing)(-updates|-security|-backports)?$/.test(x));
  const archive = process.env['VMSIGHT_DEBIAN_MIRROR'] || sources.find((s) => isDebian(s) && s.suites.some((x) => !x.includes('-')))?.uri;
  const security = process.env['VMSIGHT_DEBIAN_SECURITY_MIRROR'] || sources.find((s) => isDebian(s) && s.suites.some((x) => x.endsWith('-security')))?.uri;
  if (!archive || !security)
    throw new LabError('no Debian archive found in the host\'s apt sources', {
      hint: 'set VMSIGHT_DEBIAN_MIRROR and VMSIGHT_DEBIAN_SECURITY_MIRROR to the Debian archive and security mirrors to use',
    });
  return { archive: archive.replace(/\/+$/, ''), security: security.replace(/\/+$/, '') };
}

/**
 * The sources.list of one suite: the release, its -updates and -security
 * pockets (the current kernel usually lives in -security), and backports
 * (priority 100 through NotAutomatic, so it never wins the metapackage but
 * makes backported kernels downloadable by name).
 */
export function sourcesList(suite: Suite, mirrors: MirrorConfig = defaultMirrors()): string {
  const lines = [
    `deb ${mirrors.archive} ${suite} main`,
    `deb ${mirrors.archive} ${suite}-updates main`,
    `deb ${mirrors.security} ${suite}-security main`,
  ];
  if (suite !== 'bullseye') lines.push(`deb ${mirrors.archive} ${suite}-backports main`);
  return lines.join('\n') + '\n';
}

/** The -o options that point apt at the private directory `dir` and nothing of the host's state. */
export function aptOptions(dir: string): string[] {
  const o = (k: string, v: string) => ['-o', `${k}=${v}`];
  return [
    ...o('Dir::Etc::SourceList', path.join(dir, 'sources.list')),
    ...o('Dir::Etc::SourceParts', path.join(dir, 'sources.list.d')),
    ...o('Dir::Etc::Preferences', path.join(dir, 'preferences')),
    ...o('Dir::Etc::PreferencesParts', path.join(dir, 'preferences.d')),
    ...o('Dir::State', dir),
    ...o('Dir::State::Lists', path.join(dir, 'lists')),
    ...o('Dir::State::status', path.join(dir, 'status')),
    ...o('Dir::State::extended_states', path.join(dir, 'extended_states')),
    ...o('Dir::Cache', path.join(dir, 'cache')),
    ...o('Dir::Cache::archives', path.join(dir, 'archives')),
    ...o('Dir::Cache::pkgcache', path.join(dir, 'pkgcache.bin')),
    ...o('Dir::Cache::srcpkgcache', path.join(dir, 'srcpkgcache.bin')),
    ...o('APT::Architecture', 'amd64'),
    ...o('APT::Architectures', 'amd64'),
    ...o('Acquire::Languages', 'none'),
    ...o('Acquire::IndexTargets::deb::Contents-deb::DefaultEnabled', 'false'),
    // Our own directories belong to the caller; as root, apt's _apt sandbox user could not write them.
    ...(process.getuid?.() === 0 ? o('APT::Sandbox::User', 'root') : []),
    ...o('Debug::NoLocking', 'true'),
  ];
}

/** Creates the private tree for `suite` under `root` (idempotent). Returns its directory. */
export function preparePrivateApt(root: string, suite: Suite, mirrors: MirrorConfig = defaultMirrors()): string {
  const dir = path.join(root, suite);
  for (const d of ['lists/partial', 'archives/partial', 'cache', 'sources.list.d', 'preferences.d']) {
    fs.mkdirSync(path.join(dir, d), { recursive: true });
  }
  const list = sourcesList(suite, mirrors);
  const listPath = path.join(dir, 'sources.list');
  const old = fs.existsSync(listPath) ? fs.readFileSync(listPath, 'utf8') : '';
  if (old !== list) {
    fs.writeFileSync(listPath, list);
    fs.rmSync(path.join(dir, 'updated'), { force: true });
  }
  if (!fs.existsSync(path.join(dir, 'status'))) fs.writeFileSync(path.join(dir, 'status'), '');
  if (!fs.existsSync(path.join(dir, 'preferences'))) fs.writeFileSync(path.join(dir, 'preferences'), '');
  return dir;
}

function tail(s: string, n = 3): string {
  return s.trim().split('\n').slice(-n).join(' | ');
}

/** Runs an apt tool with the private options; throws LabError with apt's last lines on failure. */
async function apt(tool: 'apt-get' | 'apt-cache', dir: string, args: string[], cwd?: string): Promise<string> {
  try {
    const { stdout } = await run(tool, [...aptOptions(dir), ...args], {
      cwd,
      maxBuffer: 64 * 1024 * 1024,
      env: { ...process.env, LC_ALL: 'C', DEBIAN_FRONTEND: 'noninteractive' },
    });
    return stdout;
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: string; stdout?: string };
    if (err.code === 'ENOENT') {
      throw new LabError(`${tool} not found`, { hint: 'the lab downloads Debian kernels with apt; run it on Debian or Ubuntu' });
    }
    throw new LabError(`${tool} ${args.join(' ')} failed: ${tail(err.stderr || err.stdout || err.message)}`, {
      hint: 'check network access to the Debian mirror (VMSIGHT_DEBIAN_MIRROR overrides it)',
    });
  }
}

const LIST_MAX_AGE_MS = 24 * 3600_000;

/** A suite's package lists, refreshed when older than a day (or when forced). */
export async function updateLists(dir: string, force = false): Promise<void> {
  const stamp = path.join(dir, 'updated');
  if (!force) {
    try {
      if (Date.now() - fs.statSync(stamp).mtimeMs < LIST_MAX_AGE_MS) return;
    } catch {
      /* never updated */
    }
  }
  try {
    await apt('apt-get', dir, ['-q', 'update']);
  } catch (e) {
    // An older pocket (e.g. -updates of an archived suite) may be gone; accept when the main list arrived.
    if (!hasLists(dir)) throw e;
  }
  if (!hasLists(dir)) throw new LabError(`apt-get update fetched no package lists into ${dir}`);
  fs.writeFileSync(stamp, new Date().toISOString() + '\n');
}

function hasLists(dir: string): boolean {
  try {
    return fs.readdirSync(path.join(dir, 'lists')).some((f) => f.endsWith('_Packages') || f.endsWith('_Packages.lz4'));
  } catch {
    return false;
  }
}

export interface PackageRecord {
  package: string;
  version: string;
  depends: string[];
  size?: number;
}

/** Parses the first stanza of `apt-cache show` output. */
export function parseStanza(text: string): PackageRecord | undefined {
  const stanza = text.split(/\n\n/)[0] ?? '';
  const fields = new Map<string, string>();
  let last = '';
  for (const line of stanza.split('\n')) {
    if (/^\s/.test(line) && last) {
      fields.set(last, `${fields.get(last)}\n${line.trim()}`);
      continue;
    }
    const m = /^([A-Za-z0-9-]+):\s*(.*)$/.exec(line);
    if (m) {
      last = m[1]!;
      fields.set(last, m[2]!);
    }
  }
  const pkg = fields.get('Package');
  const version = fields.get('Version');
  if (!pkg || !version) return undefined;
  const depends = (fields.get('Depends') ?? '')
    .split(',')
    .map((d) => d.trim())
    .filter(Boolean);
  const size = fields.get('Size');
  return { package: pkg, version, depends, ...(size ? { size: Number(size) } : {}) };
}

/** The candidate version of `pkg` in this suite, or undefined when the suite does not have it. */
export async function candidate(dir: string, pkg: string): Promise<PackageRecord | undefined> {
  let out: string;
  try {
    out = await apt('apt-cache', dir, ['show', '--no-all-versions', pkg]);
  } catch {
    return undefined;
  }
  return parseStanza(out);
}

/**
 * The kernel image package a metapackage (`linux-image-amd64`, `-cloud-amd64`,
 * `-rt-amd64`) currently points at: its first `linux-image-*` dependency.
 */
export function kernelDependency(meta: PackageRecord): string | undefined {
  for (const dep of meta.depends) {
    for (const alt of dep.split('|')) {
      const name = alt.trim().split(/[\s(]/)[0]!;
      if (/^linux-image-\d/.test(name)) return name;
    }
  }
  return undefined;
}

/** Downloads `pkg=version` into `destDir` and returns the .deb path. */
export async function download(dir: string, pkg: string, version: string, destDir: string): Promise<string> {
  fs.mkdirSync(destDir, { recursive: true });
  await apt('apt-get', dir, ['-q', 'download', `${pkg}=${version}`], destDir);
  const deb = fs.readdirSync(destDir).find((f) => f.startsWith(`${pkg}_`) && f.endsWith('.deb'));
  if (!deb) throw new LabError(`apt-get download ${pkg}=${version} left no .deb in ${destDir}`);
  return path.join(destDir, deb);
}
