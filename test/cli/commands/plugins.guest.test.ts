/**
 * The plugin command path (`vmsight <plugin> <source>`, cli/commands/plugins.ts) on a live 6.1 guest:
 * each renderer shows the rows a direct run gives, declared options reach the plugin, a missing
 * requirement fails with the analysis exit code naming what is missing (before the plugin runs), absent
 * values render as '-' in tables and CSV and as a named absent value in JSON, and anomalies are reported.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseArgs } from 'node:util';
import { pluginCommand } from '../../../src/cli/commands/plugins.js';
import type { Command } from '../../../src/cli/command.js';
import { globalOptions } from '../../../src/cli/main.js';
import { createOutput, type OutputFormat } from '../../../src/cli/render.js';
import { describeError, ExitCode } from '../../../src/core/errors.js';
import { SCENARIO } from '../../../src/lab/index.js';
import { absent, definePlugin, runPlugin, type Requirements } from '../../../src/linux/plugin.js';
import pslist from '../../../src/linux/plugins/pslist.js';
import { attachForSuite } from '../../helpers/kernel.js';

interface Run {
  code: number;
  out: string;
  stderr: string;
  error?: string;
}

/** Runs a command as main.ts does (parseArgs with the global options), capturing stdout and stderr. */
async function run(command: Command, argv: string[]): Promise<Run> {
  const parsed = parseArgs({ args: argv, options: { ...globalOptions, ...command.options }, allowPositionals: true, strict: true });
  const v = parsed.values;
  const format: OutputFormat = v['json'] ? 'json' : v['jsonl'] ? 'jsonl' : v['csv'] ? 'csv' : 'table';
  let out = '';
  let stderr = '';
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((s: string | Uint8Array) => ((stderr += String(s)), true)) as typeof process.stderr.write;
  try {
    const code = await command.run({ positionals: parsed.positionals, values: v as Record<string, string | boolean | undefined> }, { out: createOutput(format, (s) => (out += s)), debug: false });
    return { code: code ?? 0, out, stderr };
  } catch (e) {
    const { line, exitCode } = describeError(e);
    return { code: exitCode, out, stderr, error: line };
  } finally {
    process.stderr.write = write;
  }
}

interface ProbeRow {
  name: string;
  value: number | ReturnType<typeof absent>;
}

/** A plugin over the real kernel whose requirements, rows and anomalies the test chooses. */
function probe(requires: Requirements) {
  let ran = 0;
  const plugin = definePlugin<ProbeRow>()({
    name: 'probe',
    version: '0',
    summary: 'test probe',
    requires,
    columns: [
      { key: 'name', kind: 'str' },
      { key: 'value', kind: 'int' },
    ],
    key: (r) => r.name,
    *run(k, { anomalies }) {
      ran++;
      yield { name: 'init_task', value: k.typed.obj('task_struct', k.symbol('init_task')).read().s32('pid') };
      anomalies.add({ kind: 'fault', where: 'probe.value', address: 0xdead000n, detail: 'planted' });
      yield { name: 'planted', value: absent('unreadable', 'planted fault') };
    },
  });
  return { command: pluginCommand(plugin), ran: () => ran };
}

