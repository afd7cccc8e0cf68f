/**
 * BPF Type Format (BTF) parser: the kernel's own type information, found in
 * guest memory (`__start_BTF`…`__stop_BTF`), in a vmlinux `.BTF` section, in
 * `/sys/kernel/btf/vmlinux`, and as split BTF for modules.
 *
 * One pass indexes the offset of every type record; types are decoded on
 * demand and cached; names are looked up in buckets of named types by their
 * first bytes, and a name hash is built once many names are asked for. Every
 * offset, length, type id and string offset is bounds-checked, so a corrupt
 * blob ends in a FormatError naming the offset, never a crash or a hang.
 *
 * Format facts (little-endian): a 24-byte header {u16 magic 0xeB9F, u8 version
 * 1, u8 flags, u32 hdr_len, u32 type_off, u32 type_len, u32 str_off, u32
 * str_len} with offsets relative to the end of the header; then records of
 * {u32 name_off, u32 info (vlen:16, kind:5 at bit 24, kind_flag at bit 31),
 * u32 size|type} followed by a kind-specific tail.
 *
 * Longer than ~400 lines on purpose: one binary format: every kind's record
 * layout is decoded in one class whose bounds checks share the same offsets.
 */
import { FormatError, ProfileError } from '../core/errors.js';
import { wasmAvailable } from '../core/wasm.js';
import { indexRecordsWasm, type KindTable, type PrefixHash, recordIndexBuffer, type RecordStop } from './btf/index-wasm.js';
import { NAMED_KINDS, TypeDb, type Member, type Type, type TypeId, type TypeKind, type TypeStore } from './types.js';

export const BTF_MAGIC = 0xeb9f;
export const BTF_HEADER_MIN = 24;

/** BTF kind numbers (include/uapi/linux/btf.h). */
export const BtfKind = {
  INT: 1,
  PTR: 2,
  ARRAY: 3,
  STRUCT: 4,
  UNION: 5,
  ENUM: 6,
  FWD: 7,
  TYPEDEF: 8,
  VOLATILE: 9,
  CONST: 10,
  RESTRICT: 11,
  FUNC: 12,
  FUNC_PROTO: 13,
  VAR: 14,
  DATASEC: 15,
  FLOAT: 16,
  DECL_TAG: 17,
  TYPE_TAG: 18,
  ENUM64: 19,
} as const;

const KIND_NAMES: readonly (TypeKind | undefined)[] = [
  undefined,
  'int',
  'pointer',
  'array',
  'struct',
  'union',
  'enum',
  'fwd',
  'typedef',
  'volatile',
  'const',
  'restrict',
  'func',
  'func_proto',
  'var',
  'datasec',
  'float',
  'decl_tag',
  'type_tag',
  'enum',
];
/** Kind numbers of the kinds lookup() indexes by name. */
const NAMED_KIND_CODES: readonly boolean[] = KIND_NAMES.map((k) => k !== undefined && NAMED_KINDS.has(k));

/** What follows a record's 12 bytes, by kind number: `fixed` + `perVlen` × vlen bytes (undefined: no such kind). */
const RECORD_TAILS: KindTable['tails'] = (() => {
  const tails: ({ fixed: number; perVlen: number } | undefined)[] = new Array(32).fill(undefined);
  const set = (kinds: readonly number[], fixed: number, perVlen: number) => kinds.forEach((k) => (tails[k] = { fixed, perVlen }));
  const K = BtfKind;
  set([K.INT, K.VAR, K.DECL_TAG], 4, 0);
  set([K.ARRAY], 12, 0);
  set([K.STRUCT, K.UNION, K.DATASEC, K.ENUM64], 0, 12);
  set([K.ENUM, K.FUNC_PROTO], 0, 8);
  set([K.PTR, K.FWD, K.TYPEDEF, K.VOLATILE, K.CONST, K.RESTRICT, K.FUNC, K.FLOAT, K.TYPE_TAG], 0, 0);
  return tails;
})();
const KIND_TABLE: KindTable = { tails: RECORD_TAILS, named: Array.from({ length: 32 }, (_, k) => NAMED_KIND_CODES[k] === true) };

export interface BtfHeader {
  readonly version: number;
  readonly flags: number;
  readonly hdrLen: number;
  readonly typeOff: number;
  readonly typeLen: number;
  readonly strOff: number;
  readonly strLen: number;
  /** Bytes the blob spans: hdr_len + max(type end, str end). */
  readonly totalLen: number;
}

