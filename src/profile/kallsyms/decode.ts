/**
 * Decoding of the kernel's compressed symbol table (scripts/kallsyms output)
 * once its parts are in hand as bytes. Pure functions: no memory access.
 *
 * Format facts (kernel/kallsyms.c, scripts/kallsyms.c):
 * - kallsyms_names: one entry per symbol: a length byte, then that many token
 *   indices. Since 6.1 ("kallsyms: support big kernel symbols") a length with
 *   bit 7 set takes a second byte: len = (b0 & 0x7f) | (b1 << 7). Older
 *   kernels never emit a length >= 0x80, so one rule reads both.
 * - kallsyms_token_table: 256 NUL-terminated strings; kallsyms_token_index:
 *   256 u16 offsets of them. A name expands by concatenating its tokens; the
 *   first expanded character is the nm type letter.
 * - kallsyms_markers: u32 offset into names of every 256th entry.
 * - Addresses: `kallsyms_addresses` (u64, absolute), or s32 `kallsyms_offsets`
 *   plus u64 `kallsyms_relative_base`, read as unsigned offsets from the base
 *   (relative) or, with CONFIG_KALLSYMS_ABSOLUTE_PERCPU, as
 *   `offset >= 0 ? offset : relative_base - 1 - offset`.
 */
import { ProfileError } from '../../core/errors.js';
import type { SymbolColumns } from '../symbols.js';

export type KallsymsAddressing = 'absolute-percpu' | 'relative' | 'absolute';

/** Longest expanded name accepted (KSYM_NAME_LEN is 512 since 6.1, 128 before). */
export const MAX_NAME_LENGTH = 1024;
/** Largest symbol count accepted (real kernels: 94k–170k). */
export const MAX_SYMBOLS = 4_000_000;

/** A corrupt or implausible kallsyms table: names the table and where in it. */
export class KallsymsError extends ProfileError {
  readonly table: string;
  /** Where: a guest-virtual address (bigint) or an offset in a searched blob (number). */
  readonly where: bigint | number | undefined;
  constructor(table: string, where: bigint | number | undefined, message: string, hint?: string) {
    const at = where === undefined ? '' : typeof where === 'bigint' ? ` at 0x${where.toString(16)}` : ` at blob offset 0x${where.toString(16)}`;
    super(`${table}${at}: ${message}`, hint === undefined ? {} : { hint });
    this.table = table;
    this.where = where;
  }
}

/** Something odd that did not stop decoding (counted and reported with the result). */
export interface KallsymsAnomaly {
  readonly table: string;
  readonly index?: number;
  readonly reason: string;
}

/** Token expansions: start and length of each of the 256 tokens inside `table`. */
export interface Tokens {
  readonly table: Uint8Array;
  readonly start: Uint32Array;
  readonly length: Uint16Array;
}

/**
 * Checks kallsyms_token_index (256 u16) against kallsyms_token_table and
 * returns the token spans. `table` may extend past the real table's end.
 */
export function parseTokens(table: Uint8Array, index: Uint16Array | readonly number[], where?: { table?: bigint | number; index?: bigint | number }): Tokens {
  if (index.length !== 256) throw new KallsymsError('kallsyms_token_index', where?.index, `has ${index.length} entries, expected 256`);
  if (index[0] !== 0) throw new KallsymsError('kallsyms_token_index', where?.index, `first entry is ${index[0]}, expected 0`);
  const start = new Uint32Array(256);
  const length = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    const s = index[i]!;
    if (i > 0 && s <= index[i - 1]!)
      throw new KallsymsError('kallsyms_token_index', where?.index, `entry ${i} (${s}) does not increase`);
    let e = s;
    const limit = Math.min(table.length, s + MAX_NAME_LENGTH);
    while (e < limit && table[e] !== 0) e++;
    if (e >= limit) throw new KallsymsError('kallsyms_token_table', where?.table, `token ${i} at +${s} has no terminating NUL`);
    if (e === s) throw new KallsymsError('kallsyms_token_table', where?.table, `token ${i} at +${s} is empty`);
    if (i < 255 && e + 1 !== index[i + 1])
      throw new KallsymsError('kallsyms_token_table', where?.table, `token ${i} ends at +${e + 1} but the index says +${index[i + 1]}`);
    start[i] = s;
    length[i] = e - s;
  }
  return { table, start, length };
}

/** Length of the token table the index describes (through the last token's NUL). */
export function tokenTableLength(tokens: Tokens): number {
  return tokens.start[255]! + tokens.length[255]! + 1;
}

