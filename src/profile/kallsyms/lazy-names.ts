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
import { badName, entryAt, type EntryBounds, isTypeLetter, type KallsymsAnomaly, KallsymsError, MAX_NAME_LENGTH, MAX_SYMBOLS, type Tokens } from './decode.js';

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

/**
 * Indexes `count` entries from `names[pos]` without expanding them. `names`
 * is kept (copy it first if it is a view of memory that may go away).
 */
export function indexNames(names: Uint8Array, pos: number, count: number, tokens: Tokens, markers?: ArrayLike<number>): IndexedNames {
  if (!Number.isInteger(count) || count < 0 || count > MAX_SYMBOLS)
    throw new KallsymsError('kallsyms_num_syms', undefined, `implausible symbol count ${count}`);
  const base = pos;
  const entries = new Uint32Array(count);
  const nameStarts = new Uint32Array(count + 1);
  const types = new Uint8Array(count);
  const firstChars = new Uint8Array(count);
  const entryOffsets = new Uint32Array(Math.ceil(count / 256));
  // The scan groups of the SymbolTable, made here where every length and first character passes by.
  const heads = new Int32Array(SCAN_BUCKETS).fill(-1);
  const chainNext = new Int32Array(count);
  const anomalies: KallsymsAnomaly[] = [];
  const tTable = tokens.table;
  const tStart = tokens.start;
  const tLen = tokens.length;
  const entry: EntryBounds = { p0: 0, p1: 0 };
  let nameEnd = 0;
  let i = 0;
  for (; i < count; i++) {
    if (!entryAt(names, pos, base, i, markers, anomalies, entryOffsets, entry)) break;
    const { p0, p1 } = entry;
    // One pass over the entry's tokens: the expanded length, and the byte at 1 (the name's first character,
    // after the type letter), from the token that covers position 1.
    let expanded = 0;
    let first = 0;
    for (let p = p0; p < p1 && expanded <= MAX_NAME_LENGTH; p++) {
      const t = names[p]!;
      const n = tLen[t]!;
      if (expanded <= 1 && expanded + n > 1) first = tTable[tStart[t]! + 1 - expanded]!;
      expanded += n;
    }
    const type = tTable[tStart[names[p0]!]!]!;
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
  const full = i === count;
  return new CompressedNames(
    names,
    tokens,
    full ? entries : entries.slice(0, i),
    full ? nameStarts : nameStarts.slice(0, i + 1),
    full ? types : types.slice(0, i),
    full ? firstChars : firstChars.slice(0, i),
    full ? entryOffsets : entryOffsets.slice(0, Math.ceil(i / 256)),
    pos,
    anomalies,
    full ? { heads, next: chainNext } : undefined,
  );
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
    readonly scanChains?: ScanChains,
  ) {}

  get count(): number {
    return this.entries.length;
  }

  truncated(n: number): IndexedNames {
    if (n >= this.count) return this;
    return new CompressedNames(this.bytes, this.tokens, this.entries.subarray(0, n), this.nameStarts.subarray(0, n + 1), this.types.subarray(0, n), this.firstChars.subarray(0, n), this.entryOffsets, this.end, this.anomalies);
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
    const out = new Uint8Array(this.nameStarts[n]!);
    for (let i = 0; i < n; i++) this.#expand(i, out, this.nameStarts[i]!);
    return { names: Buffer.from(out.buffer, out.byteOffset, out.length).toString('latin1'), nameBytes: out };
  }
}