export interface BtfParseOptions {
  /** Names the source in errors, e.g. 'btf:memory', 'btf:/boot/vmlinuz'. */
  source?: string;
  /** The vmlinux BTF, for a module's split BTF (ids and string offsets continue after it). */
  base?: BtfTypes;
  /**
   * The record offsets recordOffsets() gave for these very bytes (the profile
   * cache, whose checksum vouches for both): skips the indexing pass. Used
   * only when they start at the type section and end inside it.
   */
  recordOffsets?: Uint32Array;
  /**
   * Distinct names a vmlinux BTF answers through its prefix buckets before it
   * builds its name hash (default SCANNED_NAMES; 0: the hash at once).
   */
  nameScans?: number;
  /** What runs the indexing pass (tests): a WebAssembly function where this Node has WebAssembly, else JavaScript. */
  engine?: 'wasm' | 'js';
}

/** Hard cap on type records: the largest kernels have ~170k; this bounds hostile input. */
const MAX_TYPES = 4_000_000;
const NO_TYPE = 0xffffffff;
/**
 * Distinct names looked up through the prefix buckets before the name hash is
 * built: the buckets cost a few percent of the hash to build (README "Cold
 * start"), and a cold plugin run asks for a dozen names; the monitor and
 * `vmsight types` ask for more and get the hash.
 */
const SCANNED_NAMES = 32;
/** Buckets of the prefix index (a power of two): ~25 named types each on a vmlinux BTF, more for `__x`-like prefixes. */
const PREFIX_BITS = 12;
const PREFIX_BUCKETS = 1 << PREFIX_BITS;
/** The prefix hash, as the WebAssembly indexing pass is given it too. */
const PREFIX_HASH: PrefixHash = { multiplier: 0x9e3779b1, shift: 32 - PREFIX_BITS, buckets: PREFIX_BUCKETS };

/** The bucket of a name by its first three bytes (0 past its end): a multiplicative hash of the 24 bits. */
function prefixBucket(c0: number, c1: number, c2: number): number {
  return Math.imul((c0 << 16) | (c1 << 8) | c2, PREFIX_HASH.multiplier) >>> PREFIX_HASH.shift;
}

/**
 * The prefix bucket of the record at `p` of BTF kind `kind` (its name's first three bytes in the string
 * section at `strStart`, `strLen` long), or -1 when it has no name lookups can ask for.
 */
function namePrefixBucket(b: Uint8Array, dv: DataView, p: number, kind: number, strStart: number, strLen: number): number {
  const nameOff = dv.getUint32(p, true);
  if (nameOff === 0 || nameOff >= strLen || !NAMED_KIND_CODES[kind]) return -1;
  const at = strStart + nameOff;
  const strEnd = strStart + strLen;
  const c0 = b[at]!;
  const c1 = c0 !== 0 && at + 1 < strEnd ? b[at + 1]! : 0;
  const c2 = c1 !== 0 && at + 2 < strEnd ? b[at + 2]! : 0;
  return prefixBucket(c0, c1, c2);
}

/**
 * A zeroed buffer for a BTF blob of `length` bytes to be read into. Where WebAssembly runs, the indexing
 * pass then indexes the blob where it is (no copy of 3–5 MiB into its memory).
 */
export function btfBuffer(length: number): Uint8Array {
  return wasmAvailable() ? recordIndexBuffer(length, Math.min(MAX_TYPES, Math.floor(length / 12) + 1), PREFIX_HASH) : new Uint8Array(length);
}

/**
 * Reads and validates a BTF header. Throws FormatError for a bad magic, a
 * big-endian blob, an unknown version or sections outside `bytes`.
 */
