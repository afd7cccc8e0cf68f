/**
 * The light command table (cli/registry.ts, cli/plugin-catalog.ts) says what each command's module says:
 * same names, aliases and summaries, plugins in the order of linux/plugins/index.ts; and looking a command
 * up loads only that command (a cold start imports the one plugin it runs).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { PLUGIN_CATALOG } from '../../src/cli/plugin-catalog.js';
import { commandEntries, findEntry } from '../../src/cli/registry.js';
import { plugins } from '../../src/linux/plugins/index.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

test('every entry matches the command it loads', async () => {
  for (const e of commandEntries) {
    const c = await e.load();
    assert.equal(c.name, e.name);
    assert.equal(c.summary, e.summary, `summary of ${e.name}`);
    assert.deepEqual(c.aliases ?? [], e.aliases ?? [], `aliases of ${e.name}`);
  }
});

test('the plugin catalog lists every plugin, in order, with its own name, aliases and summary', async () => {
  assert.deepEqual(PLUGIN_CATALOG.map((p) => p.name), plugins.map((p) => p.name));
  for (const [i, entry] of PLUGIN_CATALOG.entries()) {
    const p = plugins[i]!;
    assert.deepEqual([entry.aliases, entry.summary], [p.aliases ?? [], p.summary], p.name);
    assert.equal(await entry.load(), p, `${p.name} loads its own module`);
  }
});

test('Volatility names and command aliases find their entries', () => {
  assert.equal(findEntry('linux.pslist.PsList')?.name, 'pslist');
  assert.equal(findEntry('ksyms')?.name, 'symbols');
  assert.equal(findEntry('dmesg')?.name, 'kmsg');
  assert.equal(findEntry('nope'), undefined);
});

/** Our modules a file loads at import time: its static, non-type imports, transitively (dynamic import() excluded). */
function staticClosure(entry: string): string[] {
  const seen = new Set<string>();
  const visit = (file: string): void => {
    if (seen.has(file)) return;
    seen.add(file);
    const text = fs.readFileSync(file, 'utf8');
    for (const m of text.matchAll(/^\s*(?:import|export)\s+(?!type\b)(?:[^'";]*?\s+from\s+)?['"](\.[^'"]+)['"]/gm)) {
      visit(path.resolve(path.dirname(file), m[1]!.replace(/\.js$/, '.ts')));
    }
  };
  visit(entry);
  return [...seen].map((f) => path.relative(path.join(ROOT, 'src'), f)).sort();
}

test('the CLI entry loads no analysis code at import time: commands and plugins are imported when they run', () => {
  const loaded = staticClosure(path.join(ROOT, 'src', 'cli', 'main.ts'));
  assert.ok(loaded.includes('cli/registry.ts') && loaded.includes('cli/plugin-catalog.ts'), loaded.join(' '));
  // The progress renderer, its core interface and the clock it reads, and the table line builder, are a few lines of plain code, no analysis.
  const heavy = loaded.filter((f) => !/^(cli\/(main|registry|plugin-catalog|command|render|table-line|help|progress)\.ts|core\/(errors|progress|clock)\.ts)$/.test(f));
  assert.deepEqual(heavy, [], 'modules main.ts loads before a command runs');
});
