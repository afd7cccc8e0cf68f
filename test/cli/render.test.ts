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

test('a table line ends at its last character: empty trailing cells and trailing spaces of a cell add nothing', () => {
  const cols: Column[] = [
    { key: 'name', kind: 'str' },
    { key: 'n', kind: 'int' },
    { key: 'module', kind: 'str' },
  ];
  const text = render('table', (o) => o.rows(cols, [{ name: 'a', n: 1, module: '' }, { name: 'bb  ', n: 22, module: 'ext4' }, { name: 'c ', n: undefined, module: '' }, { name: '', n: 3, module: '\u00a0' }]));
  assert.equal(text, 'name   n  module\na      1\nbb    22  ext4\nc      -\n       3\n');
});

test('JSON keeps only the schema columns, addresses beyond 2^53 as hex strings, missing values as null', () => {
  assert.deepEqual(JSON.parse(render('json', (o) => o.rows(columns, rows))), [
    { pid: 1, addr: '0xffff888000001000', comm: 'init' },
    { pid: 42, addr: null, comm: 'a,"b"' },
  ]);
  assert.equal(render('jsonl', (o) => o.rows(columns, rows)).trim().split('\n').length, 2);
});

test('CSV quotes what needs quoting', () => {
  assert.equal(render('csv', (o) => o.rows(columns, rows)), 'pid,addr,comm\n1,0xffff888000001000,init\n42,-,"a,""b"""\n');
});

test('signed values such as phys_base print as -0x…', () => {
  assert.equal(render('table', (o) => o.record({ physBase: -0x19600000n })), 'physBase  -0x19600000\n');
  assert.equal(toJson({ physBase: -0x19600000n }), '{"physBase":-425721856}');
  assert.equal(toJson({ physBase: -(1n << 60n) }), '{"physBase":"-0x1000000000000000"}');
});

// issue 10, bug 1: the table renderer spread every row into Math.max(...) and overflowed the stack.
test('a table of 300k rows renders (bounded stack), aligned like a small one', () => {
  const many = Array.from({ length: 300_000 }, (_, i) => ({ pid: i, addr: BigInt(i) * 0x1000n, comm: `c${i}` }));
  let chunks = 0;
  let text = '';
  createOutput('table', (s) => {
    chunks++;
    text += s;
  }).rows(columns, many);
  const lines = text.split('\n');
  assert.equal(lines.length, 300_002);
  assert.equal(lines[1], '     0  0x0         c0');
  assert.equal(lines[300_000], '299999  0x493df000  c299999');
  assert.ok(chunks < 1000, `output written in ${chunks} chunks, not one write per line`);
  // The machine formats stream too.
  assert.equal(JSON.parse(render('json', (o) => o.rows(columns, many))).length, 300_000);
});

// issue 10, bug 5: integers were hex strings in JSON and absent values {absent: …} objects.
test('JSON carries integers as numbers, the same values as the table and CSV, and absent values as null with a reason', () => {
  const cols: Column[] = [
    { key: 'inode', kind: 'int' },
    { key: 'pos', kind: 'int' },
    { key: 'startTime', kind: 'int' },
    { key: 'file', kind: 'hex' },
    { key: 'big', kind: 'int' },
    { key: 'device', kind: 'int' },
    { key: 'path', kind: 'str' },
  ];
  const row = {
    inode: 386n,
    pos: 0n,
    startTime: 488000000n,
    file: 0xffff888003a1c000n,
    big: 1n << 60n,
    device: { absent: 'not-applicable' },
    path: 'socket:[386]',
  };
  const json = JSON.parse(render('json', (o) => o.rows(cols, [row])))[0];
  assert.deepEqual(json, {
    inode: 386,
    pos: 0,
    startTime: 488000000,
    file: '0xffff888003a1c000',
    big: '1152921504606846976',
    device: null,
    path: 'socket:[386]',
    absent: { device: { kind: 'not-applicable' } },
  });
  const jsonl = JSON.parse(render('jsonl', (o) => o.rows(cols, [{ ...row, device: { absent: 'unreadable', reason: 'bad pointer' } }])));
  assert.deepEqual(jsonl.absent, { device: { kind: 'unreadable', reason: 'bad pointer' } });
  assert.equal(render('csv', (o) => o.rows(cols, [row])).split('\n')[1], '386,0,488000000,0xffff888003a1c000,1152921504606846976,-,socket:[386]');
  // A small address stays a number in JSON; the table shows the same value in hex.
  assert.deepEqual(JSON.parse(render('json', (o) => o.rows([{ key: 'a', kind: 'hex' }], [{ a: 0x1000n }]))), [{ a: 4096 }]);
});

// issue 10, bug 12 / readable output: profile's sources and timings printed as one JSON blob per line.
test('nested facts read as key.sub rows, a list of texts one per line; JSON keeps the nesting', () => {
  const facts = { release: '6.1', sources: { dtb: 'vmcoreinfo', types: 'btf:memory' }, steps: ['kallsyms 3 ms', 'btf 2 ms'] };
  assert.equal(
    render('table', (o) => o.record(facts)),
    'release        6.1\nsources.dtb    vmcoreinfo\nsources.types  btf:memory\nsteps          kallsyms 3 ms\n               btf 2 ms\n',
  );
  assert.deepEqual(JSON.parse(render('json', (o) => o.record(facts))), facts);
});

