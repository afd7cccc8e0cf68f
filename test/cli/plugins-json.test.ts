/** How a plugin command writes its rows with the run's anomalies (and validation) in each output format. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { writePluginResult } from '../../src/cli/commands/plugins.js';
import { createOutput } from '../../src/cli/render.js';
import { absent, definePlugin } from '../../src/linux/plugin.js';
import type { PassResult } from '../../src/linux/pass.js';

const plugin = definePlugin<{ pid: number; task: bigint; comm: string | ReturnType<typeof absent>; hidden: string }>()({
  name: 'demo',
  version: '1',
  summary: 'demo rows',
  requires: {},
  columns: [
    { key: 'pid', kind: 'int' },
    { key: 'task', kind: 'hex' },
    { key: 'comm', kind: 'str' },
  ],
  key: (r) => String(r.pid),
  run: () => [],
});
const result: PassResult<any> = {
  plugin: 'demo',
  rows: [
    { pid: 1, task: 0xffff_8880_0010_0000n, comm: 'init', hidden: 'not a column' },
    { pid: 2, task: 0xffff_8880_0010_0400n, comm: absent('unreadable', 'fault'), hidden: 'x' },
  ],
  anomalies: [{ kind: 'fault', where: 'task_struct.comm', address: 0xffff_8880_0010_0438n, detail: 'not mapped' }],
  anomalyCounts: { fault: 1 },
  elapsedMs: 1,
  validation: { attempts: 2, retries: 1, changedRanges: 1, changedValues: 0, watchedPages: 3, validated: true },
};

function render(format: 'table' | 'json' | 'jsonl' | 'csv'): { out: string; err: string } {
  let out = '';
  let err = '';
  writePluginResult(createOutput(format, (s) => (out += s)), plugin, result, (s) => (err += s));
  return { out, err };
}

test('--json: one object with the rows (schema columns only), the anomalies and the validation', () => {
  const { out, err } = render('json');
  assert.equal(err, '');
  assert.deepEqual(JSON.parse(out), {
    plugin: 'demo',
    rows: [
      { pid: 1, task: '0xffff888000100000', comm: 'init' },
      { pid: 2, task: '0xffff888000100400', comm: null, absent: { comm: { kind: 'unreadable', reason: 'fault' } } },
    ],
    anomalies: { total: 1, counts: { fault: 1 }, items: [{ kind: 'fault', where: 'task_struct.comm', address: '0xffff888000100438', detail: 'not mapped' }] },
    validation: { attempts: 2, retries: 1, changedRanges: 1, changedValues: 0, watchedPages: 3, validated: true },
  });
});

test('--jsonl: a line per row, then one anomalies line', () => {
  const lines = render('jsonl').out.trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(lines.length, 3);
  assert.deepEqual(lines[0], { pid: 1, task: '0xffff888000100000', comm: 'init' });
  assert.equal(lines[2].anomalies.total, 1);
  assert.equal(lines[2].validation.validated, true);
});

test('table and csv: rows on stdout, a one-line anomaly summary and the validation on stderr', () => {
  for (const format of ['table', 'csv'] as const) {
    const { out, err } = render(format);
    assert.match(out, /init/);
    assert.doesNotMatch(out, /fault/);
    assert.match(err, /demo: 1 anomalies \(fault 1\); first: task_struct\.comm not mapped/);
    assert.match(err, /demo: validated \(2 attempts, 1 changed ranges\)/);
  }
});
