/**
 * BtfTypes's indexing pass (every record's offset, and the prefix chains of the named ones) as a WebAssembly
 * function: ~100k records on every cold start without a profile cache, 10–12 ms as JavaScript that runs
 * interpreted until TurboFan has compiled it (core/wasm.ts). It walks the records as BtfTypes.indexRecords
 * does, with the same tables (record tails by kind, named kinds, the prefix hash), and stops where that
 * pass throws, saying why; BtfTypes throws the same error. Tests run both on the same blobs, corrupt ones
 * included, and compare offsets, chains and errors.
 */
import { type CompiledModule, FunctionBody, instantiate, type WasmFunction, type WasmMemory, wasmMemory, wasmPages } from '../../core/wasm.js';

/** Why the pass ended: the type section fully indexed, or the record at `end` is cut off, of an unknown kind, runs past the section, or one too many. */
export type RecordStop = 'done' | 'truncated' | 'unknown-kind' | 'past-end' | 'too-many';
const STOPS: readonly RecordStop[] = ['done', 'truncated', 'unknown-kind', 'past-end', 'too-many'];

/** Per kind number (0–31): the tail after a record's 12 bytes (`fixed` + `perVlen` × vlen; undefined: unknown kind), and whether lookups index its name. */
export interface KindTable {
  readonly tails: readonly ({ readonly fixed: number; readonly perVlen: number } | undefined)[];
  readonly named: readonly boolean[];
}

/** The prefix hash of BtfTypes: bucket = ((c0 << 16 | c1 << 8 | c2) × multiplier) >>> shift, over `buckets` heads. */
export interface PrefixHash {
  readonly multiplier: number;
  readonly shift: number;
  readonly buckets: number;
}

export interface WasmRecordIndex {
  readonly stop: RecordStop;
  /** Records indexed, and where the pass ended (the offset of the record it stopped at, in the blob). */
  readonly count: number;
  readonly end: number;
  /** The stopping record's kind and vlen. */
  readonly kind: number;
  readonly vlen: number;
  /** Views of the pass's memory: each record's offset in the blob, and the prefix chains. */
  readonly offsets: Uint32Array;
  readonly heads: Int32Array;
  readonly next: Int32Array;
}

// Parameters, then locals, by number.
const [BYTES, P0, END, STR, STR_LEN, KINDS, OFFS, NEXT, HEADS, CAP, OUT, MULT, SHIFT] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
const PARAMS = 13;
const [N, P, INFO, KIND, VLEN, TAIL, STATUS, NAME, AT, C0, C1, C2, BUCKET, ENTRY] = [13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26];
const LOCALS = 14;
/** Bytes per kind in the kind table: fixed tail (-1: unknown kind), tail per vlen, named (0/1). */
const KIND_ENTRY = 12;

function indexBody(): FunctionBody {
  const f = new FunctionBody();
  f.get(P0).set(P);
  f.block(); // done
  f.loop(); // one record per turn; depth 1 is `done`
  f.get(P).get(END).geU().brIf(1); // status 0: the section is indexed
  f.const(1).set(STATUS); // truncated: no room for the 12-byte header
  f.get(P).const(12).add().get(END).gtU().brIf(1);
  f.get(P).load(4).set(INFO);
  f.get(INFO).const(24).shrU().const(0x1f).and().set(KIND);
  f.get(INFO).const(0xffff).and().set(VLEN);
  f.get(KIND).const(KIND_ENTRY).mul().get(KINDS).add().set(ENTRY);
  f.const(2).set(STATUS); // unknown kind
  f.get(ENTRY).load().const(-1).eq().brIf(1);
  f.get(ENTRY).load().get(ENTRY).load(4).get(VLEN).mul().add().set(TAIL);
  f.const(3).set(STATUS); // runs past the type section
  f.get(P).const(12).add().get(TAIL).add().get(END).gtU().brIf(1);
  f.const(4).set(STATUS); // more records than the cap
  f.get(N).get(CAP).geU().brIf(1);
  // a named record of a kind lookups index, its name inside the string section: on its prefix chain
  f.get(P).load().set(NAME);
  f.get(ENTRY).load(8).get(NAME).const(0).ne().and().get(NAME).get(STR_LEN).ltU().and().if();
  f.get(STR).get(NAME).add().set(AT);
  f.get(AT).load8().set(C0);
  f.const(0).set(C1);
  f.const(0).set(C2);
  f.get(C0).const(0).ne().get(AT).const(1).add().get(STR).get(STR_LEN).add().ltU().and().if();
  f.get(AT).load8(1).set(C1);
  f.get(C1).const(0).ne().get(AT).const(2).add().get(STR).get(STR_LEN).add().ltU().and().if();
  f.get(AT).load8(2).set(C2);
  f.end();
  f.end();
  f.get(C0).const(16).shl().get(C1).const(8).shl().or().get(C2).or().get(MULT).mul().get(SHIFT).shrU();
  f.const(2).shl().get(HEADS).add().set(BUCKET);
  f.get(NEXT).get(N).const(2).shl().add().get(BUCKET).load().store();
  f.get(BUCKET).get(N).store();
  f.end();
  f.get(OFFS).get(N).const(2).shl().add().get(P).get(BYTES).sub().store();
  f.get(N).const(1).add().set(N);
  f.get(P).const(12).add().get(TAIL).add().set(P);
  f.const(0).set(STATUS);
  f.br(0);
  f.end(); // loop
  f.end(); // done
  f.get(OUT).get(N).store(0);
  f.get(OUT).get(P).get(BYTES).sub().store(4);
  f.get(OUT).get(STATUS).store(8);
  f.get(OUT).get(KIND).store(12);
  f.get(OUT).get(VLEN).store(16);
  return f;
}