export function parseBtfHeader(bytes: Uint8Array, source = 'btf'): BtfHeader {
  if (bytes.length < BTF_HEADER_MIN) throw new FormatError(source, `${bytes.length} bytes is too short for a BTF header (24)`, { offset: 0 });
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = dv.getUint16(0, true);
  if (magic !== BTF_MAGIC) {
    if (dv.getUint16(0, false) === BTF_MAGIC) {
      throw new FormatError(source, 'big-endian BTF is not supported (vmsight reads x86-64 guests)', { offset: 0 });
    }
    throw new FormatError(source, `not BTF: magic 0x${magic.toString(16)}, expected 0xeb9f`, { offset: 0 });
  }
  const version = dv.getUint8(2);
  if (version !== 1) throw new FormatError(source, `BTF version ${version} is not supported (expected 1)`, { offset: 2 });
  const hdrLen = dv.getUint32(4, true);
  if (hdrLen < BTF_HEADER_MIN || hdrLen > 256 || hdrLen > bytes.length) {
    throw new FormatError(source, `BTF hdr_len ${hdrLen} is implausible`, { offset: 4 });
  }
  const typeOff = dv.getUint32(8, true);
  const typeLen = dv.getUint32(12, true);
  const strOff = dv.getUint32(16, true);
  const strLen = dv.getUint32(20, true);
  const typeEnd = typeOff + typeLen;
  const strEnd = strOff + strLen;
  const totalLen = hdrLen + Math.max(typeEnd, strEnd);
  if (typeOff % 4 !== 0 || typeLen % 4 !== 0) throw new FormatError(source, `BTF type section ${typeOff}+${typeLen} is not 4-byte aligned`, { offset: 8 });
  if (hdrLen + typeEnd > bytes.length) {
    throw new FormatError(source, `BTF type section ends at ${hdrLen + typeEnd}, past the ${bytes.length}-byte blob (truncated?)`, { offset: 12 });
  }
  if (hdrLen + strEnd > bytes.length) {
    throw new FormatError(source, `BTF string section ends at ${hdrLen + strEnd}, past the ${bytes.length}-byte blob (truncated?)`, { offset: 20 });
  }
  if (typeOff < strEnd && strOff < typeEnd && typeLen > 0 && strLen > 0) {
    throw new FormatError(source, 'BTF type and string sections overlap', { offset: 8 });
  }
  return { version, flags: dv.getUint8(3), hdrLen, typeOff, typeLen, strOff, strLen, totalLen };
}

/**
 * A parsed BTF blob. Implements TypeStore: ids 0 (void) … count-1, decoded on
 * demand. For split BTF, ids below `baseCount` come from the base.
 */
export class BtfTypes implements TypeStore {
  readonly source: string;
  readonly header: BtfHeader;
  readonly base: BtfTypes | undefined;
  /** First type id defined by this blob (1, or the base's count for split BTF). */
  readonly firstId: number;
  /** First string offset defined by this blob (0, or the base's string length). */
  readonly firstStr: number;
  private readonly bytes: Uint8Array;
  private readonly buf: Buffer;
  private readonly dv: DataView;
  private readonly typeStart: number;
  private readonly strStart: number;
  /** Byte offset (absolute, in `bytes`) of each local type record. */
  private readonly offsets: Uint32Array;
  /** Decoded types by local index: a Map, as a run decodes a few hundred of ~100k (an array that long is a large heap object). */
  private readonly cache = new Map<number, Type>();
  private nameIndex: Map<string, TypeId[]> | undefined;
  /** Name hash index (base BTF): slots of local type indices, chains of same-name types, each type's name hash. */
  private nameHash: { slots: Uint32Array; next: Uint32Array; hashes: Uint32Array } | undefined;
  /**
   * Named types grouped by their names' first bytes, for the first lookups (see bucketLookup): `heads[bucket]`
   * is the highest local index of the group (-1 for none), `next[i]` the next lower one. Made in the pass that
   * indexes the records, or in a pass of their own when the offsets came from the cache.
   */
  private prefixChains: { heads: Int32Array; next: Int32Array } | undefined;
  /** Answers of the by-name scans made before the hash index was built (base BTF), by name. */
  private scanned: Map<string, TypeId[] | undefined> | undefined = new Map();
  private readonly nameScans: number;