test('a float column with decimals prints that many digits in tables and CSV, and stays a number in JSON (kmsg times)', () => {
  const cols: Column[] = [{ key: 'time', kind: 'float', decimals: 6 }];
  const times = [{ time: 0 }, { time: 1.5 }, { time: 12.000042 }];
  assert.equal(render('table', (o) => o.rows(cols, times)), '     time\n 0.000000\n 1.500000\n12.000042\n');
  assert.equal(render('csv', (o) => o.rows(cols, times)), 'time\n0.000000\n1.500000\n12.000042\n');
  assert.deepEqual(JSON.parse(render('json', (o) => o.rows(cols, times))), times);
});

test("kmsg's time column asks for six decimals, as dmesg prints them", async () => {
  const kmsg = (await import('../../src/linux/plugins/kmsg.js')).default;
  assert.equal(kmsg.columns.find((c) => c.key === 'time')?.decimals, 6);
});

test('a JSON document with rows is written row by row exactly as record() writes the whole object', async () => {
  const { jsonRow } = await import('../../src/cli/render.js');
  const absentRow = { pid: 7, addr: { absent: 'unreadable', reason: 'fault at 0x1000' }, comm: 'x\ny' };
  for (const [head, list, tail] of [
    [{ plugin: 'pslist' }, [...rows, absentRow], { anomalies: { total: 1, counts: { fault: 1 }, items: [{ kind: 'fault', address: 0x1000n }] } }],
    [{ plugin: 'empty' }, [], { anomalies: { total: 0, counts: {}, items: [] } }],
    [{}, [rows[0]!], {}],
    [{ plugin: 'p', nested: { a: [1, 2] } }, rows, { validation: { validated: true } }],
  ] as const) {
    const whole = render('json', (o) => o.record({ ...head, rows: list.map((r) => jsonRow(r, columns)), ...tail }));
    const streamed = render('json', (o) => o.document(head, 'rows', columns, list, tail));
    assert.equal(streamed, whole);
    assert.deepEqual(Object.keys(JSON.parse(streamed)), [...Object.keys(head), 'rows', ...Object.keys(tail)]);
  }
  assert.throws(() => render('table', (o) => o.document({}, 'rows', columns, rows, {})), /writes JSON/);
});

test('a table of rows handed over as they come: widths from the first rows, the rest streamed with them, none gathered', async () => {
  const { TABLE_WIDTH_ROWS } = await import('../../src/cli/render.js');
  function* streamed(n: number, long: number, pad = 0) {
    for (let i = 0; i < n; i++) yield { pid: i, addr: BigInt(i), comm: i === long ? 'a-much-longer-comm' : `c${i % 10}`.padEnd(pad, '.') };
  }
  const lines = render('table', (o) => o.rows(columns, streamed(5000, 3000))).split('\n');
  assert.equal(lines.length, 5002);
  // The first 1000 rows set the widths (pid up to 999, addr up to 0x3e7); a later longer cell pushes its line right.
  assert.equal(lines[0], 'pid  addr   comm');
  assert.equal(lines[1], '  0  0x0    c0');
  assert.equal(lines[3001], '3000  0xbb8  a-much-longer-comm');
  assert.equal(lines[5000], '4999  0x1387  c9');
  // Up to TABLE_WIDTH_ROWS rows: exactly the table an array gives.
  const few = [...streamed(TABLE_WIDTH_ROWS, 7)];
  assert.equal(render('table', (o) => o.rows(columns, streamed(TABLE_WIDTH_ROWS, 7))), render('table', (o) => o.rows(columns, few)));
  // Lines of ~210 characters: the renderer's 64 KiB chunks hold ~310 of them, so a renderer that gathered
  // the rows would be thousands of rows ahead of what it wrote.
  let made = 0;
  let written = 0;
  let ahead = 0;
  function* counted() {
    for (const r of streamed(5000, -1, 200)) {
      made++;
      ahead = Math.max(ahead, made - written);
      yield r;
    }
  }
  createOutput('table', (s) => (written += s.split('\n').length - 1)).rows(columns, counted());
  assert.equal(written, 5001);
  assert.ok(ahead <= TABLE_WIDTH_ROWS + 1, `at most the first batch ahead of the output, saw ${ahead}`);
});

test('a streamed table stopped by a failed write closes the rows generator (its finally blocks run)', () => {
  let closed = false;
  function* rowsOf() {
    try {
      for (let i = 0; ; i++) yield { pid: i, addr: 0n, comm: 'x' };
    } finally {
      closed = true;
    }
  }
  let writes = 0;
  const out = createOutput('table', () => {
    if (++writes === 3) throw new Error('EPIPE');
  });
  assert.throws(() => out.rows(columns, rowsOf()), /EPIPE/);
  assert.equal(closed, true);
});
