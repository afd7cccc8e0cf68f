/** The `vmsight` process as a user meets it: exit codes, help, closed pipes (issue 10, bugs 2 and 9). */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { guestImage } from './helpers/run-command.js';
import { cliCommandLine, repoRoot, runCli } from './helpers/spawn-cli.js';

const img = guestImage();
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vmsight-test-main-'));
after(() => {
  img.cleanup();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('a closed pipe', () => {
  // Bug 2: `vmsight … | head` printed an unhandled `write EPIPE` stack and exited 1.
  it('ends quietly with exit 0 when the reader goes away', () => {
    const err = path.join(tmp, 'stderr');
    const line = `${cliCommandLine(['read', img.file, '--pa', '0', '--len', '8000000'])} 2>'${err}' | head -1; echo "\${PIPESTATUS[0]}"`;
    const r = spawnSync('bash', ['-c', line], { cwd: repoRoot, encoding: 'utf8' });
    const [first, status] = r.stdout.trim().split('\n');
    assert.match(first!, /^00000000: /, 'head got the first line');
    assert.equal(fs.readFileSync(err, 'utf8'), '', 'nothing on stderr');
    assert.equal(status, '0');
  });
});

describe('exit codes (README "Commands")', () => {
  it('0: success', () => {
    const r = runCli(['plugins']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /pslist/);
  });

  it('0: help asked for goes to stdout', () => {
    const r = runCli(['--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^usage: vmsight/m);
  });

  it('2: no arguments at all is a usage error, help on stderr', () => {
    const r = runCli([]);
    assert.equal(r.code, 2);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /^usage: vmsight <command>/m);
  });

  it('2: an unknown option', () => {
    const r = runCli(['plugins', '--bogus']);
    assert.equal(r.code, 2);
  });

  it('3: a memory image that does not exist', () => {
    const r = runCli(['info', path.join(tmp, 'no-such.img')]);
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /no-such\.img.*(no such file|does not exist)/);
  });

  it('3: a --profile file that does not exist', () => {
    for (const args of [['pslist', img.file, '--profile', path.join(tmp, 'nope.json')], ['types', '--profile', path.join(tmp, 'nope.json'), 'task_struct']]) {
      const r = runCli(args);
      assert.equal(r.code, 3, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /nope\.json/);
    }
  });

  it('4: an analysis failure (a physical address no RAM backs)', () => {
    const r = runCli(['read', img.file, '--pa', '0x7fff00000000', '--len', '16']);
    assert.equal(r.code, 4, r.stderr);
  });

  it('1: an internal error names itself as a bug', async () => {
    const { describeError } = await import('../../src/core/errors.js');
    const d = describeError(new TypeError('x is undefined'));
    assert.equal(d.exitCode, 1);
    assert.match(d.line, /^internal error: x is undefined \(run with --debug/);
  });
});
