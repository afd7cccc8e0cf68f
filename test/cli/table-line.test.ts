/**
 * The generated table line (cli/table-line.ts) against the plain definition of a table line: cells padded to
 * their widths (numbers to the right), two spaces apart, empty trailing cells dropped, white space at the end
 * trimmed, a longer cell pushing the rest right; and keys of any text read as the keys they are.
 */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { lineFunction, type LineColumn } from '../../src/cli/table-line.js';

/** The line as the renderer defined it before: pad every cell but the last non-empty one, then trim. */
function reference(cells: readonly string[], widths: readonly number[], right: readonly boolean[]): string {
  let end = cells.length - 1;
  while (end > 0 && cells[end]!.length === 0) end--;
  let s = '';
  for (let i = 0; i < end; i++) s += (right[i] ? cells[i]!.padStart(widths[i]!) : cells[i]!.padEnd(widths[i]!)) + '  ';
  s += right[end] ? cells[end]!.padStart(widths[end]!) : cells[end]!;
  return s.trimEnd() + '\n';
}

const str = (v: unknown) => (typeof v === 'string' ? v : String(v));

test('every combination of empty, short, exact and long cells, left and right, is laid out as defined', () => {
  const widths = [4, 3, 5, 2];
  const values = ['', 'a', 'abc', 'abcd', 'abcdefg', 'x ', ' \u00a0'];
  const keys = ['k0', 'k1', 'k2', 'k3'];
  for (const right of [[false, false, false, false], [true, false, true, false], [false, true, false, true]]) {
    const line = lineFunction(keys.map((key, i) => ({ key, text: str, width: widths[i]!, right: right[i]! })));
    for (let n = 0; n < values.length ** 4; n++) {
      const cells = keys.map((_, i) => values[Math.floor(n / values.length ** i) % values.length]!);
      const row = Object.fromEntries(keys.map((k, i) => [k, cells[i]]));
      assert.equal(line(row), reference(cells, widths, right), JSON.stringify(cells));
    }
  }
});

test('keys are read as they are, whatever characters they hold; widths must be whole numbers', () => {
  const keys = ['a"b', "c'd", 'e\\f', 'g\nh', '${x}', '__proto__x'];
  const columns: LineColumn[] = keys.map((key) => ({ key, text: str, width: 3, right: false }));
  const row = Object.fromEntries(keys.map((k, i) => [k, `v${i}`]));
  assert.equal(lineFunction(columns)(row), 'v0   v1   v2   v3   v4   v5\n');
  assert.throws(() => lineFunction([{ key: 'a', text: str, width: 1.5, right: false }]), RangeError);
  assert.throws(() => lineFunction([{ key: 'a', text: str, width: -1, right: false }]), RangeError);
});

test("each column's own text function formats its cell", () => {
  const line = lineFunction([
    { key: 'n', text: (v) => String(v), width: 5, right: true },
    { key: 'h', text: (v) => `0x${(v as bigint).toString(16)}`, width: 6, right: false },
  ]);
  assert.equal(line({ n: 42, h: 255n }), '   42  0xff\n');
});
