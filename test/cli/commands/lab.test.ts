import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { command } from '../../../src/cli/commands/lab.js';
import { createOutput } from '../../../src/cli/render.js';
import { LabError, UsageError } from '../../../src/core/errors.js';

let run: string;
const saved = process.env['VMSIGHT_RUN'];
before(() => {
  run = fs.mkdtempSync(path.join(os.tmpdir(), 'vmsight-cli-lab-'));
  process.env['VMSIGHT_RUN'] = run;
});
after(() => {
  if (saved === undefined) delete process.env['VMSIGHT_RUN'];
  else process.env['VMSIGHT_RUN'] = saved;
  fs.rmSync(run, { recursive: true, force: true });
});

function exec(positionals: string[], values: Record<string, string | boolean> = {}, format: 'table' | 'json' = 'table') {
  let text = '';
  const out = createOutput(format, (s) => (text += s));
  return command.run({ positionals, values }, { out, debug: false }).then(() => text);
}

test('lab without or with an unknown subcommand is a usage error', async () => {
  await assert.rejects(exec([]), UsageError);
  await assert.rejects(exec(['frob']), /unknown lab subcommand 'frob'/);
});

test('up validates its options before touching QEMU', async () => {
  await assert.rejects(exec(['up', 'test-cli'], { cpu: 'host' }), /--cpu host/);
  await assert.rejects(exec(['up', 'test-cli'], { accel: 'hvf' }), /--accel hvf/);
  await assert.rejects(exec(['up', 'test-cli'], { memory: '1G' }), /--memory 1G/);
  await assert.rejects(exec(['up', 'test-cli'], { kernel: '6.2' }), UsageError);
  await assert.rejects(exec(['up', 'test-cli'], { 'on-reboot': 'restart' }), /--on-reboot go with --libvirt/);
  await assert.rejects(exec(['up', 'test-cli'], { libvirt: true, 'on-reboot': 'reboot' }), /--on-reboot reboot: use destroy or restart/);
});

test('list renders an empty run directory; console and truth need a guest', async () => {
  assert.equal(await exec(['list'], {}, 'json'), '[]\n');
  await assert.rejects(exec(['truth']), LabError);
  await assert.rejects(exec(['console', 'nosuch']), /no console log/);
  await assert.rejects(exec(['down', 'nosuch']), /no running lab guest named 'nosuch'/);
});
