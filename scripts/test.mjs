#!/usr/bin/env node
// Runs the test suite with Node's built-in runner (TypeScript through tsx).
//   node scripts/test.mjs            every test: unit, then the guest tests (boot lab guests under QEMU)
//   node scripts/test.mjs --unit     unit tests only (synthetic memory, no QEMU)
//   node scripts/test.mjs --guest    guest tests only
//   node scripts/test.mjs FILE...    the named test files
// Lab guests booted by the tests are shared between test files and stopped at the end. Test files run one
// at a time: some pause the shared guest (guest-halting access, snapshots, the gdbstub) while others
// assert that it runs, and the machine has two cores, one of them busy with the guest under TCG.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const only = args.filter((a) => !a.startsWith('--'));
const unitOnly = args.includes('--unit');
const guestOnly = args.includes('--guest');

function testFiles(dir) {
  const out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...testFiles(p));
    else if (entry.name.endsWith('.test.ts')) out.push(relative(root, p));
  }
  return out.sort();
}

let files = only.length ? only : testFiles(join(root, 'test'));
const isGuest = (f) => f.endsWith('.guest.test.ts');
if (unitOnly) files = files.filter((f) => !isGuest(f));
if (guestOnly) files = files.filter(isGuest);
// Unit tests first: they fail fast and need no QEMU.
files = [...files.filter((f) => !isGuest(f)), ...files.filter(isGuest)];
if (!files.length) {
  process.stderr.write('test: no test files selected\n');
  process.exit(2);
}

const env = { ...process.env, VMSIGHT_TEST: '1' };
const result = spawnSync(
  process.execPath,
  // spec, and at the end the wall time of the slowest files (scripts/file-times.mjs).
  ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-reporter=spec', '--test-reporter-destination=stdout', `--test-reporter=${join(root, 'scripts', 'file-times.mjs')}`, '--test-reporter-destination=stdout', ...files],
  { cwd: root, stdio: 'inherit', env },
);

// Stop the guests the tests booted (named t-*), whatever the outcome.
if (files.some(isGuest)) {
  spawnSync(
    process.execPath,
    ['--import', 'tsx', '-e', "const m = await import('./test/helpers/guest.ts'); await m.stopTestGuests();"],
    { cwd: root, stdio: 'inherit', env },
  );
}
process.exit(result.status ?? 1);
