/**
 * Output renderers shared by every command: an aligned table (default),
 * --json, --jsonl and --csv. Commands hand over typed rows plus a column
 * schema, or a record of facts; they never print directly.
 */
export type OutputFormat = 'table' | 'json' | 'jsonl' | 'csv';

import type { Column, ColumnKind } from '../linux/schema.js';
export type { Column, ColumnKind } from '../linux/schema.js';

export type Cell = string | number | bigint | boolean | null | undefined | readonly unknown[];
export type Row = Record<string, Cell | unknown>;

export interface Output {
  readonly format: OutputFormat;
  /** Rows with a schema: a table, a JSON array, one JSON object per line, or CSV. */
  rows(columns: readonly Column[], rows: Iterable<Row>): void;
  /** A record of facts: key/value lines, or one JSON object. */
  record(facts: Record<string, unknown>): void;
  /** Free text (table format only; ignored by machine formats unless forced). */
  text(line: string, force?: boolean): void;
}

/** JSON.stringify that writes bigints as 0x-hex strings (addresses) and Uint8Arrays as hex. */
export function toJson(value: unknown, indent?: number): string {
  return JSON.stringify(value, jsonReplacer, indent);
}

/** 0x-prefixed hex; negative values (a signed phys_base) as -0x… */
function hexOf(v: number | bigint): string {
  return v < 0 ? `-0x${(-v).toString(16)}` : `0x${v.toString(16)}`;
}

function jsonReplacer(_key: string, v: unknown): unknown {
  if (typeof v === 'bigint') return hexOf(v);
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex');
  if (v instanceof Map) return Object.fromEntries(v);
  return v;
}

function cellText(v: unknown, kind: ColumnKind): string {
  if (v === undefined || v === null) return '-';
  if (kind === 'hex' && (typeof v === 'number' || typeof v === 'bigint')) return hexOf(v);
  if (typeof v === 'bigint') return v.toString();
  if (Array.isArray(v)) return v.map((x) => cellText(x, kind)).join(' ');
  if (v instanceof Uint8Array) return Buffer.from(v).toString('hex');
  if (typeof v === 'object') return toJson(v);
  return String(v);
}

function csvEscape(s: string): string {
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function createOutput(format: OutputFormat, write: (s: string) => void = (s) => process.stdout.write(s)): Output {
  return {
    format,
    rows(columns, rows) {
      if (format === 'json') {
        const all = [...rows].map((r) => pick(r, columns));
        write(toJson(all, 2) + '\n');
      } else if (format === 'jsonl') {
        for (const r of rows) write(toJson(pick(r, columns)) + '\n');
      } else if (format === 'csv') {
        write(columns.map((c) => csvEscape(c.key)).join(',') + '\n');
        for (const r of rows) write(columns.map((c) => csvEscape(cellText(r[c.key], c.kind))).join(',') + '\n');
      } else {
        const cells = [...rows].map((r) => columns.map((c) => cellText(r[c.key], c.kind)));
        const heads = columns.map((c) => c.title ?? c.key);
        const widths = heads.map((h, i) => Math.max(h.length, ...cells.map((row) => row[i]!.length)));
        const numeric = columns.map((c) => c.kind === 'int' || c.kind === 'float');
        const line = (vals: string[]) =>
          vals
            .map((v, i) => (i === vals.length - 1 && !numeric[i] ? v : numeric[i] ? v.padStart(widths[i]!) : v.padEnd(widths[i]!)))
            .join('  ')
            .trimEnd() + '\n';
        write(line(heads));
        for (const row of cells) write(line(row));
      }
    },
    record(facts) {
      if (format === 'json' || format === 'jsonl') {
        write(toJson(facts, format === 'json' ? 2 : undefined) + '\n');
      } else if (format === 'csv') {
        write('key,value\n');
        for (const [k, v] of Object.entries(facts)) write(`${csvEscape(k)},${csvEscape(cellText(v, 'str'))}\n`);
      } else {
        const width = Math.max(0, ...Object.keys(facts).map((k) => k.length));
        for (const [k, v] of Object.entries(facts)) {
          if (v === undefined) continue;
          const kind: ColumnKind = typeof v === 'bigint' ? 'hex' : 'str';
          write(`${k.padEnd(width)}  ${cellText(v, kind)}\n`);
        }
      }
    },
    text(line, force = false) {
      if (format === 'table' || force) write(line + '\n');
    },
  };
}

function pick(r: Row, columns: readonly Column[]): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (const c of columns) o[c.key] = r[c.key];
  return o;
}
