/**
 * The two passes over every kallsyms name as WebAssembly functions (core/wasm.ts says why: ~1.5M token
 * bytes, the largest loops of a cold start), each beside the JavaScript it stands for in lazy-names.ts.
 * Tests run both engines on the same tables, corrupt ones included, and compare every column and name.
 *
 * - index: entry by entry what indexEntries does, into columns in its own memory, stopping where that
 *   function stops and saying why; the caller makes the same anomaly of it and cross-checks
 *   kallsyms_markers from the entry offsets the pass records.
 * - expand: every indexed name expanded into one buffer, as CompressedNames.decodeAll does.
 */
import { type CompiledModule, FunctionBody, instantiate, type WasmFunction, wasmMemory, wasmPages } from '../../core/wasm.js';
import { SCAN_BUCKETS } from '../symbols.js';

/** Why the pass ended: every entry indexed, or the entry at `indexed` runs past the table, has a bad length, or a bad name. */
export type IndexStop = 'done' | 'past-end' | 'bad-length' | 'bad-name';
const STOPS: readonly IndexStop[] = ['done', 'past-end', 'bad-length', 'bad-name'];

export interface WasmIndex {
  /** Entries indexed; `end` is the position in `names` just past them (where the stopping entry starts). */
  readonly indexed: number;
  readonly end: number;
  readonly stop: IndexStop;
  /** The stopping entry's length (bad-length) and expanded length (bad-name). */
  readonly length: number;
  readonly expanded: number;
  /** The names, copied into the pass's memory (views of it, as are the columns). */
  readonly names: Uint8Array;
  readonly entries: Uint32Array;
  readonly nameStarts: Uint32Array;
  readonly types: Uint8Array;
  readonly firstChars: Uint8Array;
  readonly entryOffsets: Uint32Array;
  readonly heads: Int32Array;
  readonly chainNext: Int32Array;
}

// Parameters, then locals, by number.
const [NAMES, START, END, COUNT, TLEN, FIRST_OF, SECOND_OF, ENTRIES, STARTS, TYPES, FIRSTS, OFFS, HEADS, NEXT, OUT, MAX_LEN] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];
const PARAMS = 16;
const [I, POS, LEN, P0, P1, T0, N0, EXPANDED, FIRST, P, TYPE, BUCKET, NAME_END, STATUS] = [16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29];
const LOCALS = 14;

/** The address of element `index` (a local) of the u32 column whose address is in local `column`. */
function word(f: FunctionBody, column: number, index: number): FunctionBody {
  return f.get(column).get(index).const(2).shl().add();
}

function indexBody(): FunctionBody {
  const f = new FunctionBody();
  f.get(START).set(POS);
  f.block(); // done
  f.loop(); // one entry per turn; inside it, depth 1 is `done`
  // status 0 (done) when every entry is indexed
  f.get(I).get(COUNT).geU().brIf(1);
  // entryAt: past the end (status 1)
  f.const(1).set(STATUS);
  f.get(POS).get(END).geU().brIf(1);
  // every 256th entry's offset from the start
  f.get(I).const(0xff).and().eqz().if();
  f.get(OFFS).get(I).const(8).shrU().const(2).shl().add().get(POS).get(START).sub().store();
  f.end();
  // the length: one byte, or two when bit 7 is set (a second byte past the end is past the end too)
  f.get(POS).load8().set(LEN);
  f.get(POS).const(1).add().set(P0);
  f.get(LEN).const(0x80).and().if(); // depth 2 is `done`
  f.get(P0).get(END).geU().brIf(2);
  f.get(LEN).const(0x7f).and().get(P0).load8().const(7).shl().or().set(LEN);
  f.get(POS).const(2).add().set(P0);
  f.end();
  f.get(P0).get(LEN).add().set(P1);
  // a bad length (status 2): empty, or past the end
  f.const(2).set(STATUS);
  f.get(LEN).eqz().get(P1).get(END).gtU().or().brIf(1);
  // the first token: the type letter and the name's first character (its second, or the next token's first)
  f.get(P0).load8().set(T0);
  word(f, TLEN, T0).load().set(N0);
  f.get(SECOND_OF).get(T0).add().load8();
  f.get(FIRST_OF).get(P0).load8(1).add().load8();
  f.get(N0).const(2).sub().const(31).shrU();
  f.mul().add().set(FIRST);
  // the expanded length: every token's length summed
  f.get(N0).set(EXPANDED);
  f.get(P0).const(1).add().set(P);
  f.block();
  f.loop();
  f.get(P).get(P1).geU().brIf(1);
  f.get(EXPANDED);
  f.get(TLEN).get(P).load8().const(2).shl().add().load();
  f.add().set(EXPANDED);
  f.get(P).const(1).add().set(P);
  f.br(0);
  f.end();
  f.end();
  // a bad name (status 3): too long, too short, or no type letter ((c | 0x20) - 'a' below 26: A-Z, a-z)
  f.get(FIRST_OF).get(T0).add().load8().set(TYPE);
  f.const(3).set(STATUS);
  f.get(EXPANDED).get(MAX_LEN).gtU();
  f.get(EXPANDED).const(2).ltU().or();
  f.get(TYPE).const(0x20).or().const(0x61).sub().const(26).geU().or();
  f.brIf(1);
  // the columns
  word(f, ENTRIES, I).get(P0).get(NAMES).sub().store();
  f.get(TYPES).get(I).add().get(TYPE).store8();
  f.get(FIRSTS).get(I).add().get(FIRST).store8();
  // the scan chain of (first character, length): symbols.ts scanBucket, ((c & 0xff) << 6) | (length & 63)
  f.get(FIRST).const(0xff).and().const(6).shl();
  f.get(EXPANDED).const(1).sub().const(63).and().or();
  f.const(2).shl().get(HEADS).add().set(BUCKET);
  word(f, NEXT, I).get(BUCKET).load().store();
  f.get(BUCKET).get(I).store();
  f.get(NAME_END).get(EXPANDED).add().const(1).sub().set(NAME_END);
  word(f, STARTS, I).get(NAME_END).store(4);
  f.get(P1).set(POS);
  f.get(I).const(1).add().set(I);
  f.const(0).set(STATUS);
  f.br(0);
  f.end(); // loop
  f.end(); // done
  f.get(OUT).get(I).store(0);
  f.get(OUT).get(POS).get(NAMES).sub().store(4);
  f.get(OUT).get(STATUS).store(8);
  f.get(OUT).get(LEN).store(12);
  f.get(OUT).get(EXPANDED).store(16);
  return f;
}

