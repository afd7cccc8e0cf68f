#!/usr/bin/env node
// Mutation score of our unit tests (npm run mutation [-- AREA...] [--full]), with StrykerJS; not part of CI.
// Areas: walk, btf, arch, kallsyms (the default, in that order: cheapest first), and two parts of kallsyms
// that score in minutes: kallsyms-names, kallsyms-decode. One Stryker run per area, so a mutant is judged by
// its own area's unit tests only, not by tests of the layers above that happen to run it. Message wording is
// not mutated (scripts/mutation-ignore-messages.mjs says which literals and why).
//
// How it stays fast enough for a 2-core machine:
// - tap runner with per-test coverage: the dry run records which test files reach each mutant; a mutant
//   then runs only those files (one `node` process each, stopping at the first that fails), and a mutant
//   no test reaches is not run at all.
// - no TypeScript loader per process: Stryker's build step (`--build`, below) transpiles the instrumented
//   sandbox with esbuild once, and the tests run as plain JavaScript from .mutation-dist/. The same build
//   runs in the project first, so Stryker sees the tests' JavaScript among its input files (what the
//   incremental mode compares to know which tests changed).
// - incremental: each area's last result is kept in reports/mutation/<area>.incremental.json, and a
//   later run re-tests only the mutants whose code or covering tests changed (`--full` re-tests all).
// Reports land in reports/mutation/<area>.html and .json (git-ignored); the score is printed per area.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

if (process.argv[2] === '--build') {
  // Stryker's buildCommand, run inside its sandbox: src/ and test/ (instrumented or not) to .mutation-dist/, file by
  // file. Types are not checked here: Stryker's mutants are not meant to type-check.
  const { build } = await import('esbuild');
  const sources = (dir) =>
    readdirSync(join(root, dir), { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.d.ts'))
      .map((e) => join(e.parentPath ?? e.path, e.name));
  await build({
    entryPoints: [...sources('src'), ...sources('test')],
    outdir: join(root, '.mutation-dist'),
    outbase: root,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    logLevel: 'warning',
  });
  process.exit(0);
}

const AREAS = {
  arch: {
    mutate: ['src/arch/**/*.ts'],
    tests: ['arch/address-space', 'arch/x86-64/paging', 'arch/x86-64/translator', 'arch/x86-64/translator-epochs', 'arch/x86-64/disasm', 'arch/pass-blocks'],
  },
  walk: {
    mutate: ['src/linux/walk/**/*.ts'],
    tests: ['linux/walk/common', 'linux/walk/hashtable', 'linux/walk/list', 'linux/walk/list-settle', 'linux/walk/maple-tree', 'linux/walk/rbtree', 'linux/walk/xarray'],
  },
  btf: {
    mutate: ['src/profile/btf.ts'],
    tests: ['profile/btf'],
    // The tests that loop over a real 5 MB kernel BTF (parse + index, 500 corrupted copies, every name looked
    // up both ways) take seconds each, tens under Stryker's instrumentation, for every mutant; synthetic tests
    // cover the same code.
    skip: ['fuzz: mutated real vmlinux BTF', 'real vmlinux BTF: parse', 'BTF lazy name lookup: the record scans'],
  },
  kallsyms: {
    mutate: ['src/profile/kallsyms.ts', 'src/profile/kallsyms/**/*.ts'],
    tests: ['profile/kallsyms', 'profile/kallsyms-fuzz', 'profile/kallsyms-lazy-names'],
  },
  // Parts of kallsyms that score in minutes rather than hours: the deferred names module against its own
  // fast test file, and the table decoder against the unit tests of kallsyms.
  'kallsyms-names': { mutate: ['src/profile/kallsyms/lazy-names.ts'], tests: ['profile/kallsyms-lazy-names'] },
  'kallsyms-decode': { mutate: ['src/profile/kallsyms/decode.ts'], tests: ['profile/kallsyms', 'profile/kallsyms-lazy-names'] },
};
const args = process.argv.slice(2);
const wanted = args.filter((a) => !a.startsWith('-'));
for (const a of wanted) if (!AREAS[a]) throw new Error(`unknown area '${a}' (have: ${Object.keys(AREAS).join(', ')})`);
const full = args.includes('--full');
const built = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--build'], { cwd: root, stdio: 'inherit' });
if (built.status !== 0) process.exit(built.status ?? 1);
const dir = join(root, 'reports', 'mutation');
mkdirSync(dir, { recursive: true });
let failed = 0;
const DEFAULT_AREAS = ['walk', 'btf', 'arch', 'kallsyms'];
for (const area of wanted.length ? wanted : DEFAULT_AREAS) {
  const { mutate, tests, skip } = AREAS[area];
  // Node 20 has --test-name-pattern but no skip pattern (22 has): a negative lookahead skips the named tests.
  // It must not match Node's root test, '<root>', or every test runs as the root's child.
  const skipArgs = skip ? [`--test-name-pattern=^(?!<root>$|(?:${skip.map((n) => n.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|')}))`] : [];
  const config = {
    $schema: '../../node_modules/@stryker-mutator/core/schema/stryker-schema.json',
    mutate,
    testRunner: 'tap',
    tap: { testFiles: tests.map((t) => `.mutation-dist/test/${t}.test.js`), nodeArgs: ['--test-reporter=tap', ...skipArgs], forceBail: true },
    buildCommand: 'node scripts/mutation.mjs --build',
    plugins: ['@stryker-mutator/*', './scripts/mutation-ignore-messages.mjs'],
    ignorers: ['message-text'],
    coverageAnalysis: 'perTest',
    incremental: true,
    incrementalFile: `reports/mutation/${area}.incremental.json`,
    force: full,
    concurrency: Number(process.env.VMSIGHT_MUTATION_CONCURRENCY ?? 2),
    timeoutMS: 5_000,
    reporters: ['clear-text', 'html', 'json', 'progress'],
    htmlReporter: { fileName: `reports/mutation/${area}.html` },
    jsonReporter: { fileName: `reports/mutation/${area}.json` },
    clearTextReporter: { allowColor: false, logTests: false, reportMutants: false },
    tempDirName: `.stryker-tmp/${area}`,
    ignorePatterns: ['dist', 'reports', 'bench-results', '.cache', '.stryker-tmp'],
    thresholds: { high: 80, low: 60, break: null },
  };
  const file = join(dir, `stryker.${area}.json`);
  writeFileSync(file, JSON.stringify(config, null, 2));
  process.stdout.write(`mutation: ${area} (${mutate.join(' ')})\n`);
  const r = spawnSync(process.execPath, [join(root, 'node_modules', '@stryker-mutator', 'core', 'bin', 'stryker.js'), 'run', file], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) failed++;
}
process.exit(failed ? 1 : 0);