describe('the plugin command path on a 6.1 guest', { timeout: 900_000 }, () => {
  const g = attachForSuite({ kernel: '6.1' });
  const source = (): string => `shm:${g.guest.shmPath}`;

  test('table, JSON and CSV show the processes a direct run finds, with the declared columns', async () => {
    const command = pluginCommand(pslist);
    const direct = new Set(runPlugin(pslist, g.kernel).rows.map((r) => r.pid));
    const scenario = [SCENARIO.user, SCENARIO.args, SCENARIO.files].map((c) => g.truth.processes.find((p) => p.comm === c)!.pid);

    const json = await run(command, [source(), '--json']);
    assert.equal(json.code, 0, json.error);
    const rows = (JSON.parse(json.out) as { rows: { pid: number; comm: string }[] }).rows;
    assert.deepEqual(Object.keys(rows[0]!), pslist.columns.map((c) => c.key), 'JSON rows carry the declared columns, in order');
    const jsonPids = new Set(rows.map((r) => r.pid));

    const csv = await run(command, [source(), '--csv']);
    assert.equal(csv.code, 0, csv.error);
    const [head, ...lines] = csv.out.trimEnd().split('\n');
    assert.equal(head, pslist.columns.map((c) => c.key).join(','));
    const pidCol = pslist.columns.findIndex((c) => c.key === 'pid');
    const csvPids = new Set(lines.map((l) => Number(l.split(',')[pidCol])));

    const table = await run(command, [source()]);
    assert.equal(table.code, 0, table.error);
    const [thead, ...trows] = table.out.trimEnd().split('\n');
    assert.deepEqual(thead!.trim().split(/\s+/), pslist.columns.map((c) => c.title ?? c.key), 'table headers are the column titles');
    const tablePids = new Set(trows.map((l) => Number(l.trim().split(/\s+/)[pidCol])));

    for (const [what, pids] of [['json', jsonPids], ['csv', csvPids], ['table', tablePids]] as const) {
      for (const pid of scenario) assert.ok(pids.has(pid), `${what} lists scenario pid ${pid}`);
      // A live guest: a transient process may come or go between runs, nothing more.
      const diff = [...pids].filter((p) => !direct.has(p)).length + [...direct].filter((p) => !pids.has(p)).length;
      assert.ok(diff <= 2, `${what} and a direct run differ by ${diff} pids`);
    }
  });

  test('a declared option reaches the plugin: --pid filters', async () => {
    const pid = g.truth.processes.find((p) => p.comm === SCENARIO.files)!.pid;
    const r = await run(pluginCommand(pslist), [source(), '--json', '--pid', String(pid)]);
    assert.equal(r.code, 0, r.error);
    assert.deepEqual((JSON.parse(r.out) as { rows: { pid: number }[] }).rows.map((x) => x.pid), [pid]);
    const bad = await run(pluginCommand(pslist), [source(), '--pid', 'one']);
    assert.equal(bad.code, ExitCode.usage);
    assert.match(bad.error ?? '', /--pid expects process ids, got 'one'/);
  });

  for (const [what, requires, missing] of [
    ['a symbol', { symbols: ['vmsight_no_such_symbol'] }, /needs symbol vmsight_no_such_symbol/],
    ['a type', { types: ['vmsight_no_such_type'] }, /needs type vmsight_no_such_type/],
    ['a field', { fields: [['task_struct', 'vmsight_no_such_field']] }, /needs task_struct\.vmsight_no_such_field/],
    ['one of several fields', { anyOf: [[['task_struct', 'nope_a'], ['mm_struct', 'nope_b']]] }, /needs one of task_struct\.nope_a, mm_struct\.nope_b/],
  ] as const) {
    test(`a missing requirement (${what}) fails with the analysis code before the plugin runs`, async () => {
      const p = probe(requires as Requirements);
      const r = await run(p.command, [source()]);
      assert.equal(r.code, ExitCode.analysis, r.error);
      assert.match(r.error ?? '', missing);
      assert.equal(p.ran(), 0, 'the plugin did not run');
      assert.equal(r.out, '');
    });
  }

  test('met requirements run the plugin; absent values render as - (table, CSV) and named in JSON; anomalies are reported', async () => {
    const p = probe({ symbols: ['init_task'], fields: [['task_struct', 'pid']], anyOf: [[['mm_struct', 'mm_mt'], ['mm_struct', 'mmap']]] });
    const table = await run(p.command, [source()]);
    assert.equal(table.code, 0, table.error);
    assert.equal(p.ran(), 1);
    assert.deepEqual(table.out.trimEnd().split('\n').map((l) => l.trim().split(/\s+/)), [['name', 'value'], ['init_task', '0'], ['planted', '-']]);
    assert.match(table.stderr, /probe: 1 anomalies \(fault 1\); first: probe\.value planted/);

    const csv = await run(p.command, [source(), '--csv']);
    assert.equal(csv.out, 'name,value\ninit_task,0\nplanted,-\n');

    const json = await run(p.command, [source(), '--json']);
    assert.equal(json.code, 0, json.error);
    const doc = JSON.parse(json.out) as { rows: { name: string; value: unknown; absent?: Record<string, { kind: string }> }[]; anomalies: { total: number } };
    const rows = doc.rows;
    assert.equal(rows[0]!.value, 0);
    // The absent value is null with its kind beside it (README: JSON shape), and the anomalies travel with the rows.
    assert.equal(rows[1]!.value, null);
    assert.equal(rows[1]!.absent?.['value']?.kind, 'unreadable');
    assert.equal(doc.anomalies.total, 1);
  });
});
