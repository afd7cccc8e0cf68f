/** Files with one job: no source file over ~400 lines without a reason stated in its header comment. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const SRC = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'src');
const LIMIT = 410;

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? sources(p) : e.name.endsWith('.ts') ? [p] : [];
  });
}

test(`every src file over ${LIMIT} lines says why at its top`, () => {
  const files = sources(SRC);
  assert.ok(files.length > 100, 'found the sources');
  const unexplained = files.filter((f) => {
    const text = fs.readFileSync(f, 'utf8');
    if (text.split('\n').length <= LIMIT) return false;
    const header = /^\/\*\*[\s\S]*?\*\//.exec(text)?.[0] ?? '';
    return !/Longer than ~400 lines on purpose: \S/.test(header);
  });
  assert.deepEqual(unexplained.map((f) => path.relative(SRC, f)), []);
});