const INDEX: WasmFunction = { name: 'index', params: PARAMS, locals: LOCALS, results: 0, body: indexBody() };
const compiled: CompiledModule = {};

/** Where a pass's memory holds what: the blob, the record offsets, the chains, the heads (room for `cap` records). */
interface Arena {
  readonly memory: WasmMemory;
  readonly blob: number;
  readonly length: number;
  readonly cap: number;
  readonly offs: number;
  readonly next: number;
  readonly heads: number;
}

/** The arenas made by recordIndexBuffer, by their memory's buffer: a blob read into one is indexed where it is. */
const arenas = new WeakMap<ArrayBuffer, Arena>();

const KINDS_AT = 64;
const OUT_AT = 0;

function arena(length: number, cap: number, buckets: number): Arena | undefined {
  const align = (n: number) => (n + 7) & ~7;
  const blob = align(KINDS_AT + 32 * KIND_ENTRY);
  const offs = align(blob + length);
  const next = offs + 4 * cap;
  const heads = next + 4 * cap;
  const memory = wasmMemory(wasmPages(heads + 4 * buckets));
  if (!memory) return undefined;
  const a = { memory, blob, length, cap, offs, next, heads };
  arenas.set(memory.buffer, a);
  return a;
}

/**
 * A zeroed buffer of `length` bytes for a BTF blob to be read into (guest memory: 3–5 MiB), in a memory with
 * room for the index of up to `cap` records: indexRecordsWasm then indexes it where it is, with no copy
 * (a plain buffer when no memory can be had).
 */
export function recordIndexBuffer(length: number, cap: number, hash: PrefixHash): Uint8Array {
  const a = arena(length, cap, hash.buckets);
  return a ? new Uint8Array(a.memory.buffer, a.blob, length) : new Uint8Array(length);
}

/**
 * Indexes the records of `bytes`'s type section [typeStart, typeEnd), string section at strStart, strLen
 * bytes, at most `cap` records. `bytes` is indexed in place when recordIndexBuffer made it, else copied
 * into a memory of the pass's own (the index copied out of it). Undefined when no memory can be had.
 */
export function indexRecordsWasm(bytes: Uint8Array, typeStart: number, typeEnd: number, strStart: number, strLen: number, cap: number, kinds: KindTable, hash: PrefixHash): WasmRecordIndex | undefined {
  const given = arenas.get(bytes.buffer as ArrayBuffer);
  const inPlace = given !== undefined && given.blob === bytes.byteOffset && given.length === bytes.length && given.cap >= cap;
  const at = inPlace ? given : arena(bytes.length, cap, hash.buckets);
  if (!at) return undefined;
  const buf = at.memory.buffer;
  const table = new Int32Array(buf, KINDS_AT, 32 * 3);
  for (let k = 0; k < 32; k++) {
    const t = kinds.tails[k];
    table[3 * k] = t ? t.fixed : -1;
    table[3 * k + 1] = t ? t.perVlen : 0;
    table[3 * k + 2] = kinds.named[k] ? 1 : 0;
  }
  if (!inPlace) new Uint8Array(buf, at.blob, bytes.length).set(bytes);
  const headsView = new Int32Array(buf, at.heads, hash.buckets).fill(-1);
  const index = instantiate<(...args: number[]) => void>(INDEX, at.memory, compiled);
  index(at.blob, at.blob + typeStart, at.blob + typeEnd, at.blob + strStart, strLen, KINDS_AT, at.offs, at.next, at.heads, cap, OUT_AT, hash.multiplier, hash.shift);
  const o = new Uint32Array(buf, OUT_AT, 5);
  const count = o[0]!;
  // A copied blob's memory is not kept: the index is copied out of it (its bytes stay the caller's).
  const offsets = new Uint32Array(buf, at.offs, count);
  const next = new Int32Array(buf, at.next, count);
  return {
    stop: STOPS[o[2]!]!,
    count,
    end: o[1]!,
    kind: o[3]!,
    vlen: o[4]!,
    offsets: inPlace ? offsets : offsets.slice(),
    heads: inPlace ? headsView : headsView.slice(),
    next: inPlace ? next : next.slice(),
  };
}
