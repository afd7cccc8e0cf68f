/**
 * kallsyms names kept compressed: one cheap pass finds where each entry
 * starts, its type letter and its expanded length (so the SymbolTable knows
 * every name's place before any is decoded); a name is expanded only when
 * asked for, and a lookup by name compares tokens against it without
 * expanding the others. A cold start that looks up a few dozen symbols then
 * never pays for expanding and hashing ~100k names (decodeNames does that,
 * and stays for the pattern search and when every name is wanted).
 *
 * The checks are decodeNames's, in the same order, with the same anomalies:
 * an entry that is empty, runs past the buffer, expands past MAX_NAME_LENGTH
 * or does not start with a type letter ends the table there.
 */
import { type DeferredNames, SCAN_BUCKETS, scanBucket, type ScanChains } from '../symbols.js';
import { wasmAvailable } from '../../core/wasm.js';
import { badLength, badName, entryAt, type EntryBounds, isTypeLetter, type KallsymsAnomaly, KallsymsError, MAX_MARKER_ANOMALIES, MAX_NAME_LENGTH, MAX_SYMBOLS, markerMismatch, pastEnd, type Tokens } from './decode.js';
import { expandNamesWasm, indexEntriesWasm } from './names-wasm.js';

export interface IndexedNames extends DeferredNames {
  /** Type letter char code of each entry. */
  readonly types: Uint8Array;
  /** Offset (from the start position) of entries 0, 256, 512, …: what kallsyms_markers must say. */
  readonly entryOffsets: Uint32Array;
  /** Offset just past the last accepted entry. */
  readonly end: number;
  readonly anomalies: KallsymsAnomaly[];
  /** The first `n` entries only (n ≤ count), sharing these columns. */
  truncated(n: number): IndexedNames;
}

/** What runs indexNames's pass: a WebAssembly function where this Node has WebAssembly, else JavaScript. */
export type IndexEngine = 'wasm' | 'js';

/**
 * Indexes `count` entries from `names[pos]` without expanding them. `names` is copied (the caller may pass a
 * view of memory that goes away). Both engines give the same columns and anomalies.
 */
export function indexNames(names: Uint8Array, pos: number, count: number, tokens: Tokens, markers?: ArrayLike<number>, engine: IndexEngine = wasmAvailable() ? 'wasm' : 'js'): IndexedNames {
  if (!Number.isInteger(count) || count < 0 || count > MAX_SYMBOLS)
    throw new KallsymsError('kallsyms_num_syms', undefined, `implausible symbol count ${count}`);
  const tTable = tokens.table;
  const tStart = tokens.start;
  const tLen = tokens.length;
  // Per token: its first and second character (0 for a one-character token). A name's first character is
  // its first token's second (the first is the type letter), or, when that token is the type letter alone,
  // the next token's first: chosen by arithmetic, not a branch (see indexEntries).
  const firstOf = new Uint8Array(256);
  const secondOf = new Uint8Array(256);
  for (let t = 0; t < 256; t++) {
    if (tLen[t]! === 0) throw new KallsymsError('kallsyms_token_table', undefined, `token ${t} is empty`);
    firstOf[t] = tTable[tStart[t]!]!;
    secondOf[t] = tLen[t]! > 1 ? tTable[tStart[t]! + 1]! : 0;
  }
  const anomalies: KallsymsAnomaly[] = [];
  let columns: Columns;
  let kept: Uint8Array;
  let i: number;
  let end: number;
  const w = engine === 'wasm' ? indexEntriesWasm(names, pos, count, tLen, firstOf, secondOf, MAX_NAME_LENGTH) : undefined;
  if (w) {
    ({ names: kept, indexed: i, end } = w);
    columns = w;
    const at = end - pos;
    // The markers as entryAt checks them: every 256th entry up to the one the pass stopped at, that one included.
    if (markers !== undefined) {
      const last = w.stop === 'done' ? count - 1 : i;
      for (let e = 0; e <= last && e >>> 8 < markers.length; e += 256) {
        const offset = e === i ? at : w.entryOffsets[e >>> 8]!;
        if (markers[e >>> 8] !== offset && anomalies.length < MAX_MARKER_ANOMALIES) anomalies.push(markerMismatch(e, markers[e >>> 8]!, offset));
      }
    }
    if (w.stop === 'past-end') anomalies.push(pastEnd(i, at));
    else if (w.stop === 'bad-length') anomalies.push(badLength(i, at, w.length));
    else if (w.stop === 'bad-name') anomalies.push(badName(i, at, w.expanded > MAX_NAME_LENGTH));
  } else {
    kept = names.slice();
    columns = {
      entries: new Uint32Array(count),
      nameStarts: new Uint32Array(count + 1),
      types: new Uint8Array(count),
      firstChars: new Uint8Array(count),
      entryOffsets: new Uint32Array(Math.ceil(count / 256)),
      // The scan groups of the SymbolTable, made here where every length and first character passes by.
      heads: new Int32Array(SCAN_BUCKETS).fill(-1),
      chainNext: new Int32Array(count),
    };
    ({ indexed: i, end } = indexEntries(columns, kept, pos, count, tLen, firstOf, secondOf, markers, anomalies));
  }
  const { entries, nameStarts, types, firstChars, entryOffsets, heads, chainNext } = columns;
  const full = i === count;
  return new CompressedNames(
    kept,
    tokens,
    full ? entries : entries.slice(0, i),
    full ? nameStarts : nameStarts.slice(0, i + 1),
    full ? types : types.slice(0, i),
    full ? firstChars : firstChars.slice(0, i),
    full ? entryOffsets : entryOffsets.slice(0, Math.ceil(i / 256)),
    end,
    anomalies,
    engine,
    full ? { heads, next: chainNext } : undefined,
  );
}

