/** Commands on a lab guest as a user runs them (issue 10: bugs 6, 12 and 14). */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { command as lab } from '../../src/cli/commands/lab.js';
import { command as profile } from '../../src/cli/commands/profile.js';
import { pluginCommand } from '../../src/cli/commands/plugins.js';
import checkSyscall from '../../src/linux/plugins/check_syscall.js';
import { createOutput } from '../../src/cli/render.js';
import type { Command } from '../../src/cli/command.js';
import { parseCommandLine } from '../../src/cli/main.js';
import { sharedGuest, type SharedGuest } from '../helpers/guest.js';

let g: SharedGuest;
before(async () => {
  g = await sharedGuest({ kernel: '6.1' });
});

/** Runs a command as main.ts does (its own option parsing), returning what it printed. */
async function run(command: Command, args: string[]): Promise<string> {
  const parsed = parseCommandLine(command, args);
  const v = parsed.values;
  const format = v['json'] ? 'json' : v['csv'] ? 'csv' : 'table';
  let out = '';
  await command.run({ positionals: parsed.positionals, values: v as Record<string, string | boolean | undefined> }, { out: createOutput(format, (s) => (out += s)), debug: false });
  return out;
}

describe('on a 6.1 guest', { timeout: 300_000 }, () => {
  // Bug 14: the README says JSON; a table came out.
  test('lab truth prints JSON by default', async () => {
    const text = await run(lab, ['truth', g.guest.name]);
    const truth = JSON.parse(text);
    assert.equal(truth.release, g.truth.release);
    assert.ok(Array.isArray(truth.processes) && truth.processes.length > 5);
  });

  // Bug 6: --all was declared and never read.
  test('check_syscall lists the unused slots only with --all', async () => {
    const cmd = pluginCommand(checkSyscall);
    type Rows = { rows: { index: number; symbol: string }[] };
    const plain = (JSON.parse(await run(cmd, [g.guest.name, '--json'])) as Rows).rows;
    const all = (JSON.parse(await run(cmd, [g.guest.name, '--json', '--all'])) as Rows).rows;
    const ni = all.filter((r) => /sys_ni_syscall/.test(r.symbol));
    assert.ok(ni.length > 10, `${ni.length} unused slots`);
    assert.equal(plain.length, all.length - ni.length);
    assert.ok(!plain.some((r) => /sys_ni_syscall/.test(r.symbol)));
    assert.ok(plain.some((r) => r.symbol === '__x64_sys_read'));
  });

  // Bug 12: "missing: pcpu_hot (… (looked in profile cache … (looked in …)))".
  test('profile names each missing global once, without nested sources', async () => {
    const text = await run(profile, [g.guest.name]);
    const line = text.split('\n').find((l) => l.startsWith('globals'))!;
    assert.ok(line, text);
    assert.ok(!line.includes('looked in'), line);
    assert.ok(text.includes('\ntimings.total '), 'timings as rows');
  });
});
