/**
 * Output renderers shared by every command: an aligned table (default),
 * --json, --jsonl and --csv. Commands hand over typed rows plus a column
 * schema, or a record of facts; they never print directly.
 */
export type OutputFormat = 'table' | 'json' | 'jsonl' | 'csv';

import type { Column, ColumnKind } from '../linux/schema.js';
import { lineFunction } from './table-line.js';
export type { Column, ColumnKind } from '../linux/schema.js';

export type Cell = string | number | bigint | boolean | null | undefined | readonly unknown[];
export type Row = Record<string, Cell | unknown>;

export interface Output {
  readonly format: OutputFormat;
  /** Rows with a schema: a table, a JSON array, one JSON object per line, or CSV. */
  rows(columns: readonly Column[], rows: Iterable<Row>): void;
  /** A record of facts: key/value lines, or one JSON object. */
  record(facts: Record<string, unknown>): void;
  /**
   * JSON only: the record `{...head, [key]: rows as JSON rows, ...tail}`, written
   * as record() would write it, but one row at a time (no string of the whole
   * document, no array of every JSON row). A function as `tail` is called once the rows are written (rows
   * streamed from a plugin: their anomalies are known only then).
   */
  document(head: Record<string, unknown>, key: string, columns: readonly Column[], rows: Iterable<Row>, tail: Record<string, unknown> | (() => Record<string, unknown>)): void;
  /** Free text (table format only; ignored by machine formats unless forced). */
  text(line: string, force?: boolean): void;
}

/**
 * The JSON shape (README "JSON output"): integers are JSON numbers; an integer beyond 2^53 (kernel addresses,
 * 64-bit counters) cannot be a JSON number exactly and is a string instead, 0x-hex for addresses and facts,
 * decimal for int columns. Byte arrays are hex strings. An absent value is `null`, and the row carries an
 * `absent` object naming, per such column, the kind of absence and its reason.
 */
export function toJson(value: unknown, indent?: number): string {
  return JSON.stringify(value, jsonReplacer, indent);
}