/** The columns indexNames fills. */
interface Columns {
  readonly entries: Uint32Array;
  readonly nameStarts: Uint32Array;
  readonly types: Uint8Array;
  readonly firstChars: Uint8Array;
  readonly entryOffsets: Uint32Array;
  readonly heads: Int32Array;
  readonly chainNext: Int32Array;
}

/**
 * indexNames's pass over the entries from names[pos] in JavaScript: how many it indexed, and where they end.
 * The pass where Node has no WebAssembly (--jitless), and the reference the WebAssembly one
 * (names-wasm.ts) is tested against.
 */
function indexEntries(
  columns: Columns,
  names: Uint8Array,
  pos: number,
  count: number,
  tLen: Uint16Array,
  firstOf: Uint8Array,
  secondOf: Uint8Array,
  markers: ArrayLike<number> | undefined,
  anomalies: KallsymsAnomaly[],
): { indexed: number; end: number } {
  const { entries, nameStarts, types, firstChars, entryOffsets, heads, chainNext } = columns;
  const base = pos;
  const entry: EntryBounds = { p0: 0, p1: 0 };
  let nameEnd = 0;
  let i = 0;
  for (; i < count; i++) {
    if (!entryAt(names, pos, base, i, markers, anomalies, entryOffsets, entry)) break;
    const { p0, p1 } = entry;
    const t0 = names[p0]!;
    const n0 = tLen[t0]!;
    // (n0 - 2) >>> 31 is 1 exactly when the first token is one character (tokens are never empty). The byte
    // after it is the next token, or, in an entry of one token, a name too short to be kept (below).
    const first = secondOf[t0]! + firstOf[names[p0 + 1]! | 0]! * ((n0 - 2) >>> 31);
    let expanded = n0;
    for (let p = p0 + 1; p < p1; p++) expanded += tLen[names[p]!]!;
    const type = firstOf[t0]!;
    if (expanded > MAX_NAME_LENGTH || expanded < 2 || !isTypeLetter(type)) {
      anomalies.push(badName(i, pos - base, expanded > MAX_NAME_LENGTH));
      break;
    }
    entries[i] = p0;
    types[i] = type;
    firstChars[i] = first;
    const bucket = scanBucket(first, expanded - 1);
    chainNext[i] = heads[bucket]!;
    heads[bucket] = i;
    nameEnd += expanded - 1;
    nameStarts[i + 1] = nameEnd;
    pos = p1;
  }
  return { indexed: i, end: pos };
}

