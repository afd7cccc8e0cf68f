/** `vmsight types --profile FILE NAME` over BTF and ISF profile files (no guest needed). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { command } from '../../src/cli/commands/types.js';
import { createOutput, type OutputFormat } from '../../src/cli/render.js';
import { ProfileError, UsageError, VmsightError } from '../../src/core/errors.js';
import { parseBtf } from '../../src/profile/btf.js';
import { exportIsf, writeIsfFile } from '../../src/profile/isf.js';
import { TypeDb } from '../../src/profile/types.js';
import { kernelLikeBtf } from './helpers/btf-encoder.js';

async function run(format: OutputFormat, positionals: string[], values: Record<string, string | boolean>): Promise<string> {
  let text = '';
  const out = createOutput(format, (s) => {
    text += s;
  });
  await command.run({ positionals, values }, { out, debug: false });
  return text;
}

test('types --profile: layout text, member rows, enums, globs and errors', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vmsight-types-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const btfFile = path.join(dir, 'vmlinux.btf');
  const { bytes } = kernelLikeBtf();
  writeFileSync(btfFile, bytes);
  const isfFile = path.join(dir, 'k.json');
  writeIsfFile(isfFile, exportIsf(new TypeDb(parseBtf(bytes)), []).isf);

  for (const file of [btfFile, isfFile]) {
    const text = await run('table', ['task_struct'], { profile: file });
    assert.match(text, /struct task_struct \{/);
    assert.match(text, /in_iowait:1;\s+\/\*\s+12: 1\s+4 \*\//);
    assert.match(text, /size: 80/);
    const rows = JSON.parse(await run('json', ['task_struct'], { profile: file })) as { member: string; offset: number; bits: number | null }[];
    const byName = new Map(rows.map((r) => [r.member, r]));
    assert.equal(byName.get('comm')?.offset, 40);
    assert.equal(byName.get('static_prio')?.offset, 60); // through the anonymous union and struct
    assert.equal(byName.get('flags3')?.bits, 3);
    const nested = JSON.parse(await run('json', ['task_struct'], { profile: file, expand: true })) as { member: string; offset: number }[];
    assert.equal(nested.find((r) => r.member === 'tasks.prev')?.offset, 24);
  }
  assert.match(await run('table', ['task_state'], { profile: btfFile }), /TASK_DEAD = -1,/);
  assert.match(await run('table', ['*_struct'], { profile: btfFile }), /mm_struct\s+24[\s\S]*task_struct\s+80/);
  await assert.rejects(run('table', ['nope_struct'], { profile: btfFile }), ProfileError);
  await assert.rejects(run('table', [], { profile: btfFile }), UsageError);
  await assert.rejects(run('table', ['task_struct'], { profile: btfFile, kind: 'class' }), UsageError);
  await assert.rejects(run('table', ['x'], { profile: path.join(dir, 'missing.btf') }), (e: unknown) => e instanceof VmsightError && e.exitCode === 3);
});
