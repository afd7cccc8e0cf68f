#!/usr/bin/env node
// Installs whatever vmsight needs that is missing, then builds it. Idempotent:
// a second run finds everything in place and only rebuilds.
//   node scripts/setup.mjs          runtime needs (npm deps, QEMU, busybox-static, xz, zstd, gcc; python3, make, g++ for better-sqlite3)
//   node scripts/setup.mjs --test   also what the test suite needs (bpftool, kernel headers for the lab's 6.1)
// Plain Node with no dependencies: it runs before `npm ci`.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, lstatSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const forTests = process.argv.includes('--test');
const quiet = process.argv.includes('--quiet');

function log(msg) {
  if (!quiet) process.stderr.write(`setup: ${msg}\n`);
}

function fail(msg, code = 3) {
  process.stderr.write(`setup: ${msg}\n`);
  process.exit(code);
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: quiet ? ['ignore', 'ignore', 'inherit'] : 'inherit', cwd: root, ...opts });
  if (r.error) fail(`${cmd} could not start: ${r.error.message}`);
  if (r.status !== 0) fail(`'${cmd} ${args.join(' ')}' exited with ${r.status}`);
}

// --- Node ---------------------------------------------------------------------------------
const [major] = process.versions.node.split('.').map(Number);
if (major < 20) fail(`Node ${process.versions.node} is too old: vmsight needs Node 20 or newer`);

// --- System packages (Debian) ----------------------------------------------------------------
// Each entry: the Debian package, and a file that proves it is installed.
const runtimePackages = [
  ['qemu-system-x86', '/usr/bin/qemu-system-x86_64'],
  ['busybox-static', '/bin/busybox'],
  ['xz-utils', '/usr/bin/xz'],
  ['zstd', '/usr/bin/zstd'],
  // LZO pages of kdump-compressed images (QEMU kdump-lzo, makedumpfile -l): the reference liblzo2 through koffi.
  ['liblzo2-2', '/usr/lib/x86_64-linux-gnu/liblzo2.so.2'],
  ['gcc', '/usr/bin/gcc'],
  ['libc6-dev', '/usr/lib/x86_64-linux-gnu/libc.a'],
  // better-sqlite3 (the monitor's event store) builds its native addon from source with node-gyp: its
  // prebuilt-binary download reaches GitHub, which may be out of reach.
  ['python3', '/usr/bin/python3'],
  ['make', '/usr/bin/make'],
  ['g++', '/usr/bin/g++'],
];
const testPackages = [
  ['bpftool', '/usr/sbin/bpftool'],
  // The libvirt tests (test/**/libvirt*.test.ts) run a real daemon: libvirtd, virtlogd, virsh.
  ['libvirt-daemon-system', '/usr/sbin/libvirtd'],
  ['libvirt-clients', '/usr/bin/virsh'],
  ['libvirt-daemon-driver-qemu', '/usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_qemu.so'],
];

function dpkgInstalled(pkg) {
  const r = spawnSync('dpkg-query', ['-W', '-f=${Status}', pkg], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.includes('install ok installed');
}

const wanted = [...runtimePackages, ...(forTests ? testPackages : [])];
const missing = wanted.filter(([pkg, file]) => !existsSync(file) || !dpkgInstalled(pkg)).map(([pkg]) => pkg);
if (missing.length) {
  if (!existsSync('/usr/bin/apt-get')) fail(`missing ${missing.join(', ')} and this is not a Debian system: install them by hand`);
  const isRoot = process.getuid?.() === 0;
  const sudo = isRoot ? [] : ['sudo', '-n'];
  if (!isRoot && spawnSync('sudo', ['-n', 'true']).status !== 0)
    fail(`missing Debian packages ${missing.join(' ')}: run 'sudo apt-get install -y ${missing.join(' ')}' (or run setup as root)`);
  log(`installing ${missing.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const [cmd, ...pre] = sudo.length ? sudo : ['apt-get'];
  const aptArgs = (a) => (sudo.length ? [...pre, 'apt-get', ...a] : a);
  run(cmd, aptArgs(['update', '-qq']), { env });
  run(cmd, aptArgs(['install', '-y', '-qq', '--no-install-recommends', ...missing]), { env });
}

// --- npm dependencies ----------------------------------------------------------------------
// better-sqlite3 builds its addon from source when its prebuilt binary (from GitHub) is out of reach;
// node-gyp then uses the headers installed with Node rather than downloading them.
function nodeGypEnv() {
  const nodeDir = dirname(dirname(process.execPath));
  const headers = existsSync(join(nodeDir, 'include', 'node', 'node_version.h')) ? { npm_config_nodedir: nodeDir } : {};
  return { ...process.env, ...headers };
}
const lock = join(root, 'package-lock.json');
const installedLock = join(root, 'node_modules', '.package-lock.json');
const linkedModules = existsSync(join(root, 'node_modules')) && lstatSync(join(root, 'node_modules')).isSymbolicLink();
if (linkedModules) {
  // A worktree borrowing another checkout's node_modules: `npm ci` would empty that checkout's folder.
  log('node_modules is a link to another checkout: not reinstalling into it (run npm ci there if its dependencies are stale)');
} else if (!existsSync(installedLock) || statSync(lock).mtimeMs > statSync(installedLock).mtimeMs) {
  log('installing npm dependencies');
  run('npm', ['ci', '--no-audit', '--no-fund'], { env: nodeGypEnv() });
}

// --- The event store's native addon ------------------------------------------------------------------
// A node_modules built by another Node (or with the install script skipped) has no usable addon: rebuild it.
const sqliteWorks = () =>
  spawnSync(process.execPath, ['-e', "new (require('better-sqlite3'))(':memory:').close()"], { cwd: root, stdio: 'ignore' }).status === 0;
if (!sqliteWorks()) {
  log('building better-sqlite3 from source');
  run('npm', ['rebuild', 'better-sqlite3'], { env: nodeGypEnv() });
  if (!sqliteWorks()) fail("better-sqlite3 does not load after a rebuild: check that python3, make and g++ work, then run 'npm rebuild better-sqlite3'", 4);
}

// --- Build -------------------------------------------------------------------------------------
log('building (tsc)');
run(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(root, 'tsconfig.json')]);
// The single-file bundle with V8's code cache, which bin/vmsight.js runs while it is as new as dist/ (a
// faster cold start: README "Cold start"). esbuild is a dev dependency: without it, dist/ alone.
if (existsSync(join(root, 'node_modules', 'esbuild'))) {
  log('bundling (esbuild)');
  run(process.execPath, [join(root, 'scripts', 'bundle.mjs')]);
}

// Kernel headers for the lab's 6.1 kernel (the out-of-tree test module) are installed by the lab
// itself on demand (it knows which exact kernel version the archive serves today).
if (forTests) {
  try {
    execFileSync(process.execPath, [join(root, 'bin', 'vmsight.js'), '--version'], { stdio: 'ignore' });
  } catch {
    fail('the build did not produce a working bin/vmsight.js', 4);
  }
}
log('ready');