/** One names entry's header: payload length and header size; undefined if it runs past `end`. */
export function entryHeader(names: Uint8Array, pos: number, end: number): { len: number; head: number } | undefined {
  if (pos >= end) return undefined;
  const b0 = names[pos]!;
  if ((b0 & 0x80) === 0) return { len: b0, head: 1 };
  if (pos + 1 >= end) return undefined;
  return { len: (b0 & 0x7f) | (names[pos + 1]! << 7), head: 2 };
}

/**
 * Walks `count` entries from `pos` without expanding them; returns the end
 * offset, or -1 if an entry is empty or runs past `end`. Checks markers
 * (offsets relative to `pos`) when given.
 */
export function walkNames(names: Uint8Array, pos: number, end: number, count: number, markers?: ArrayLike<number>): number {
  const base = pos;
  for (let i = 0; i < count; i++) {
    if (markers && (i & 0xff) === 0 && markers[i >>> 8] !== pos - base) return -1;
    const h = entryHeader(names, pos, end);
    if (!h || h.len === 0) return -1;
    pos += h.head + h.len;
    if (pos > end) return -1;
  }
  return pos;
}

export interface DecodedNames {
  /** Names without the type letter, concatenated. */
  readonly names: string;
  /** The same names as Latin-1 bytes (lets SymbolTable hash bytes instead of chars). */
  readonly nameBytes: Uint8Array;
  readonly nameStarts: Uint32Array;
  readonly types: Uint8Array;
  /** Offset (from the start position) of entries 0, 256, 512, …: what kallsyms_markers must say. */
  readonly entryOffsets: Uint32Array;
  /** FNV-1a of each name (symbols.ts hashBytes), computed while the bytes are hot: the name index needs no second pass. */
  readonly hashes: Uint32Array;
  /** Entries decoded (less than asked when the table is corrupt). */
  readonly count: number;
  /** Offset just past the last decoded entry. */
  readonly end: number;
  readonly anomalies: KallsymsAnomaly[];
}

export function isTypeLetter(c: number): boolean {
  return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
}

/** Where one kallsyms_names entry's token bytes lie: names[p0, p1). */
export interface EntryBounds {
  p0: number;
  p1: number;
}

/**
 * The framing every walk of kallsyms_names checks the same way: entry `i` at
 * `pos` (`base` is the table's start) against the markers, the end of the
 * buffer and its one- or two-byte length. Fills `out` (no allocation in the
 * hot loop) and records entry offsets every 256; false, with the anomaly,
 * when the table ends here.
 */
export function entryAt(
  names: Uint8Array,
  pos: number,
  base: number,
  i: number,
  markers: ArrayLike<number> | undefined,
  anomalies: KallsymsAnomaly[],
  entryOffsets: Uint32Array,
  out: EntryBounds,
): boolean {
  const end = names.length;
  if (markers !== undefined && (i & 0xff) === 0 && i >>> 8 < markers.length && markers[i >>> 8] !== pos - base) {
    if (anomalies.length < MAX_MARKER_ANOMALIES) anomalies.push(markerMismatch(i, markers[i >>> 8]!, pos - base));
  }
  if (pos >= end) {
    anomalies.push(pastEnd(i, pos - base));
    return false;
  }
  if ((i & 0xff) === 0) entryOffsets[i >>> 8] = pos - base;
  let len = names[pos]!;
  let head = 1;
  if (len & 0x80) {
    if (pos + 1 >= end) {
      anomalies.push(pastEnd(i, pos - base));
      return false;
    }
    len = (len & 0x7f) | (names[pos + 1]! << 7);
    head = 2;
  }
  out.p0 = pos + head;
  out.p1 = out.p0 + len;
  if (len === 0 || out.p1 > end) {
    anomalies.push(badLength(i, pos - base, len));
    return false;
  }
  return true;
}

/** Marker mismatches reported per table (the rest of a shifted table would repeat them). */
export const MAX_MARKER_ANOMALIES = 16;

/** The anomaly of entry i (a multiple of 256) found at +at where its kallsyms_markers entry says +marker. */
export function markerMismatch(i: number, marker: number, at: number): KallsymsAnomaly {
  return { table: 'kallsyms_markers', index: i >>> 8, reason: `marker says +${marker}, entry ${i} is at +${at}` };
}

/** The anomaly of entry i, at +at, whose header runs past the end of the table. */
export function pastEnd(i: number, at: number): KallsymsAnomaly {
  return { table: 'kallsyms_names', index: i, reason: `entry ${i} at +${at} runs past the end of the table` };
}

