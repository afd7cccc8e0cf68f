/** Shared shapes and helpers for benchmark suites: a table per suite, printed and written as JSON. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createOutput } from '../cli/render.js';

export interface BenchTable {
  readonly name: string;
  readonly description: string;
  readonly columns: readonly string[];
  readonly rows: readonly Record<string, unknown>[];
}

export function median(xs: readonly number[]): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function printTable(t: BenchTable): void {
  const out = createOutput('table');
  out.text(`\n== ${t.name}: ${t.description}`);
  out.rows(
    t.columns.map((key) => ({ key, kind: 'str' as const })),
    // A cell that was not measured (undefined, NaN) stays empty.
    t.rows.map((r) => Object.fromEntries(t.columns.map((c) => [c, r[c] === undefined || (typeof r[c] === 'number' && !Number.isFinite(r[c])) ? undefined : typeof r[c] === 'object' ? JSON.stringify(r[c]) : String(r[c])]))),
  );
}

export function writeJson(dir: string, t: BenchTable, meta: Record<string, unknown>): string {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${t.name}.json`);
  writeFileSync(path, JSON.stringify({ ...meta, ...t }, (_k, v) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v), 2) + '\n');
  return path;
}
