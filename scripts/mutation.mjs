#!/usr/bin/env node
// Mutation score of our unit tests (npm run mutation [-- AREA...]), with StrykerJS; not part of CI (slow:
// every mutant reruns the area's unit tests). Areas: arch, kallsyms, kallsyms-names, btf, walk (default: all, one
// Stryker run each, so each mutant runs only the tests of its own area). Reports land in
// reports/mutation/<area>.html and .json; the score is printed per area.
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const AREAS = {
  arch: { mutate: ['src/arch/**/*.ts'], tests: ['test/arch/address-space.test.ts', 'test/arch/x86-64/paging.test.ts', 'test/arch/x86-64/translator.test.ts'] },
  kallsyms: { mutate: ['src/profile/kallsyms.ts', 'src/profile/kallsyms/**/*.ts'], tests: ['test/profile/kallsyms.test.ts', 'test/profile/kallsyms-fuzz.test.ts'] },
  // The deferred kallsyms names alone (one file, one fast test file): a score that fits in minutes.
  'kallsyms-names': { mutate: ['src/profile/kallsyms/lazy-names.ts'], tests: ['test/profile/kallsyms-lazy-names.test.ts'] },
  btf: { mutate: ['src/profile/btf.ts'], tests: ['test/profile/btf.test.ts'] },
  walk: { mutate: ['src/linux/walk/**/*.ts'], tests: ['test/linux/walk/list.test.ts', 'test/linux/walk/maple-tree.test.ts', 'test/linux/walk/rbtree.test.ts', 'test/linux/walk/xarray.test.ts'] },
};
const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
for (const a of wanted) if (!AREAS[a]) throw new Error(`unknown area '${a}' (have: ${Object.keys(AREAS).join(', ')})`);
const dir = join(root, 'reports', 'mutation');
mkdirSync(dir, { recursive: true });
let failed = 0;
for (const area of wanted.length ? wanted : Object.keys(AREAS)) {
  const { mutate, tests } = AREAS[area];
  const config = {
    $schema: './node_modules/@stryker-mutator/core/schema/stryker-schema.json',
    mutate,
    testRunner: 'command',
    commandRunner: { command: `node --import tsx --test --test-reporter=dot ${tests.join(' ')}` },
    coverageAnalysis: 'off',
    concurrency: Number(process.env.VMSIGHT_MUTATION_CONCURRENCY ?? 2),
    timeoutMS: 30_000,
    reporters: ['clear-text', 'html', 'json'],
    htmlReporter: { fileName: `reports/mutation/${area}.html` },
    jsonReporter: { fileName: `reports/mutation/${area}.json` },
    clearTextReporter: { allowColor: false, logTests: false, reportMutants: false },
    tempDirName: `.stryker-tmp/${area}`,
    ignorePatterns: ['dist', 'reports', 'bench-results', '.cache'],
    thresholds: { high: 80, low: 60, break: null },
  };
  const file = join(dir, `stryker.${area}.json`);
  writeFileSync(file, JSON.stringify(config, null, 2));
  process.stdout.write(`mutation: ${area} (${mutate.join(' ')})\n`);
  const r = spawnSync(process.execPath, [join(root, 'node_modules', '@stryker-mutator', 'core', 'bin', 'stryker.js'), 'run', file], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) failed++;
}
process.exit(failed ? 1 : 0);
