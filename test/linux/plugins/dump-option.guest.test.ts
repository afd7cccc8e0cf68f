/** `--dump DIR` on malfind and elfs writes the regions it reports, under sanitized names inside DIR. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { runPlugin } from '../../../src/linux/plugin.js';
import elfs from '../../../src/linux/plugins/elfs.js';
import malfind from '../../../src/linux/plugins/malfind.js';
import { attachForSuite } from '../../helpers/kernel.js';

const g = attachForSuite({ kernel: '6.1' });
let dir: string;

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmsight-dumpdir-'));
});
after(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test('malfind --dump writes the injected-looking page, and its bytes start with the shown head', () => {
  const r = runPlugin(malfind, g.kernel, { dump: dir });
  const row = r.rows.find((x) => x.comm === 'vmi-files');
  assert.ok(row?.dumped, 'the scenario rwx page is dumped');
  assert.equal(path.dirname(row.dumped), path.resolve(dir));
  const bytes = fs.readFileSync(row.dumped);
  assert.equal(bytes.length, Number(row.end - row.start));
  assert.deepEqual(new Uint8Array(bytes.subarray(0, row.head.length)), row.head);
});

test('elfs --dump writes ELF images that start with the ELF magic', () => {
  const r = runPlugin(elfs, g.kernel, { dump: dir, pid: ['1'] });
  assert.ok(r.rows.length >= 1);
  for (const row of r.rows) {
    assert.ok(row.dumped && path.dirname(row.dumped) === path.resolve(dir));
    assert.match(path.basename(row.dumped), /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/);
    assert.deepEqual([...fs.readFileSync(row.dumped).subarray(0, 4)], [0x7f, 0x45, 0x4c, 0x46]);
  }
});
