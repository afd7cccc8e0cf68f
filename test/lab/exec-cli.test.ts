/** `vmsight lab exec` argument handling (no guest needed). */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { command } from '../../src/cli/commands/lab.js';
import { labExec } from '../../src/lab/exec.js';
import { runCommand } from '../cli/helpers/run-command.js';

let run: string;
let saved: string | undefined;
before(() => {
  run = fs.mkdtempSync(path.join(os.tmpdir(), 'vmsight-exec-cli-'));
  saved = process.env['VMSIGHT_RUN'];
  process.env['VMSIGHT_RUN'] = run;
});
after(() => {
  if (saved === undefined) delete process.env['VMSIGHT_RUN'];
  else process.env['VMSIGHT_RUN'] = saved;
  fs.rmSync(run, { recursive: true, force: true });
});

test('lab exec without a guest name or a command is a usage error', async () => {
  const none = await runCommand(command, ['exec']);
  assert.equal(none.code, 2);
  assert.match(none.error!, /needs a guest name and a command/);
  const noCmd = await runCommand(command, ['exec', 'k61']);
  assert.equal(noCmd.code, 2);
  assert.match(noCmd.error!, /needs a command after the guest name/);
});

test('lab exec --timeout takes a positive number of seconds', async () => {
  for (const bad of ['abc', '0', '-1', '1e3']) {
    const r = await runCommand(command, ['exec', 'k61', `--timeout=${bad}`, '--', 'true']);
    assert.equal(r.code, 2, bad);
    assert.match(r.error!, /--timeout .*: expected a positive number of seconds/);
  }
});

test('lab exec on a guest that does not run names it and exits 3', async () => {
  const r = await runCommand(command, ['exec', 'no-such-guest', '--', 'true']);
  assert.equal(r.code, 3);
  assert.match(r.error!, /no running lab guest named 'no-such-guest'/);
  await assert.rejects(labExec('no-such-guest', ['true']), /no running lab guest named 'no-such-guest'/);
});