  constructor(bytes: Uint8Array, opts: BtfParseOptions = {}) {
    this.source = opts.source ?? 'btf';
    this.header = parseBtfHeader(bytes, this.source);
    this.base = opts.base;
    this.bytes = bytes;
    this.buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.typeStart = this.header.hdrLen + this.header.typeOff;
    this.strStart = this.header.hdrLen + this.header.strOff;
    this.firstId = this.base ? this.base.count : 1;
    this.firstStr = this.base ? this.base.stringBytes : 0;
    if (!this.base && (this.header.strLen === 0 || bytes[this.strStart] !== 0)) {
      throw new FormatError(this.source, 'BTF string section must start with an empty string', { offset: this.strStart });
    }
    const given = opts.recordOffsets;
    const typeEnd = this.typeStart + this.header.typeLen;
    this.offsets =
      given && given.length > 0 && given.length <= MAX_TYPES && given[0] === this.typeStart && given[given.length - 1]! + 12 <= typeEnd
        ? given
        : this.indexRecords(opts.engine ?? (wasmAvailable() ? 'wasm' : 'js'));
    this.nameScans = Math.max(0, opts.nameScans ?? SCANNED_NAMES);
  }

  /** True once lookup() answers through the name hash (for tests and benchmarks of the lazy lookup). */
  get nameHashBuilt(): boolean {
    return this.nameHash !== undefined || this.nameIndex !== undefined;
  }

  /** Total ids including void and the base's types. */
  get count(): number {
    return this.firstId + this.offsets.length;
  }

  /** Types defined by this blob (not counting void or the base). */
  get localCount(): number {
    return this.offsets.length;
  }

  /** String offsets this blob and its base span (split BTF string offsets start here). */
  get stringBytes(): number {
    return this.firstStr + this.header.strLen;
  }

  /** Byte offset of every local type record in the blob (for the profile cache). Shared: do not modify. */
  recordOffsets(): Uint32Array {
    return this.offsets;
  }

  /** The blob's bytes (for re-export or digests). */
  get raw(): Uint8Array {
    return this.bytes.subarray(0, this.header.totalLen);
  }

  get(id: TypeId): Type {
    if (id === 0) return VOID;
    if (id < this.firstId) {
      if (!this.base || id < 0) throw this.idErr(id, -1);
      return this.base.get(id);
    }
    const i = id - this.firstId;
    if (i >= this.offsets.length || !Number.isInteger(id)) throw this.idErr(id, -1);
    let t = this.cache.get(i);
    if (t === undefined) this.cache.set(i, (t = this.decode(id, this.offsets[i]!)));
    return t;
  }

  lookup(name: string): readonly TypeId[] {
    const local = this.base ? (this.nameIndex ??= this.buildNameIndex()).get(name) : this.localLookup(name);
    const base = this.base?.lookup(name);
    if (base && base.length) return local ? [...base, ...local] : base;
    return local ?? [];
  }

  /** Kind number of a type without decoding it (cheap; for scans). */
  kindOf(id: TypeId): number {
    if (id === 0) return 0;
    if (id < this.firstId) return this.base ? this.base.kindOf(id) : 0;
    const off = this.offsets[id - this.firstId];
    if (off === undefined) throw this.idErr(id, -1);
    return (this.dv.getUint32(off + 4, true) >>> 24) & 0x1f;
  }

  /** The NUL-terminated string at `off` in the (split) string section. */
  str(off: number, at = -1): string {
    if (off < this.firstStr) {
      if (!this.base) throw new FormatError(this.source, `string offset ${off} is negative`, { offset: Math.max(at, 0) });
      return this.base.str(off, at);
    }
    const local = off - this.firstStr;
    if (local >= this.header.strLen) {
      throw new FormatError(this.source, `string offset ${off} is past the ${this.header.strLen}-byte string section`, { offset: Math.max(at, 0) });
    }
    const start = this.strStart + local;
    const end = this.bytes.indexOf(0, start);
    const limit = this.strStart + this.header.strLen;
    if (end < 0 || end >= limit) throw new FormatError(this.source, `string at offset ${off} is not NUL-terminated`, { offset: start });
    return this.buf.toString('latin1', start, end);
  }

  // ---- internals ----------------------------------------------------------

