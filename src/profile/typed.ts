/**
 * Typed access to kernel objects (R6): `typed.obj('task_struct', va)` is a
 * cheap reference; `ref.read()` fetches the whole struct in ONE read and
 * returns a value whose accessors (`u32('pid')`, `ptr('mm')`, `str('comm')`,
 * `bits('in_execve')`, `member('se')`, `obj('mm')`) decode from those bytes
 * and never touch memory again — except the ones that follow a pointer
 * (`obj`, `deref`, `cstr`), which say so.
 *
 * Field paths: 'a.b[2].c', through anonymous struct/union members. A missing
 * type or field throws ProfileError naming the type, field and profile source.
 *
 * @example
 * const typed = new Typed(db, kernelSpace);
 * const task = typed.obj('task_struct', initTaskVa).read();
 * task.u32('pid'); task.str('comm'); task.obj('mm')?.read().u64('arg_start');
 * typed.containerOf(next, 'task_struct', 'tasks');
 *
 * Longer than ~400 lines on purpose: the reference/value model (ObjRef,
 * ObjValue) and its accessors are one API; splitting accessors by width would
 * scatter one decoding rule.
 */
import { ProfileError, ShortReadError } from '../core/errors.js';
import { splitPath, type FieldInfo, type Type, type TypeDb, type TypeId, type TypeRef } from './types.js';

/** What typed access reads through: a kernel (or process) virtual address space. Throws FaultError. */
export interface VirtualMemory {
  read(va: bigint, len: number): Uint8Array;
  /** An object's bytes to decode in place: a view of guest memory where it can be one, else what `read` gives. */
  readInPlace?(va: bigint, len: number): Uint8Array;
  /** False when nothing changes the memory while it is read (an image, a paused guest): a second look is then the same. */
  readonly changesUnderUs?: boolean;
}

export interface ReadOptions {
  /**
   * Copy the bytes so the value is a stable snapshot. Without it the value may
   * be a live view of mapped guest memory (zero-copy) that changes under it.
   */
  copy?: boolean;
}

const MASK64 = (1n << 64n) - 1n;

/**
 * Told which bytes of the objects read are used: an optimistic pass watches
 * only those for change, not every byte of a whole-struct read (a task's FPU
 * state and run-time statistics change all the time and are never decoded).
 */
export interface FieldRecorder {
  /** A whole object is fetched by `fetch`: its bytes need a copy to compare, not a watch. */
  fetching<T>(fetch: () => T): T;
  /**
   * `len` bytes at `off` of the object at `base` were decoded: a link when they may decide what is read next
   * (a pointer, a whole object's bytes), a value when they only go into a result (linux/page-recorder.ts).
   * The object's address and an offset, not one address: a recorder translates an object's pages once.
   */
  used(base: bigint, off: number, len: number, link: boolean): void;
}

/** Entry point: a TypeDb plus the memory to read objects from. */
export class Typed {
  readonly db: TypeDb;
  readonly mem: VirtualMemory;
  /** Type names already resolved (the TypeDb never changes under us). */
  private readonly ids = new Map<string, TypeId>();
  /** Set while an optimistic pass validates a run (linux/pass.ts). */
  fields: FieldRecorder | undefined;

  constructor(db: TypeDb, mem: VirtualMemory) {
    this.db = db;
    this.mem = mem;
  }

  /**
   * A reference to an object of `type` at `va` (no read). `type` is a
   * struct/union name ('task_struct'), a C type expression
   * ('struct list_head', 'unsigned long[4]') or a type id.
   */
  obj(type: TypeRef, va: bigint): ObjRef {
    return new ObjRef(this, this.typeId(type), va);
  }

  /**
   * container_of(): the object of `type` whose `member` (a path) lives at `va`.
   * @param va `member *` address
   */
  containerOf(va: bigint, type: string, member: string): ObjRef {
    const id = this.typeId(type);
    const f = this.db.field(id, member);
    return new ObjRef(this, id, (va - BigInt(f.offset)) & MASK64);
  }

