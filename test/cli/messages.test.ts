/** Error messages a person reads once, without repetition or parser jargon (issue 10, bug 12). */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { command as read } from '../../src/cli/commands/read.js';
import { command as symbols } from '../../src/cli/commands/symbols.js';
import { parseCommandLine } from '../../src/cli/main.js';
import { UsageError } from '../../src/core/errors.js';
import { guestImage, runCommand } from './helpers/run-command.js';

const img = guestImage();
after(() => img.cleanup());

describe('messages', () => {
  it('an unmapped virtual address is named once', async () => {
    const r = await runCommand(read, [img.file, '--va', '0xdeadbeef', '--len', '16']);
    assert.equal(r.code, 4);
    assert.equal(r.error!.split('virtual address 0xdeadbeef').length - 1, 1, r.error);
    assert.match(r.error!, /^virtual address 0xdeadbeef: not present/);
  });

  it('an unknown option is named plainly', () => {
    assert.throws(
      () => parseCommandLine(read, [img.file, '--bogus']),
      (e: unknown) => e instanceof UsageError && e.oneLine() === `read: unknown option --bogus: usage: vmsight read ${read.usage}`,
    );
  });

  it('a negative number is the option value, for the command to judge', async () => {
    const p = parseCommandLine(read, [img.file, '--pa', '0', '--len', '-5']);
    assert.equal(p.values['len'], '-5');
    const r = await runCommand(read, [img.file, '--pa', '0', '--len=-5']);
    assert.equal(r.code, 2);
    assert.match(r.error!, /^--len -5: expected 1\.\./);
    const s = parseCommandLine(symbols, [img.file, '--limit', '-1']);
    assert.equal(s.values['limit'], '-1');
  });

  it('a missing value says so', () => {
    assert.throws(() => parseCommandLine(read, [img.file, '--len']), (e: unknown) => e instanceof UsageError && /^read: --len needs a value/.test(e.message));
    assert.throws(() => parseCommandLine(read, [img.file, '--len', '--pa', '0']), (e: unknown) => e instanceof UsageError && /^read: --len needs a value/.test(e.message));
    assert.throws(() => parseCommandLine(read, [img.file, '--json=1']), (e: unknown) => e instanceof UsageError && /^read: --json takes no value/.test(e.message));
  });
});