  /** One pass over the type section: the offset of every record, sizes checked, and the prefix chains. */
  private indexRecords(engine: 'wasm' | 'js'): Uint32Array {
    const end = this.typeStart + this.header.typeLen;
    const cap = Math.min(MAX_TYPES, Math.floor(this.header.typeLen / 12) + 1); // a record is 12 bytes at least
    const r = engine === 'wasm' ? indexRecordsWasm(this.bytes, this.typeStart, end, this.strStart, this.header.strLen, cap, KIND_TABLE, PREFIX_HASH) : undefined;
    if (r) {
      if (r.stop !== 'done') throw this.recordError(r.stop, r.count, r.end, r.kind, r.vlen);
      this.prefixChains = { heads: r.heads, next: r.next };
      return r.offsets;
    }
    let capacity = Math.min(MAX_TYPES, Math.max(16, Math.floor(this.header.typeLen / 12)));
    let offsets = new Uint32Array(capacity);
    // The prefix chains too, in this pass that reads every record anyway (a pass of its own cost a cold run ~6 ms).
    const heads = new Int32Array(PREFIX_BUCKETS).fill(-1);
    let next = new Int32Array(capacity);
    let n = 0;
    let p = this.typeStart;
    const dv = this.dv;
    const b = this.bytes;
    const strLen = this.header.strLen;
    const strStart = this.strStart;
    while (p < end) {
      if (p + 12 > end) throw this.recordError('truncated', n, p, 0, 0);
      const info = dv.getUint32(p + 4, true);
      const kind = (info >>> 24) & 0x1f;
      const vlen = info & 0xffff;
      const t = RECORD_TAILS[kind];
      if (t === undefined) throw this.recordError('unknown-kind', n, p, kind, vlen);
      const tail = t.fixed + t.perVlen * vlen;
      if (p + 12 + tail > end) throw this.recordError('past-end', n, p, kind, vlen);
      if (n === capacity) {
        if (capacity >= MAX_TYPES) throw this.recordError('too-many', n, p, kind, vlen);
        capacity = Math.min(MAX_TYPES, capacity * 2);
        const grown = new Uint32Array(capacity);
        grown.set(offsets);
        offsets = grown;
        const grownNext = new Int32Array(capacity);
        grownNext.set(next);
        next = grownNext;
      }
      const bucket = namePrefixBucket(b, dv, p, kind, strStart, strLen);
      if (bucket >= 0) {
        next[n] = heads[bucket]!;
        heads[bucket] = n;
      }
      offsets[n++] = p;
      p += 12 + tail;
    }
    this.prefixChains = { heads, next: next.subarray(0, n) };
    return offsets.slice(0, n);
  }

  /** The error of a type section the indexing pass stopped in: record `n` (local), at offset `p`. */
  private recordError(stop: Exclude<RecordStop, 'done'>, n: number, p: number, kind: number, vlen: number): FormatError {
    const id = this.firstId + n;
    switch (stop) {
      case 'truncated':
        return new FormatError(this.source, `type record ${id} is truncated`, { offset: p });
      case 'unknown-kind':
        return new FormatError(this.source, `type ${id} has unknown BTF kind ${kind}`, { offset: p + 4 });
      case 'past-end':
        return new FormatError(this.source, `type ${id} (kind ${kind}, vlen ${vlen}) runs past the type section`, { offset: p });
      case 'too-many':
        return new FormatError(this.source, `more than ${MAX_TYPES} types`, { offset: p });
    }
  }

  /**
   * Local type ids named `name` (ascending); undefined when none. The first
   * `nameScans` distinct names are found through the prefix buckets (a cold
   * plugin run asks for a dozen: cheaper than hashing ~100k names), later
   * ones through the hash index, built once.
   */
  private localLookup(name: string): TypeId[] | undefined {
    const scanned = this.scanned;
    if (scanned) {
      if (scanned.has(name)) return scanned.get(name);
      if (scanned.size < this.nameScans) {
        const ids = this.bucketLookup(name);
        scanned.set(name, ids);
        return ids;
      }
      this.scanned = undefined;
    }
    return this.hashedLookup(name);
  }

  /**
   * Local type ids named `name` (ascending), through the prefix buckets: the named types whose first three
   * name bytes fall in the same bucket, each compared byte by byte in the string section (no string built).
   * The same answers as the hash index, for the same records.
   */
  private bucketLookup(name: string): TypeId[] | undefined {
    const { heads, next } = (this.prefixChains ??= this.buildPrefixChains());
    const c0 = name.length > 0 ? name.charCodeAt(0) : 0;
    const c1 = c0 !== 0 && name.length > 1 ? name.charCodeAt(1) : 0;
    const c2 = c1 !== 0 && name.length > 2 ? name.charCodeAt(2) : 0;
    // A character past Latin-1 matches no byte of the string section.
    if (c0 > 0xff || c1 > 0xff || c2 > 0xff) return undefined;
    let out: TypeId[] | undefined;
    // Chains run down (each link is to a lower index), so every walk ends.
    for (let i = heads[prefixBucket(c0, c1, c2)]!; i >= 0; i = next[i]! < i ? next[i]! : -1) if (this.nameIs(i, name)) (out ??= []).push(this.firstId + i);
    return out?.reverse();
  }

