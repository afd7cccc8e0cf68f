import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createOutput, toJson, type Column } from '../../src/cli/render.js';

const columns: Column[] = [
  { key: 'pid', kind: 'int' },
  { key: 'addr', kind: 'hex' },
  { key: 'comm', kind: 'str' },
];
const rows = [
  { pid: 1, addr: 0xffff888000001000n, comm: 'init', extra: 'not a column' },
  { pid: 42, addr: undefined, comm: 'a,"b"' },
];

function render(format: 'table' | 'json' | 'jsonl' | 'csv', fn: (o: ReturnType<typeof createOutput>) => void): string {
  let out = '';
  fn(createOutput(format, (s) => (out += s)));
  return out;
}

test('tables align columns, numbers to the right, absent values as -', () => {
  const text = render('table', (o) => o.rows(columns, rows));
  assert.equal(text, 'pid  addr                comm\n  1  0xffff888000001000  init\n 42  -                   a,"b"\n');
});

test('JSON keeps only the schema columns and writes addresses as hex strings', () => {
  assert.deepEqual(JSON.parse(render('json', (o) => o.rows(columns, rows))), [
    { pid: 1, addr: '0xffff888000001000', comm: 'init' },
    { pid: 42, comm: 'a,"b"' },
  ]);
  assert.equal(render('jsonl', (o) => o.rows(columns, rows)).trim().split('\n').length, 2);
});

test('CSV quotes what needs quoting', () => {
  assert.equal(render('csv', (o) => o.rows(columns, rows)), 'pid,addr,comm\n1,0xffff888000001000,init\n42,-,"a,""b"""\n');
});

test('signed values such as phys_base print as -0x…', () => {
  assert.equal(render('table', (o) => o.record({ physBase: -0x19600000n })), 'physBase  -0x19600000\n');
  assert.equal(toJson({ physBase: -0x19600000n }), '{"physBase":"-0x19600000"}');
});