/** The anomaly of entry i, at +at, whose length is 0 or runs past the end of the table. */
export function badLength(i: number, at: number, len: number): KallsymsAnomaly {
  return { table: 'kallsyms_names', index: i, reason: `entry ${i} at +${at} has bad length ${len}` };
}

/** The anomaly of an entry that expands too far (`tooLong`) or has no type letter and name. */
export function badName(i: number, at: number, tooLong: boolean): KallsymsAnomaly {
  return {
    table: 'kallsyms_names',
    index: i,
    reason: tooLong ? `entry ${i} at +${at} expands past ${MAX_NAME_LENGTH} bytes` : `entry ${i} at +${at} does not start with a type letter and a name`,
  };
}

/**
 * Expands `count` names starting at `names[pos]`. Stops at the first entry
 * that is empty, runs past the buffer, expands past MAX_NAME_LENGTH or does
 * not start with a type letter; what came before is returned, with an anomaly.
 *
 * Hot loop (170k names): each name is expanded straight into the output one
 * byte before its final place, so its type letter lands on the previous
 * name's last byte, which is saved and put back. No per-name allocation.
 */
export function decodeNames(names: Uint8Array, pos: number, count: number, tokens: Tokens, markers?: ArrayLike<number>): DecodedNames {
  if (!Number.isInteger(count) || count < 0 || count > MAX_SYMBOLS)
    throw new KallsymsError('kallsyms_num_syms', undefined, `implausible symbol count ${count}`);
  const end = names.length;
  const base = pos;
  // out[0] is scratch for the first name's type letter; names start at out[1].
  // Sized for typical names; grows when needed, so a hostile count cannot force a huge allocation.
  let out = new Uint8Array(4096 + Math.min(count * 32, Math.max(0, end - pos) * 4, 64 << 20));
  let outLen = 1;
  const nameStarts = new Uint32Array(count + 1);
  const types = new Uint8Array(count);
  const hashes = new Uint32Array(count);
  const entryOffsets = new Uint32Array(Math.ceil(count / 256));
  const anomalies: KallsymsAnomaly[] = [];
  const tTable = tokens.table;
  const tStart = tokens.start;
  const tLen = tokens.length;
  const entry: EntryBounds = { p0: 0, p1: 0 };
  let i = 0;
  for (; i < count; i++) {
    if (!entryAt(names, pos, base, i, markers, anomalies, entryOffsets, entry)) break;
    const { p0, p1 } = entry;
    if (outLen + 2 * MAX_NAME_LENGTH + 2 > out.length) {
      const bigger = new Uint8Array(out.length * 2 + 2 * MAX_NAME_LENGTH);
      bigger.set(out.subarray(0, outLen));
      out = bigger;
    }
    const at = outLen - 1;
    const saved = out[at]!;
    let w = at;
    const limit = at + MAX_NAME_LENGTH;
    let p = p0;
    for (; p < p1 && w <= limit; p++) {
      const t = names[p]!;
      const s = tStart[t]!;
      const e = s + tLen[t]!;
      for (let k = s; k < e; k++) out[w++] = tTable[k]!;
    }
    const type = out[at]!;
    out[at] = saved;
    if (p < p1 || w > limit || w - at < 2 || !isTypeLetter(type)) {
      anomalies.push(badName(i, pos - base, p < p1 || w > limit));
      break;
    }
    types[i] = type;
    let h = 0x811c9dc5;
    for (let k = at + 1; k < w; k++) h = Math.imul(h ^ out[k]!, 0x01000193);
    hashes[i] = h >>> 0;
    outLen = w;
    nameStarts[i + 1] = outLen - 1;
    pos = p1;
  }
  const nameBytes = out.slice(1, outLen);
  const text = Buffer.from(nameBytes.buffer, nameBytes.byteOffset, nameBytes.length).toString('latin1');
  return {
    names: text,
    nameBytes,
    nameStarts: i === count ? nameStarts : nameStarts.slice(0, i + 1),
    types: i === count ? types : types.slice(0, i),
    hashes: i === count ? hashes : hashes.slice(0, i),
    entryOffsets: i === count ? entryOffsets : entryOffsets.slice(0, Math.ceil(i / 256)),
    count: i,
    end: pos,
    anomalies,
  };
}

const LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;
const TWO32 = 4294967296;

/**
 * The address column, from `kallsyms_offsets` + base or from
 * `kallsyms_addresses`. On little-endian hosts the 64-bit values are written
 * as two u32 halves computed in doubles (exact below 2^53), which avoids one
 * BigInt per symbol.
 */
