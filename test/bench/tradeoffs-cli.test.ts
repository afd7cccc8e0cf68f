/**
 * `vmsight bench tradeoffs` runs the study in a child process (bench/ is above
 * cli/): bad options come back as the study's one-line usage error and exit
 * code; other suites are refused with a pointer to npm run bench.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';

const ROOT = new URL('../..', import.meta.url).pathname;
const cli = (...args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', `import { main } from './src/cli/main.ts'; process.exitCode = await main(${JSON.stringify(args)});`], { cwd: ROOT, encoding: 'utf8' });

describe('vmsight bench', () => {
  it('bench tradeoffs passes its options to the study (a bad one: usage error, exit 2, one line)', () => {
    const r = cli('bench', 'tradeoffs', '--passes', 'x');
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /^bench: --passes x: expected a number ≥ 1\n$/);
  });
  it('an unknown technique is named with the list of known ones', () => {
    const r = cli('bench', 'tradeoffs', '--techniques', 'teleport');
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /unknown technique teleport \(have: live-map-mmap,/);
  });
  it('other suites: refused, pointing at npm run bench', () => {
    const r = cli('bench', 'memory');
    assert.equal(r.status, 2);
    assert.match(r.stderr, /npm run bench -- SUITE/);
  });
});