  /** The prefix chains for record offsets that came from the cache (indexRecords makes them otherwise). */
  private buildPrefixChains(): { heads: Int32Array; next: Int32Array } {
    const n = this.offsets.length;
    const heads = new Int32Array(PREFIX_BUCKETS).fill(-1);
    const next = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const p = this.offsets[i]!;
      const bucket = namePrefixBucket(this.bytes, this.dv, p, (this.dv.getUint32(p + 4, true) >>> 24) & 0x1f, this.strStart, this.header.strLen);
      if (bucket < 0) continue;
      next[i] = heads[bucket]!;
      heads[bucket] = i;
    }
    return { heads, next };
  }

  /** Local type ids named `name` (ascending), through the hash index; undefined when none. */
  private hashedLookup(name: string): TypeId[] | undefined {
    const { slots, next, hashes } = (this.nameHash ??= this.buildNameHash());
    let h = 0x811c9dc5;
    for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
    h >>>= 0;
    const mask = slots.length - 1;
    for (let slot = h & mask, probes = 0; probes < slots.length; slot = (slot + 1) & mask, probes++) {
      const i = slots[slot]!;
      if (i === NO_TYPE) return undefined;
      if (hashes[i] !== h || !this.nameIs(i, name)) continue;
      const out: TypeId[] = [];
      for (let j = i; j !== NO_TYPE && out.length < next.length; j = next[j]!) out.push(this.firstId + j);
      return out;
    }
    return undefined;
  }

  /** True when local type i's name is exactly `name` (Latin-1, as str() decodes it). */
  private nameIs(i: number, name: string): boolean {
    const start = this.strStart + this.dv.getUint32(this.offsets[i]!, true);
    const b = this.bytes;
    const n = name.length;
    if (start + n >= this.strStart + this.header.strLen) return false;
    for (let k = 0; k < n; k++) if (b[start + k] !== name.charCodeAt(k)) return false;
    return b[start + n] === 0;
  }

  /**
   * One pass over the records: FNV-1a of each named type's name, straight
   * from the string section (no string built), into open-addressing slots
   * with a chain per name in ascending id order. Records whose name runs off
   * the section are left out (they fail when decoded).
   */
  private buildNameHash(): { slots: Uint32Array; next: Uint32Array; hashes: Uint32Array } {
    const n = this.offsets.length;
    let size = 16;
    while (size < n * 2) size <<= 1;
    const slots = new Uint32Array(size).fill(NO_TYPE);
    const next = new Uint32Array(n).fill(NO_TYPE);
    const hashes = new Uint32Array(n);
    const named = new Uint8Array(n);
    const dv = this.dv;
    const b = this.bytes;
    const strStart = this.strStart;
    const strEnd = strStart + this.header.strLen;
    for (let i = 0; i < n; i++) {
      const p = this.offsets[i]!;
      const nameOff = dv.getUint32(p, true);
      if (nameOff === 0 || !NAMED_KIND_CODES[(dv.getUint32(p + 4, true) >>> 24) & 0x1f]) continue;
      let k = strStart + nameOff;
      if (nameOff >= this.header.strLen) continue;
      let h = 0x811c9dc5;
      for (; k < strEnd && b[k] !== 0; k++) h = Math.imul(h ^ b[k]!, 0x01000193);
      if (k >= strEnd) continue;
      hashes[i] = h >>> 0;
      named[i] = 1;
    }
    const mask = size - 1;
    // Reverse order: each chain comes out ascending.
    for (let i = n - 1; i >= 0; i--) {
      if (!named[i]) continue;
      const h = hashes[i]!;
      for (let slot = h & mask; ; slot = (slot + 1) & mask) {
        const j = slots[slot]!;
        if (j === NO_TYPE) {
          slots[slot] = i;
          break;
        }
        if (hashes[j] === h && this.sameName(i, j)) {
          next[i] = j;
          slots[slot] = i;
          break;
        }
      }
    }
    return { slots, next, hashes };
  }

  private sameName(i: number, j: number): boolean {
    const a = this.dv.getUint32(this.offsets[i]!, true);
    const c = this.dv.getUint32(this.offsets[j]!, true);
    if (a === c) return true; // deduplicated strings: the common case
    const b = this.bytes;
    const limit = this.strStart + this.header.strLen;
    for (let x = this.strStart + a, y = this.strStart + c; x < limit && y < limit; x++, y++) {
      if (b[x] !== b[y]) return false;
      if (b[x] === 0) return true;
    }
    return false;
  }

  private buildNameIndex(): Map<string, TypeId[]> {
    const index = new Map<string, TypeId[]>();
    const dv = this.dv;
    for (let i = 0; i < this.offsets.length; i++) {
      const p = this.offsets[i]!;
      const nameOff = dv.getUint32(p, true);
      if (nameOff === 0) continue;
      const kindName = KIND_NAMES[(dv.getUint32(p + 4, true) >>> 24) & 0x1f];
      if (!kindName || !NAMED_KINDS.has(kindName)) continue;
      let name: string;
      try {
        name = this.str(nameOff, p);
      } catch {
        continue; // a corrupt name surfaces when the type is decoded
      }
      const id = this.firstId + i;
      const ids = index.get(name);
      if (ids) ids.push(id);
      else index.set(name, [id]);
    }
    return index;
  }

  private ref(id: number, at: number): TypeId {
    if (id >= this.count) throw this.idErr(id, at);
    return id;
  }

  private idErr(id: number, at: number): FormatError | ProfileError {
    if (at < 0) return new ProfileError(`type id ${id} is out of range (${this.count} types)`, { tried: [this.source] });
    return new FormatError(this.source, `type id ${id} is out of range (${this.count} types)`, { offset: at });
  }

  private decode(id: TypeId, p: number): Type {
    const dv = this.dv;
    const nameOff = dv.getUint32(p, true);
    const info = dv.getUint32(p + 4, true);
    const sizeOrType = dv.getUint32(p + 8, true);
    const kind = (info >>> 24) & 0x1f;
    const vlen = info & 0xffff;
    const kflag = info >>> 31 === 1;
    const name = nameOff ? this.str(nameOff, p) : '';
    const t = p + 12;
    switch (kind) {
      case BtfKind.INT: {
        const enc = dv.getUint32(t, true);
        const encoding = (enc >>> 24) & 0x0f;
        const bitOffset = (enc >>> 16) & 0xff;
        const bits = enc & 0xff;
        if (![1, 2, 4, 8, 16].includes(sizeOrType)) throw new FormatError(this.source, `int ${name} has size ${sizeOrType}`, { offset: p + 8 });
        if (bits > 128 || bits + bitOffset > sizeOrType * 8) {
          throw new FormatError(this.source, `int ${name} bits ${bits}+${bitOffset} exceed its ${sizeOrType} bytes`, { offset: t });
        }
        return {
          kind: 'int',
          id,
          name,
          size: sizeOrType,
          signed: (encoding & 1) !== 0,
          char: (encoding & 2) !== 0,
          bool: (encoding & 4) !== 0,
          bits,
          bitOffset,
        };
      }
      case BtfKind.PTR:
        return { kind: 'pointer', id, name: '', target: this.ref(sizeOrType, p + 8) };
      case BtfKind.ARRAY: {
        const elem = this.ref(dv.getUint32(t, true), t);
        this.ref(dv.getUint32(t + 4, true), t + 4);
        const length = dv.getUint32(t + 8, true);
        return { kind: 'array', id, name: '', elem, length };
      }
      case BtfKind.STRUCT:
      case BtfKind.UNION: {
        const members: Member[] = new Array(vlen);
        for (let i = 0; i < vlen; i++) {
          const m = t + i * 12;
          const mName = dv.getUint32(m, true);
          const mType = this.ref(dv.getUint32(m + 4, true), m + 4);
          const off = dv.getUint32(m + 8, true);
          members[i] = {
            name: mName ? this.str(mName, m) : '',
            type: mType,
            bitOffset: kflag ? off & 0xffffff : off,
            bitSize: kflag ? off >>> 24 : 0,
          };
        }
        return { kind: kind === BtfKind.STRUCT ? 'struct' : 'union', id, name, size: sizeOrType, members };
      }
      case BtfKind.ENUM:
      case BtfKind.ENUM64: {
        const values: { name: string; value: bigint }[] = new Array(vlen);
        const wide = kind === BtfKind.ENUM64;
        for (let i = 0; i < vlen; i++) {
          const e = t + i * (wide ? 12 : 8);
          const eName = this.str(dv.getUint32(e, true), e);
          let value: bigint;
          if (wide) {
            const raw = (BigInt(dv.getUint32(e + 8, true)) << 32n) | BigInt(dv.getUint32(e + 4, true));
            value = kflag ? BigInt.asIntN(64, raw) : raw;
          } else {
            value = kflag ? BigInt(dv.getInt32(e + 4, true)) : BigInt(dv.getUint32(e + 4, true));
          }
          values[i] = { name: eName, value };
        }
        if (![1, 2, 4, 8].includes(sizeOrType)) throw new FormatError(this.source, `enum ${name} has size ${sizeOrType}`, { offset: p + 8 });
        return { kind: 'enum', id, name, size: sizeOrType, signed: kflag, values };
      }
      case BtfKind.FWD:
        return { kind: 'fwd', id, name, union: kflag };
      case BtfKind.TYPEDEF:
        return { kind: 'typedef', id, name, target: this.ref(sizeOrType, p + 8) };
      case BtfKind.VOLATILE:
        return { kind: 'volatile', id, name: '', target: this.ref(sizeOrType, p + 8) };
      case BtfKind.CONST:
        return { kind: 'const', id, name: '', target: this.ref(sizeOrType, p + 8) };
      case BtfKind.RESTRICT:
        return { kind: 'restrict', id, name: '', target: this.ref(sizeOrType, p + 8) };
      case BtfKind.TYPE_TAG:
        return { kind: 'type_tag', id, name, target: this.ref(sizeOrType, p + 8) };
      case BtfKind.FUNC:
        return { kind: 'func', id, name, proto: this.ref(sizeOrType, p + 8), linkage: vlen };
      case BtfKind.FUNC_PROTO: {
        const params: { name: string; type: TypeId }[] = new Array(vlen);
        for (let i = 0; i < vlen; i++) {
          const q = t + i * 8;
          const pName = dv.getUint32(q, true);
          params[i] = { name: pName ? this.str(pName, q) : '', type: this.ref(dv.getUint32(q + 4, true), q + 4) };
        }
        const variadic = vlen > 0 && params[vlen - 1]!.type === 0 && params[vlen - 1]!.name === '';
        return { kind: 'func_proto', id, name: '', ret: this.ref(sizeOrType, p + 8), params, variadic };
      }
      case BtfKind.VAR:
        return { kind: 'var', id, name, type: this.ref(sizeOrType, p + 8), linkage: dv.getUint32(t, true) };
      case BtfKind.DATASEC: {
        const vars: { type: TypeId; offset: number; size: number }[] = new Array(vlen);
        for (let i = 0; i < vlen; i++) {
          const v = t + i * 12;
          vars[i] = { type: this.ref(dv.getUint32(v, true), v), offset: dv.getUint32(v + 4, true), size: dv.getUint32(v + 8, true) };
        }
        return { kind: 'datasec', id, name, size: sizeOrType, vars };
      }
      case BtfKind.FLOAT:
        if (![2, 4, 8, 12, 16].includes(sizeOrType)) throw new FormatError(this.source, `float ${name} has size ${sizeOrType}`, { offset: p + 8 });
        return { kind: 'float', id, name, size: sizeOrType };
      case BtfKind.DECL_TAG:
        return { kind: 'decl_tag', id, name, target: this.ref(sizeOrType, p + 8), component: dv.getInt32(t, true) };
      default:
        throw new FormatError(this.source, `type ${id} has unknown BTF kind ${kind}`, { offset: p + 4 });
    }
  }
}

const VOID: Type = { kind: 'void', id: 0, name: 'void' };

/** Parses a BTF blob (vmlinux, or a module's split BTF with `opts.base`). */
export function parseBtf(bytes: Uint8Array, opts: BtfParseOptions = {}): BtfTypes {
  return new BtfTypes(bytes, opts);
}

/** Parses a BTF blob and wraps it in a TypeDb. */
export function btfTypeDb(bytes: Uint8Array, opts: BtfParseOptions = {}): TypeDb {
  return new TypeDb(parseBtf(bytes, opts));
}