export function decodeAddresses(raw: Uint8Array, count: number, addressing: KallsymsAddressing, relativeBase: bigint): BigUint64Array {
  const need = count * (addressing === 'absolute' ? 8 : 4);
  if (raw.length < need)
    throw new KallsymsError(addressing === 'absolute' ? 'kallsyms_addresses' : 'kallsyms_offsets', undefined, `holds ${raw.length} bytes, ${need} needed for ${count} symbols`);
  const dv = new DataView(raw.buffer, raw.byteOffset, need);
  const out = new BigUint64Array(count);
  if (addressing === 'absolute') {
    if (LITTLE_ENDIAN) new Uint8Array(out.buffer).set(raw.subarray(0, need));
    else for (let i = 0; i < count; i++) out[i] = dv.getBigUint64(i * 8, true);
    return out;
  }
  if (!LITTLE_ENDIAN) {
    const below = relativeBase - 1n;
    for (let i = 0; i < count; i++) {
      if (addressing === 'relative') out[i] = BigInt.asUintN(64, relativeBase + BigInt(dv.getUint32(i * 4, true)));
      else {
        const off = dv.getInt32(i * 4, true);
        out[i] = off >= 0 ? BigInt(off) : BigInt.asUintN(64, below - BigInt(off));
      }
    }
    return out;
  }
  const base = BigInt.asUintN(64, relativeBase);
  const baseHi = Number(base >> 32n);
  const baseLo = Number(base & 0xffffffffn);
  const halves = new Uint32Array(out.buffer);
  const percpu = addressing === 'absolute-percpu';
  for (let i = 0; i < count; i++) {
    let delta: number;
    if (percpu) {
      const off = dv.getInt32(i * 4, true);
      if (off >= 0) {
        halves[2 * i] = off;
        halves[2 * i + 1] = 0;
        continue;
      }
      delta = -1 - off; // relative_base - 1 - offset
    } else delta = dv.getUint32(i * 4, true);
    const v = baseLo + delta; // < 2^33: exact
    const carry = v >= TWO32 ? 1 : 0;
    halves[2 * i] = v - carry * TWO32;
    halves[2 * i + 1] = (baseHi + carry) >>> 0;
  }
  return out;
}

/** How many neighbours go down in address (a sorted table has none). */
export function countInversions(addresses: BigUint64Array): number {
  let n = 0;
  if (LITTLE_ENDIAN) {
    const h = new Uint32Array(addresses.buffer, addresses.byteOffset, addresses.length * 2);
    for (let i = 1; i < addresses.length; i++) {
      const hi = h[2 * i + 1]!;
      const phi = h[2 * i - 1]!;
      if (hi < phi || (hi === phi && h[2 * i]! < h[2 * i - 2]!)) n++;
    }
    return n;
  }
  for (let i = 1; i < addresses.length; i++) if (addresses[i]! < addresses[i - 1]!) n++;
  return n;
}

/** Index of the first symbol named `name` (text type), or -1. Scans the columns without building a table. */
export function findName(names: DecodedNames, name: string): number {
  let from = 0;
  for (;;) {
    const at = names.names.indexOf(name, from);
    if (at < 0) return -1;
    // Binary-search the entry that starts at `at` and check it ends there too.
    const starts = names.nameStarts;
    let lo = 0;
    let hi = names.count - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (starts[mid]! < at) lo = mid + 1;
      else if (starts[mid]! > at) hi = mid - 1;
      else {
        // Several empty names cannot exist (they are rejected), so `mid` is the entry.
        if (starts[mid + 1]! === at + name.length) return mid;
        break;
      }
    }
    from = at + 1;
  }
}

/** Assembles symbol columns from decoded names and addresses (truncated to the shorter). */
export function toColumns(names: DecodedNames, addresses: BigUint64Array): SymbolColumns {
  const n = Math.min(names.count, addresses.length);
  const cut = names.nameStarts[n]!;
  return {
    names: n === names.count ? names.names : names.names.slice(0, cut),
    nameBytes: n === names.count ? names.nameBytes : names.nameBytes.subarray(0, cut),
    nameStarts: n === names.count ? names.nameStarts : names.nameStarts.slice(0, n + 1),
    addresses: n === addresses.length ? addresses : addresses.slice(0, n),
    types: n === names.count ? names.types : names.types.slice(0, n),
    hashes: n === names.count ? names.hashes : names.hashes.slice(0, n),
  };
}