  /** True when struct/union `type` exists and (when given) has `path`. Cheap and cached. */
  has(type: string, path?: string): boolean {
    if (path === undefined) return this.db.hasType(type, 'struct') || this.db.hasType(type, 'union');
    return this.db.hasMember(type, path);
  }

  /** Where `path` sits in `type` (throws ProfileError when absent). */
  field(type: TypeRef, path: string): FieldInfo {
    return this.db.field(type, path);
  }

  /** Resolves a type reference to an id (struct/union names first, then any C type expression). */
  typeId(type: TypeRef): TypeId {
    if (typeof type === 'number') return type;
    const known = this.ids.get(type);
    if (known !== undefined) return known;
    let id: TypeId | undefined;
    if (/^[A-Za-z_]\w*$/.test(type)) id = this.db.find(type, ['struct', 'union', 'typedef'])?.id;
    id ??= this.db.parse(type);
    this.ids.set(type, id);
    return id;
  }
}

/** A typed reference: a type and an address. Reading it is explicit. */
export class ObjRef {
  readonly typed: Typed;
  readonly type: TypeId;
  readonly address: bigint;

  constructor(typed: Typed, type: TypeId, address: bigint) {
    this.typed = typed;
    this.type = type;
    this.address = address;
  }

  /** C spelling of the type, e.g. 'struct task_struct'. */
  get typeName(): string {
    return this.typed.db.typeName(this.type);
  }

  /** Size of the object in bytes. */
  get size(): number {
    return this.typed.db.sizeOf(this.type);
  }

  /** Reads the whole object in one read. */
  read(opts: ReadOptions = {}): ObjValue {
    const size = this.size;
    const rec = this.typed.fields;
    // Decoded in place when it can be (opts.copy makes the stable snapshot).
    let bytes = rec === undefined ? this.fetch(size) : rec.fetching(() => this.fetch(size));
    if (bytes.length < size) {
      throw new ShortReadError('virtual', this.address, size, bytes.length, this.typeName);
    }
    if (opts.copy) bytes = bytes.slice(0, size);
    return new ObjValue(this.typed, this.type, this.address, bytes);
  }

  private fetch(size: number): Uint8Array {
    const mem = this.typed.mem;
    return mem.readInPlace !== undefined ? mem.readInPlace(this.address, size) : mem.read(this.address, size);
  }

  /** Address of a field (no read). */
  addrOf(path: string): bigint {
    return (this.address + BigInt(this.typed.db.field(this.type, path).offset)) & MASK64;
  }

  /** A reference to an embedded member (no read), e.g. `task.member('se')`. */
  member(path: string): ObjRef {
    const f = this.typed.db.field(this.type, path);
    if (f.bitSize) throw bitfieldAsObject(this.typed.db, this.type, path);
    return new ObjRef(this.typed, f.type, (this.address + BigInt(f.offset)) & MASK64);
  }

  /** The same address seen as another type. */
  cast(type: TypeRef): ObjRef {
    return new ObjRef(this.typed, this.typed.typeId(type), this.address);
  }

  /** Reads only one field (a small read) and returns it as a value: `ref.field('pid').u32()`. */
  field(path: string): ObjValue {
    const f = this.typed.db.field(this.type, path);
    const len = Math.max(f.size, 1);
    const bytes = this.typed.mem.read((this.address + BigInt(f.offset)) & MASK64, len);
    if (f.bitSize) {
      // Keep the bitfield addressable: wrap the storage unit as the outer type's window.
      return new ObjValue(this.typed, this.type, this.address, bytes, f.offset);
    }
    return new ObjValue(this.typed, f.type, (this.address + BigInt(f.offset)) & MASK64, bytes);
  }
}

/**
 * A snapshot of an object's bytes. Accessors take a field path relative to
 * this value ('' or omitted = the value itself) and decode without reading.
 */
export class ObjValue {
  readonly typed: Typed;
  readonly type: TypeId;
  readonly address: bigint;
  private readonly b: Uint8Array;
  /** Byte offset of `bytes[0]` inside the object (non-zero only for single-field reads). */
  private readonly base: number;
  private view: DataView | undefined;