const INDEX: WasmFunction = { name: 'index', params: PARAMS, locals: LOCALS, results: 0, body: indexBody() };
const compiled: CompiledModule = {};

/** Byte offsets of the pass's memory: the token tables, the result words, the names, then the columns. */
function layout(namesLength: number, count: number) {
  const align = (n: number) => (n + 3) & ~3;
  const tLen = 0;
  const firstOf = 1024;
  const secondOf = 1280;
  const out = 1536;
  const names = 1568;
  const entries = align(names + namesLength);
  const starts = entries + 4 * count;
  const offs = starts + 4 * (count + 1);
  const heads = offs + 4 * Math.ceil(count / 256);
  const next = heads + 4 * SCAN_BUCKETS;
  const types = next + 4 * count;
  const firsts = types + count;
  return { tLen, firstOf, secondOf, out, names, entries, starts, offs, heads, next, types, firsts, end: firsts + count };
}

/**
 * Indexes up to `count` entries of names[pos…] (see indexEntries in lazy-names.ts): `tLen`, `firstOf` and
 * `secondOf` per token, names expanding past `maxLength` are bad. Undefined when no memory can be had.
 */
export function indexEntriesWasm(names: Uint8Array, pos: number, count: number, tLen: ArrayLike<number>, firstOf: Uint8Array, secondOf: Uint8Array, maxLength: number): WasmIndex | undefined {
  const at = layout(names.length, count);
  const memory = wasmMemory(wasmPages(at.end));
  if (!memory) return undefined;
  const buf = memory.buffer;
  const tl = new Uint32Array(buf, at.tLen, 256);
  for (let t = 0; t < 256; t++) tl[t] = tLen[t]!;
  new Uint8Array(buf, at.firstOf, 256).set(firstOf);
  new Uint8Array(buf, at.secondOf, 256).set(secondOf);
  const kept = new Uint8Array(buf, at.names, names.length);
  kept.set(names);
  const heads = new Int32Array(buf, at.heads, SCAN_BUCKETS).fill(-1);
  const index = instantiate<(...args: number[]) => void>(INDEX, memory, compiled);
  index(at.names, at.names + pos, at.names + names.length, count, at.tLen, at.firstOf, at.secondOf, at.entries, at.starts, at.types, at.firsts, at.offs, at.heads, at.next, at.out, maxLength);
  const out = new Uint32Array(buf, at.out, 5);
  return {
    indexed: out[0]!,
    end: out[1]!,
    stop: STOPS[out[2]!]!,
    length: out[3]!,
    expanded: out[4]!,
    names: kept,
    entries: new Uint32Array(buf, at.entries, count),
    nameStarts: new Uint32Array(buf, at.starts, count + 1),
    types: new Uint8Array(buf, at.types, count),
    firstChars: new Uint8Array(buf, at.firsts, count),
    entryOffsets: new Uint32Array(buf, at.offs, Math.ceil(count / 256)),
    heads,
    chainNext: new Int32Array(buf, at.next, count),
  };
}

const [E_NAMES, E_ENTRIES, E_STARTS, E_COUNT, E_TSTART, E_TLEN, E_TABLE, E_OUT, E_TOK8, E_TOK8_SKIP] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
const [E_I, E_P, E_W, E_STOP, E_S, E_N, E_T, E_K] = [10, 11, 12, 13, 14, 15, 16, 17];