class CompressedNames implements IndexedNames {
  constructor(
    private readonly bytes: Uint8Array,
    private readonly tokens: Tokens,
    /** Position of each entry's first token byte (past its length header). */
    private readonly entries: Uint32Array,
    readonly nameStarts: Uint32Array,
    readonly types: Uint8Array,
    readonly firstChars: Uint8Array,
    readonly entryOffsets: Uint32Array,
    readonly end: number,
    readonly anomalies: KallsymsAnomaly[],
    /** Only for the whole table: a truncated one would point past its end (the SymbolTable scans it all). */
    /** Also expands every name in decodeAll. */
    private readonly engine: IndexEngine,
    readonly scanChains?: ScanChains,
  ) {}

  get count(): number {
    return this.entries.length;
  }

  truncated(n: number): IndexedNames {
    if (n >= this.count) return this;
    return new CompressedNames(this.bytes, this.tokens, this.entries.subarray(0, n), this.nameStarts.subarray(0, n + 1), this.types.subarray(0, n), this.firstChars.subarray(0, n), this.entryOffsets, this.end, this.anomalies, this.engine);
  }

  /** Expands entry i into out[at…], its type letter dropped; returns the end. */
  #expand(i: number, out: Uint8Array, at: number): number {
    const { table, start, length } = this.tokens;
    const b = this.bytes;
    let w = at;
    let skip = 1; // the type letter
    // The indexing pass summed the token lengths: `total` bytes are written exactly when the entry ends.
    const total = this.nameStarts[i + 1]! - this.nameStarts[i]!;
    for (let p = this.entries[i]!; w - at < total; p++) {
      const t = b[p]!;
      let s = start[t]!;
      const e = s + length[t]!;
      if (skip) {
        s++;
        skip = 0;
      }
      for (let k = s; k < e; k++) out[w++] = table[k]!;
    }
    return w;
  }

  nameAt(i: number): string {
    if (!Number.isInteger(i) || i < 0 || i >= this.count) throw new RangeError(`symbol index ${i} outside 0..${this.count - 1}`);
    const out = new Uint8Array(this.nameStarts[i + 1]! - this.nameStarts[i]!);
    this.#expand(i, out, 0);
    return Buffer.from(out.buffer, out.byteOffset, out.length).toString('latin1');
  }

  nameIs(i: number, name: string): boolean {
    if (!(i >= 0 && i < this.count)) return false;
    const total = this.nameStarts[i + 1]! - this.nameStarts[i]!;
    if (total !== name.length) return false;
    const { table, start, length } = this.tokens;
    const b = this.bytes;
    let c = -1; // position in `name`; -1 is the type letter
    for (let p = this.entries[i]!; c < total; p++) {
      const t = b[p]!;
      const e = start[t]! + length[t]!;
      for (let k = start[t]!; k < e; k++, c++) if (c >= 0 && table[k] !== name.charCodeAt(c)) return false;
    }
    return true;
  }

  /** Every name expanded; no hashes (a listing that decodes all names seldom builds the name index, which hashes them then). */
  decodeAll(): { names: string; nameBytes: Uint8Array } {
    const n = this.count;
    let out: Uint8Array;
    const expanded = this.engine === 'wasm' ? expandNamesWasm(this.bytes, this.entries, this.nameStarts, n, this.tokens) : undefined;
    if (expanded) out = expanded;
    else {
      out = new Uint8Array(this.nameStarts[n]!);
      for (let i = 0; i < n; i++) this.#expand(i, out, this.nameStarts[i]!);
    }
    return { names: Buffer.from(out.buffer, out.byteOffset, out.length).toString('latin1'), nameBytes: out };
  }
}