  constructor(typed: Typed, type: TypeId, address: bigint, bytes: Uint8Array, base = 0) {
    this.typed = typed;
    this.type = type;
    this.address = address;
    this.b = bytes;
    this.base = base;
  }

  /** The object's bytes (all of them count as used). */
  get bytes(): Uint8Array {
    this.use(0, this.b.length, true);
    return this.b;
  }

  get typeName(): string {
    return this.typed.db.typeName(this.type);
  }

  /** A reference to this object (to re-read it later). */
  ref(): ObjRef {
    return new ObjRef(this.typed, this.type, this.address);
  }

  /** True when this value's type has `path`. */
  has(path: string): boolean {
    return this.typed.db.tryFieldOf(this.type, path) !== undefined;
  }

  u8(path = ''): number {
    return this.dv().getUint8(this.at(path, 1));
  }
  u16(path = ''): number {
    return this.dv().getUint16(this.at(path, 2), true);
  }
  u32(path = ''): number {
    return this.dv().getUint32(this.at(path, 4), true);
  }
  u64(path = ''): bigint {
    return this.dv().getBigUint64(this.at(path, 8), true);
  }
  s8(path = ''): number {
    return this.dv().getInt8(this.at(path, 1));
  }
  s16(path = ''): number {
    return this.dv().getInt16(this.at(path, 2), true);
  }
  s32(path = ''): number {
    return this.dv().getInt32(this.at(path, 4), true);
  }
  s64(path = ''): bigint {
    return this.dv().getBigInt64(this.at(path, 8), true);
  }

  /** A pointer (or unsigned long) field as an address. */
  ptr(path = ''): bigint {
    const f = this.info(path);
    const r = this.typed.db.resolve(f.type);
    if (f.bitSize || f.size !== 8 || (r.kind !== 'pointer' && r.kind !== 'int' && r.kind !== 'enum')) {
      throw this.fieldErr(path, `is ${this.typed.db.typeName(f.type)}, not a pointer`);
    }
    this.check(f.offset - this.base, 8, path);
    this.use(f.offset - this.base, 8, true);
    return this.dv().getBigUint64(f.offset - this.base, true);
  }

  /**
   * Any integer, enum, bool or pointer field (bitfields included), signed as
   * its type says, as a bigint.
   */
  int(path = ''): bigint {
    const f = this.info(path);
    const r = this.typed.db.resolve(f.type);
    const signed = (r.kind === 'int' && r.signed) || (r.kind === 'enum' && r.signed);
    if (r.kind !== 'int' && r.kind !== 'enum' && r.kind !== 'pointer') {
      throw this.fieldErr(path, `is ${this.typed.db.typeName(f.type)}, not an integer`);
    }
    if (f.bitSize) return this.extractBits(f, signed);
    const o = f.offset - this.base;
    this.check(o, f.size, path);
    this.use(o, f.size, r.kind === 'pointer');
    const dv = this.dv();
    switch (f.size) {
      case 1:
        return BigInt(signed ? dv.getInt8(o) : dv.getUint8(o));
      case 2:
        return BigInt(signed ? dv.getInt16(o, true) : dv.getUint16(o, true));
      case 4:
        return BigInt(signed ? dv.getInt32(o, true) : dv.getUint32(o, true));
      case 8:
        return signed ? dv.getBigInt64(o, true) : dv.getBigUint64(o, true);
      default:
        throw this.fieldErr(path, `has an integer size of ${f.size} bytes`);
    }
  }