/** 0x-prefixed hex; negative values (a signed phys_base) as -0x… */
function hexOf(v: number | bigint): string {
  return v < 0 ? `-0x${(-v).toString(16)}` : `0x${v.toString(16)}`;
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const isSafe = (v: bigint) => v <= MAX_SAFE && v >= -MAX_SAFE;

/** A bigint as JSON: a number when exact, else a string in the given base. */
function jsonInteger(v: bigint, base: 'hex' | 'dec'): number | string {
  if (isSafe(v)) return Number(v);
  return base === 'hex' ? hexOf(v) : v.toString();
}

function jsonReplacer(_key: string, v: unknown): unknown {
  if (typeof v === 'bigint') return jsonInteger(v, 'hex');
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex');
  if (v instanceof Map) return Object.fromEntries(v);
  if (isAbsent(v)) return null;
  return v;
}

/** A plugin's "no value" (linux/plugin.ts Absent), recognised by shape so every caller gets the same rendering. */
function isAbsent(v: unknown): v is { absent: string; reason?: string } {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && typeof (v as { absent?: unknown }).absent === 'string';
}

function cellText(v: unknown, kind: ColumnKind, decimals?: number): string {
  if (v === undefined || v === null || isAbsent(v)) return '-';
  if (kind === 'float' && decimals !== undefined && typeof v === 'number') return v.toFixed(decimals);
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

/** Output is gathered into chunks of about this many characters before each write (167k-row tables). */
const CHUNK = 64 * 1024;

export function createOutput(format: OutputFormat, write: (s: string) => void = (s) => process.stdout.write(s)): Output {
  let pending = '';
  const emit = (s: string) => {
    pending += s;
    if (pending.length >= CHUNK) flush();
  };
  const flush = () => {
    if (pending) write(pending);
    pending = '';
  };
  return {
    format,
    rows(columns, rows) {
      try {
        if (format === 'json') {
          // One element at a time: never one huge string or array of the whole output.
          let first = true;
          emit('[');
          for (const r of rows) {
            emit((first ? '\n  ' : ',\n  ') + toJson(jsonRow(r, columns), 2).replace(/\n/g, '\n  '));
            first = false;
          }
          emit(first ? ']\n' : '\n]\n');
        } else if (format === 'jsonl') {
          for (const r of rows) emit(toJson(jsonRow(r, columns)) + '\n');
        } else if (format === 'csv') {
          columns = columns.filter((c) => !c.jsonOnly);
          emit(columns.map((c) => csvEscape(c.key)).join(',') + '\n');
          for (const r of rows) emit(columns.map((c) => csvEscape(cellText(r[c.key], c.kind, c.decimals))).join(',') + '\n');
        } else {
          table(columns.filter((c) => !c.jsonOnly), rows, emit);
        }
      } finally {
        flush();
      }
    },
    record(facts) {
      try {
        if (format === 'json' || format === 'jsonl') {
          emit(toJson(facts, format === 'json' ? 2 : undefined) + '\n');
        } else if (format === 'csv') {
          emit('key,value\n');
          for (const [k, v] of Object.entries(facts)) emit(`${csvEscape(k)},${csvEscape(cellText(v, 'str'))}\n`);
        } else {
          const lines = factLines(facts, '');
          let width = 0;
          for (const [k] of lines) width = Math.max(width, k.length);
          for (const [k, v] of lines) emit(`${k.padEnd(width)}  ${v}\n`);
        }
      } finally {
        flush();
      }
    },
    document(head, key, columns, rows, tail) {
      if (format !== 'json') throw new Error(`document() writes JSON, not ${format}`);
      try {
        // JSON.stringify's own layout at indent 2: the head without its closing brace, the rows at depth 2,
        // the tail without its opening brace.
        const h = toJson(head, 2);
        emit((h === '{}' ? '{' : `${h.slice(0, -2)},`) + `\n  ${JSON.stringify(key)}: [`);
        let first = true;
        for (const r of rows) {
          emit((first ? '\n    ' : ',\n    ') + toJson(jsonRow(r, columns), 2).replace(/\n/g, '\n    '));
          first = false;
        }
        emit(first ? ']' : '\n  ]');
        const t = toJson(typeof tail === 'function' ? tail() : tail, 2);
        emit(t === '{}' ? '\n}\n' : `,${t.slice(1)}\n`);
      } finally {
        flush();
      }
    },
    text(line, force = false) {
      if (format === 'table' || force) write(line + '\n');
    },
  };
}

/** Facts as readable key/value lines: nested records as `key.sub`, a list of texts one per line. */
function factLines(facts: Record<string, unknown>, prefix: string): [string, string][] {
  const out: [string, string][] = [];
  for (const [k, v] of Object.entries(facts)) {
    if (v === undefined) continue;
    const key = prefix + k;
    if (isPlainRecord(v)) out.push(...factLines(v, `${key}.`));
    else if (Array.isArray(v) && v.length > 1 && v.every((x) => typeof x === 'string')) v.forEach((x, i) => out.push([i ? '' : key, x]));
    else out.push([key, cellText(v, typeof v === 'bigint' ? 'hex' : 'str')]);
  }
  return out;
}

function isPlainRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && Object.getPrototypeOf(v) === Object.prototype && !isAbsent(v);
}

/** Rows of a one-shot iterable whose cells set a table's column widths; the rest stream with those widths. */
export const TABLE_WIDTH_ROWS = 1000;

/**
 * An aligned table in bounded stack and memory. An array's column widths come from a first pass over all its
 * rows (a loop, never a spread into Math.max), the lines from a second. A one-shot iterable (rows streamed
 * from a plugin as it yields them) is not gathered: its first TABLE_WIDTH_ROWS rows set the widths, later
 * rows are written as they come with those widths (a longer cell pushes the rest of its line right).
 */
function table(columns: readonly Column[], rows: Iterable<Row>, emit: (s: string) => void): void {
  if (Array.isArray(rows)) {
    alignedTable(columns, rows, undefined, emit);
    return;
  }
  const it = rows[Symbol.iterator]();
  let ended = false;
  try {
    const head = take(it, TABLE_WIDTH_ROWS);
    alignedTable(columns, head.items, head.ended ? undefined : it, emit);
    ended = true;
  } finally {
    if (!ended) it.return?.(); // stopped by a failed write: the plugin's own finally blocks still run
  }
}

/** A column's cell text: the common kinds first (a listing formats every cell of 100k rows), cellText for the rest. */
function cellFormatter(c: Column): (v: unknown) => string {
  const { kind, decimals } = c;
  if (kind === 'hex') return (v) => (typeof v === 'bigint' && v >= 0n ? `0x${v.toString(16)}` : cellText(v, kind, decimals));
  if (kind === 'str') return (v) => (typeof v === 'string' ? v : cellText(v, kind, decimals));
  return (v) => cellText(v, kind, decimals);
}

/** The table lines: widths from `first`, then `first`'s rows and the rest of `more` (to its end) with those widths. */
function alignedTable(columns: readonly Column[], first: readonly Row[], more: Iterator<Row> | undefined, emit: (s: string) => void): void {
  const heads = columns.map((c) => c.title ?? c.key);
  const text = columns.map(cellFormatter);
  const widths = heads.map((h) => h.length);
  for (const r of first)
    columns.forEach((c, i) => {
      const n = text[i]!(r[c.key]).length;
      if (n > widths[i]!) widths[i] = n;
    });
  const laid = (key: (i: number) => string, cell: (i: number) => (v: unknown) => string) =>
    lineFunction(columns.map((c, i) => ({ key: key(i), text: cell(i), width: widths[i]!, right: c.kind === 'int' || c.kind === 'float' })));
  // The header laid out as the rows are, its titles by column position (two columns may read one key).
  emit(laid(String, () => String)({ ...heads }));
  const line = laid((i) => columns[i]!.key, (i) => text[i]!);
  for (const r of first) emit(line(r));
  if (more) for (let r = more.next(); !r.done; r = more.next()) emit(line(r.value));
}

/** Up to n items of an iterator, leaving it open for the rest (no for-of: its break would close it). */
function take<T>(it: Iterator<T>, n: number): { items: T[]; ended: boolean } {
  const items: T[] = [];
  while (items.length < n) {
    const r = it.next();
    if (r.done) return { items, ended: true };
    items.push(r.value);
  }
  return { items, ended: false };
}

/** A row as JSON: the schema's columns, integers by column kind, absent values null with their reasons beside. */
export function jsonRow(r: Row, columns: readonly Column[]): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  let absent: Record<string, { kind: string; reason?: string }> | undefined;
  for (const c of columns) {
    const v = r[c.key];
    if (isAbsent(v)) {
      o[c.key] = null;
      (absent ??= {})[c.key] = v.reason === undefined ? { kind: v.absent } : { kind: v.absent, reason: v.reason };
    } else if (typeof v === 'bigint') {
      o[c.key] = jsonInteger(v, c.kind === 'hex' ? 'hex' : 'dec');
    } else {
      o[c.key] = v === undefined ? null : v;
    }
  }
  if (absent) o['absent'] = absent;
  return o;
}
