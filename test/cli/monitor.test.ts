/** `vmsight monitor` and its refusals: every bad option and every unusable sink is one line before anything attaches. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { parseWatches } from '../../src/cli/commands/monitor.js';
import { DEFAULT_WATCHES, WATCH_NAMES } from '../../src/monitor/watches/index.js';
import { runCli } from './helpers/spawn-cli.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vmsight-test-monitor-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** A source that does not exist: the checks below must fail before it is even looked at. */
const NOWHERE = path.join(tmp, 'no-such-guest.elf');

function oneLine(stderr: string): string {
  const lines = stderr.trim().split('\n');
  assert.equal(lines.length, 1, stderr);
  return lines[0]!;
}

test('--watch: names, all, and an unknown name naming the valid ones', () => {
  assert.deepEqual(parseWatches(undefined), [...DEFAULT_WATCHES]);
  assert.deepEqual(parseWatches('all'), [...WATCH_NAMES]);
  assert.deepEqual(parseWatches('processes,modules,processes'), ['processes', 'modules']);
  const r = runCli(['monitor', NOWHERE, '--watch', 'processes,bogus']);
  assert.equal(r.code, 2);
  assert.match(oneLine(r.stderr), /unknown watch 'bogus'.*valid: processes, threads/);
});

test('bad --rate, --interval, --for and --cpu-budget values are usage errors', () => {
  for (const args of [
    ['--rate', '0'],
    ['--rate', 'fast'],
    ['--interval', '10', '--rate', '5'],
    ['--interval', '2h'],
    ['--for', 'soon'],
    ['--cpu-budget', '2'],
  ]) {
    const r = runCli(['monitor', NOWHERE, ...args]);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    oneLine(r.stderr);
  }
});

test('a store or JSON Lines file that cannot be written is refused before attaching (exit 3, one line)', () => {
  const underFile = path.join(tmp, 'plain-file');
  fs.writeFileSync(underFile, 'x');
  for (const args of [
    ['--store', path.join(tmp, 'missing', 'events.db')],
    ['--store', path.join(underFile, 'events.db')],
    ['--out', path.join(tmp, 'missing', 'events.jsonl')],
  ]) {
    const r = runCli(['monitor', NOWHERE, ...args]);
    assert.equal(r.code, 3, `${args.join(' ')}: ${r.stderr}`);
    const line = oneLine(r.stderr);
    assert.match(line, /events\.(db|jsonl)/);
    assert.doesNotMatch(line, /no-such-guest/, 'refused before the source was opened');
  }
});

test('a policy file with an error is one line naming the file, the line and the rule', () => {
  const policy = path.join(tmp, 'policy.yaml');
  fs.writeFileSync(policy, 'version: 1\nrules:\n  - name: shells\n    kind: process-allowlist\n    allow:\n      - commm: [sh]\n');
  const r = runCli(['monitor', NOWHERE, '--policy', policy]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(oneLine(r.stderr), /policy\.yaml:6:\d+: rule "shells": unknown field 'commm'/);
});

test('a missing source is exit 3 after the sinks were checked', () => {
  const r = runCli(['monitor', NOWHERE, '--for', '1s']);
  assert.equal(r.code, 3, r.stderr);
  assert.match(oneLine(r.stderr), /no-such-guest/);
});