/**
 * Copies token `E_T` (its first byte dropped when `skip`) to `E_W` and moves `E_W` past it: eight bytes from
 * the token's own row of `E_TOK8`/`E_TOK8_SKIP` when it is that short (nearly every token: they average 1.3
 * bytes), else from the token table eight bytes at a time. Bytes written past the token's end are
 * overwritten by the next token, or the next name (names are written in order), or fall in the slack past
 * the last name.
 */
function copyToken(f: FunctionBody, skip: boolean): void {
  word(f, E_TLEN, E_T).load().set(E_N);
  if (skip) f.get(E_N).const(1).sub().set(E_N);
  f.get(E_N).const(8).leU().if();
  f.get(E_W).get(skip ? E_TOK8_SKIP : E_TOK8).get(E_T).const(3).shl().add().load64().store64();
  f.else();
  word(f, E_TSTART, E_T).load().get(E_TABLE).add().set(E_S);
  if (skip) f.get(E_S).const(1).add().set(E_S);
  f.const(0).set(E_K);
  f.loop();
  f.get(E_W).get(E_K).add().get(E_S).get(E_K).add().load64().store64();
  f.get(E_K).const(8).add().tee(E_K).get(E_N).ltU().brIf(0);
  f.end();
  f.end();
  f.get(E_W).get(E_N).add().set(E_W);
}

/**
 * For each entry i: its tokens from names + entries[i], expanded to out + starts[i] until the name's
 * starts[i + 1] - starts[i] bytes are written, the first token's first byte (the type letter) dropped.
 */
function expandBody(): FunctionBody {
  const f = new FunctionBody();
  f.block().loop(); // entries; depth 1 leaves
  f.get(E_I).get(E_COUNT).geU().brIf(1);
  word(f, E_ENTRIES, E_I).load().get(E_NAMES).add().set(E_P);
  word(f, E_STARTS, E_I).load().get(E_OUT).add().set(E_W);
  word(f, E_STARTS, E_I).load(4).get(E_OUT).add().set(E_STOP);
  f.get(E_P).load8().set(E_T);
  copyToken(f, true);
  f.block().loop(); // the other tokens; depth 1 leaves
  f.get(E_W).get(E_STOP).geU().brIf(1);
  f.get(E_P).const(1).add().tee(E_P).load8().set(E_T);
  copyToken(f, false);
  f.br(0);
  f.end().end();
  f.get(E_I).const(1).add().set(E_I);
  f.br(0);
  f.end().end();
  return f;
}

const EXPAND: WasmFunction = { name: 'expand', params: 10, locals: 8, results: 0, body: expandBody() };
const expandCompiled: CompiledModule = {};

/**
 * Every one of `count` indexed names expanded into one buffer (`nameStarts` says where each goes): the
 * buffer, a view of the pass's memory (undefined when no memory can be had). `entries` and `nameStarts` are
 * indexNames's, from the same names and tokens (a name's tokens then give exactly its length).
 */
export function expandNamesWasm(names: Uint8Array, entries: Uint32Array, nameStarts: Uint32Array, count: number, tokens: { table: Uint8Array; start: ArrayLike<number>; length: ArrayLike<number> }): Uint8Array | undefined {
  const align = (n: number) => (n + 7) & ~7;
  const tStart = 0;
  const tLen = 1024;
  const tok8 = 2048;
  const tok8Skip = tok8 + 2048;
  const table = tok8Skip + 2048;
  const namesAt = align(table + tokens.table.length + 8); // slack: a token near the end is read eight bytes at a time
  const entriesAt = align(namesAt + names.length);
  const startsAt = entriesAt + 4 * count;
  const out = startsAt + 4 * (count + 1);
  const total = nameStarts[count]!;
  const memory = wasmMemory(wasmPages(out + total + 8)); // slack: the last token is written eight bytes at a time
  if (!memory) return undefined;
  const buf = memory.buffer;
  const ts = new Uint32Array(buf, tStart, 256);
  const tl = new Uint32Array(buf, tLen, 256);
  const short = new Uint8Array(buf, tok8, 2048);
  const shortSkip = new Uint8Array(buf, tok8Skip, 2048);
  for (let t = 0; t < 256; t++) {
    const start = tokens.start[t]!;
    const length = tokens.length[t]!;
    ts[t] = start;
    tl[t] = length;
    // Each token's first eight bytes, and its bytes after the first (zero past its end).
    short.set(tokens.table.subarray(start, start + Math.min(8, length)), 8 * t);
    if (length > 1) shortSkip.set(tokens.table.subarray(start + 1, start + Math.min(9, length)), 8 * t);
  }
  new Uint8Array(buf, table, tokens.table.length).set(tokens.table);
  new Uint8Array(buf, namesAt, names.length).set(names);
  new Uint32Array(buf, entriesAt, count).set(entries.subarray(0, count));
  new Uint32Array(buf, startsAt, count + 1).set(nameStarts.subarray(0, count + 1));
  const expand = instantiate<(...args: number[]) => void>(EXPAND, memory, expandCompiled);
  expand(namesAt, entriesAt, startsAt, count, tStart, tLen, table, out, tok8, tok8Skip);
  return new Uint8Array(buf, out, total);
}