  /** `int()` as a number; throws when it does not fit in a double exactly. */
  num(path = ''): number {
    const v = this.int(path);
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
      throw this.fieldErr(path, `value ${v} does not fit in a number; use int()`);
    }
    return Number(v);
  }

  /** A bitfield (or any integer) field, unsigned unless its type is signed. */
  bits(path: string): bigint {
    return this.int(path);
  }

  bool(path = ''): boolean {
    return this.int(path) !== 0n;
  }

  /** The enumerator name of an enum-typed field (undefined for a value with no name). */
  enumName(path = ''): string | undefined {
    const f = this.info(path);
    const r = this.typed.db.resolve(f.type);
    if (r.kind !== 'enum') throw this.fieldErr(path, `is ${this.typed.db.typeName(f.type)}, not an enum`);
    return this.typed.db.enumName(r.id, this.int(path));
  }

  /** A char array field as a string, up to its first NUL. */
  str(path = ''): string {
    const f = this.info(path);
    const r = this.typed.db.resolve(f.type);
    if (r.kind !== 'array') throw this.fieldErr(path, `is ${this.typed.db.typeName(f.type)}, not a char array`);
    const b = this.raw(path);
    const end = b.indexOf(0);
    return Buffer.from(b.buffer, b.byteOffset, end < 0 ? b.length : end).toString('utf8');
  }

  /** The raw bytes of a field (a view into this value). */
  raw(path = ''): Uint8Array {
    const f = this.info(path);
    if (f.bitSize) throw this.fieldErr(path, 'is a bitfield; use bits()');
    const o = f.offset - this.base;
    this.check(o, f.size, path);
    this.use(o, f.size, false);
    return this.b.subarray(o, o + f.size);
  }

  /** An embedded struct/union/array member as a value (no read). */
  member(path: string): ObjValue {
    const f = this.info(path);
    if (f.bitSize) throw bitfieldAsObject(this.typed.db, this.type, path);
    const o = f.offset - this.base;
    this.check(o, f.size, path);
    return new ObjValue(this.typed, f.type, (this.address + BigInt(f.offset)) & MASK64, this.b.subarray(o, o + f.size));
  }

  /** Number of elements of an array field (0 for a flexible array). */
  length(path = ''): number {
    const r = this.typed.db.resolve(this.info(path).type);
    if (r.kind !== 'array') throw this.fieldErr(path, 'is not an array');
    return r.length;
  }

  /** Element `i` of an array field as a value (no read). */
  elem(path: string, i: number): ObjValue {
    return this.member(`${path}[${i}]`);
  }

  /** All elements of a (fixed-length) array field as values (no read). */
  array(path: string): ObjValue[] {
    const n = this.length(path);
    const out: ObjValue[] = [];
    for (let i = 0; i < n; i++) out.push(this.elem(path, i));
    return out;
  }

  /** Guest-virtual address of a field. */
  addrOf(path: string): bigint {
    return (this.address + BigInt(this.info(path).offset)) & MASK64;
  }

  /**
   * Follows a pointer field to a typed reference (no read yet); null for a
   * NULL pointer. `as` overrides the pointee type (for `void *` fields).
   */
  obj(path: string, as?: TypeRef): ObjRef | null {
    const f = this.info(path);
    const r = this.typed.db.resolve(f.type);
    if (r.kind !== 'pointer' && as === undefined) throw this.fieldErr(path, `is ${this.typed.db.typeName(f.type)}, not a pointer`);
    const va = this.ptr(path);
    if (va === 0n) return null;
    const target = as !== undefined ? this.typed.typeId(as) : (r as Extract<Type, { kind: 'pointer' }>).target;
    return new ObjRef(this.typed, target, va);
  }

  /**
   * Follows a path through pointers, e.g. `task.deref('mm.arg_start')`:
   * each pointer hop reads 8 bytes, the final field is read alone (this
   * reads memory). Returns null when a pointer on the way is NULL. The last
   * step must not be a bitfield (deref its struct, then use bits()).
   */
  deref(path: string): ObjValue | null {
    const steps = splitPath(path);
    if (!steps || steps.length === 0) throw this.fieldErr(path, 'is not a valid path');
    const db = this.typed.db;
    let type = this.type;
    let addr = this.address;
    let local: ObjValue | null = this; // bytes available without reading
    let prefix = '';
    for (let i = 0; i < steps.length; i++) {
      const step = steps[i]!;
      const seg = typeof step === 'number' ? `[${step}]` : prefix ? `.${step}` : step;
      const cur = db.resolve(db.tryFieldOf(type, prefix)?.type ?? type);
      if (cur.kind === 'pointer' && typeof step === 'string') {
        // Hop: read the pointer value, continue at the pointee.
        const va = local ? local.ptr(prefix) : readU64(this.typed, (addr + BigInt(db.field(type, prefix).offset)) & MASK64);
        if (va === 0n) return null;
        type = cur.target;
        addr = va;
        local = null;
        prefix = step;
        continue;
      }
      prefix += seg;
    }
    if (db.field(type, prefix).bitSize) throw bitfieldAsObject(db, type, prefix);
    if (local) return local.member(prefix);
    return new ObjRef(this.typed, type, addr).field(prefix);
  }

  /** Reads a NUL-terminated string through a `char *` field (this reads memory). */
  cstr(path: string, max = 256): string | null {
    const va = this.ptr(path);
    if (va === 0n) return null;
    const b = this.typed.mem.read(va, max);
    const end = b.indexOf(0);
    return Buffer.from(b.buffer, b.byteOffset, end < 0 ? b.length : end).toString('utf8');
  }

  // ---- internals ----------------------------------------------------------

  private info(path: string): FieldInfo {
    if (path === '') {
      const size = this.b.length;
      return { path, offset: this.base, bitOffset: this.base * 8, bitSize: 0, type: this.type, size: Math.min(size, this.typed.db.sizeOf(this.type)) };
    }
    return this.typed.db.field(this.type, path);
  }

  /** Byte offset into `bytes` for a `width`-byte read of `path`, checked. */
  private at(path: string, width: number): number {
    const f = this.info(path);
    if (f.bitSize) throw this.fieldErr(path, `is a ${f.bitSize}-bit bitfield; use bits()`);
    if (width > f.size) throw this.fieldErr(path, `is ${f.size} bytes (${this.typed.db.typeName(f.type)}), cannot read ${width}`);
    const o = f.offset - this.base;
    this.check(o, width, path);
    if (this.typed.fields !== undefined) this.use(o, width, this.typed.db.resolve(f.type).kind === 'pointer');
    return o;
  }

  /** Tells the field recorder (when one is set) that bytes [o, o+len) of this value were decoded, as a link or a value. */
  private use(o: number, len: number, link: boolean): void {
    const rec = this.typed.fields;
    if (rec !== undefined && len > 0) rec.used(this.address, this.base + o, len, link);
  }

  private extractBits(f: FieldInfo, signed: boolean): bigint {
    const first = Math.floor(f.bitOffset / 8) - this.base;
    const last = Math.floor((f.bitOffset + f.bitSize - 1) / 8) - this.base;
    this.check(first, last - first + 1, f.path);
    this.use(first, last - first + 1, false);
    let v = 0n;
    for (let i = last; i >= first; i--) v = (v << 8n) | BigInt(this.b[i]!);
    v = (v >> BigInt(f.bitOffset % 8)) & ((1n << BigInt(f.bitSize)) - 1n);
    if (signed && f.bitSize > 0 && v >> BigInt(f.bitSize - 1)) v -= 1n << BigInt(f.bitSize);
    return v;
  }

  private check(o: number, len: number, path: string): void {
    if (o < 0 || o + len > this.b.length) {
      throw this.fieldErr(path, `lies outside the ${this.b.length} bytes read (offset ${o + this.base})`);
    }
  }

  private dv(): DataView {
    return (this.view ??= new DataView(this.b.buffer, this.b.byteOffset, this.b.byteLength));
  }

  private fieldErr(path: string, what: string): ProfileError {
    const tn = this.typeName;
    return new ProfileError(`${tn} field '${path}' ${what}`, { type: tn, field: path, tried: [this.typed.db.source] });
  }
}

function readU64(typed: Typed, va: bigint): bigint {
  const b = typed.mem.read(va, 8);
  return new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true);
}

function bitfieldAsObject(db: TypeDb, type: TypeId, path: string): ProfileError {
  const tn = db.typeName(type);
  return new ProfileError(`${tn} field '${path}' is a bitfield, not an object; use bits()`, { type: tn, field: path, tried: [db.source] });
}
