import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';

const script = path.join(import.meta.dirname, '../../scripts/check-imports.mjs');

const made: string[] = [];
after(() => {
  for (const dir of made) fs.rmSync(dir, { recursive: true, force: true });
});

function project(files: Record<string, string>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmsight-imports-'));
  made.push(dir);
  for (const [name, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, 'src', name)), { recursive: true });
    fs.writeFileSync(path.join(dir, 'src', name), text);
  }
  return dir;
}

function check(dir: string): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, [script, dir], { encoding: 'utf8' });
  return { status: r.status, out: r.stdout };
}

test('the project itself follows the flow', () => {
  const r = check(path.join(import.meta.dirname, '../..'));
  assert.equal(r.status, 0, r.out);
});

test('downward imports pass; upward static, re-export and dynamic imports and cycles fail', () => {
  const ok = project({ 'linux/a.ts': "import { x } from '../memory/b.js';\n", 'memory/b.ts': 'export const x = 1;\n' });
  assert.equal(check(ok).status, 0);
  const bad = project({
    'memory/a.ts': "import type { K } from '../linux/k.js';\nexport { y } from '../cli/y.js';\nconst m = await import('../lab/vm.js');\n",
    'linux/k.ts': "import { a } from '../memory/a.js';\n",
    'monitor/m.ts': "import { g } from '../lab/g.js';\n",
  });
  const r = check(bad);
  assert.equal(r.status, 1);
  assert.match(r.out, /upward: memory\/a\.ts -> linux/);
  assert.match(r.out, /upward: memory\/a\.ts -> cli/);
  assert.match(r.out, /upward: memory\/a\.ts -> lab/);
  assert.match(r.out, /upward: monitor\/m\.ts -> lab/);
  assert.match(r.out, /cycle: linux <-> memory/);
});
