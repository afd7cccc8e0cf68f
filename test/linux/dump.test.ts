import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { DumpDir, MAX_DUMP_NAME, safeFileName } from '../../src/linux/dump.js';

test('guest-chosen names cannot escape the folder or hide as dotfiles', () => {
  for (const evil of ['../../etc/passwd', '..', '.', '/abs/path', 'a/../../b', '\0x', '.bashrc', 'x\ny', '…unicode…']) {
    const name = safeFileName([7, evil, 0x1000n]);
    assert.match(name, /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/, evil);
    assert.ok(!name.includes('..') && !name.includes('/'), `${evil} -> ${name}`);
  }
  assert.equal(safeFileName([42, 'bash', 0x7f00n]), '42.bash.0x7f00');
  assert.ok(safeFileName(['x'.repeat(10_000)]).length <= MAX_DUMP_NAME);
  assert.equal(safeFileName(['']), '_');
});

test('writes stay inside the folder and never follow a planted symlink', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmsight-dump-'));
  try {
    const d = new DumpDir(dir);
    const f = d.write(['1', '../../../tmp/evil'], new Uint8Array([1, 2, 3]));
    assert.equal(path.dirname(f), path.resolve(dir));
    assert.deepEqual([...fs.readFileSync(f)], [1, 2, 3]);
    const outside = path.join(dir, '..', `vmsight-dump-target-${process.pid}`);
    fs.writeFileSync(outside, 'keep');
    fs.symlinkSync(outside, path.join(dir, 'planted'));
    assert.throws(() => d.write(['planted'], new Uint8Array([9])), /ELOOP|symbolic/);
    assert.equal(fs.readFileSync(outside, 'utf8'), 'keep');
    fs.rmSync(outside);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
