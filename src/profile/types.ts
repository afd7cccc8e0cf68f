/**
 * The `TypeDb` that answers layout questions over a profile's types (the
 * model is in type-model.ts, C type expressions in c-types.ts):
 * `struct('task_struct')`, `offsetOf('task_struct', 'se.vruntime')`,
 * `hasMember('mm_struct', 'mm_mt')`, `sizeOf`. The pahole-like layout text is
 * presentation and lives in cli/commands/type-layout.ts.
 *
 * Layers above decide how to walk a structure by asking what exists
 * (`hasMember`), never by kernel version (R8).
 */
import { ProfileError } from '../core/errors.js';
import { declareC, parseCType, splitPath } from './c-types.js';
import { ArrayTypeStore, type FieldInfo, type Member, type NewType, type StructType, type EnumType, type Type, type TypeId, type TypeKind, type TypeRef, type TypeStore } from './type-model.js';

export * from './type-model.js';
export { intSpellings, splitPath } from './c-types.js';

const POINTER_SIZE = 8;
/** Bound on typedef/qualifier chains and nesting: hostile BTF may loop. */
const MAX_DEPTH = 64;

/**
 * Answers layout questions over a TypeStore. Lookups throw ProfileError naming
 * the type, the field and the profile source. Field paths are cached per type.
 */
export class TypeDb {
  readonly store: TypeStore;
  private readonly extra: ArrayTypeStore;
  private readonly fieldCache = new Map<TypeId, Map<string, FieldInfo | null>>();
  private readonly sizeCache = new Map<TypeId, number>();
  private readonly resolved = new Map<TypeId, Type>();
  private readonly synth = new Map<string, TypeId>();

  constructor(store: TypeStore) {
    this.store = store;
    this.extra = new ArrayTypeStore(store.source);
  }

  /** The profile source named in errors. */
  get source(): string {
    return this.store.source;
  }

  /** Number of ids, including synthesized pointer/array types. */
  get count(): number {
    return this.store.count + this.extra.count - 1;
  }

  get(id: TypeId): Type {
    if (id < this.store.count) {
      if (id < 0 || !Number.isInteger(id)) throw this.err(`type id ${id} is out of range`);
      return this.store.get(id);
    }
    const t = this.extra.get(id - this.store.count + 1);
    return { ...t, id } as Type;
  }

  /**
   * Strips typedefs and qualifiers (const, volatile, restrict, type tags), and
   * completes a forward declaration with the definition of the same name.
   */
  resolve(id: TypeId): Type {
    const hit = this.resolved.get(id);
    if (hit) return hit;
    const r = this.resolveUncached(id);
    this.resolved.set(id, r);
    return r;
  }

  private resolveUncached(id: TypeId): Type {
    let t = this.get(id);
    for (let i = 0; i < MAX_DEPTH; i++) {
      if (t.kind === 'typedef' || t.kind === 'const' || t.kind === 'volatile' || t.kind === 'restrict' || t.kind === 'type_tag') {
        t = this.get(t.target);
      } else if (t.kind === 'fwd') {
        return this.find(t.name, [t.union ? 'union' : 'struct']) ?? t;
      } else return t;
    }
    throw this.err(`typedef/qualifier chain from type id ${id} is longer than ${MAX_DEPTH} (corrupt profile?)`);
  }

  /** The first type of one of `kinds` named `name`, preferring complete definitions. */
  find(name: string, kinds: readonly TypeKind[]): Type | undefined {
    const ids = this.store.lookup(name);
    for (const kind of kinds) {
      for (const id of ids) {
        const t = this.get(id);
        if (t.kind === kind) return t;
      }
    }
    return undefined;
  }

  /** `struct NAME`; throws ProfileError when the profile has no such struct. */
  struct(name: string): StructType {
    return this.need(name, 'struct') as StructType;
  }

  union(name: string): StructType {
    return this.need(name, 'union') as StructType;
  }

  enum(name: string): EnumType {
    return this.need(name, 'enum') as EnumType;
  }

  typedef(name: string): Extract<Type, { kind: 'typedef' }> {
    return this.need(name, 'typedef') as Extract<Type, { kind: 'typedef' }>;
  }

  /** True when the profile defines `struct NAME` (or union/typedef NAME when `kind` says so). */
  hasType(name: string, kind: 'struct' | 'union' | 'enum' | 'typedef' = 'struct'): boolean {
    return this.find(name, [kind]) !== undefined;
  }

  /**
   * Resolves a struct/union reference: an id, or a name tried as struct, union,
   * then a typedef that resolves to one.
   */
  composite(ref: TypeRef): StructType {
    if (typeof ref === 'number') {
      const t = this.resolve(ref);
      if (t.kind !== 'struct' && t.kind !== 'union') throw this.err(`type id ${ref} (${this.typeName(ref)}) is not a struct or union`, { type: String(ref) });
      return t;
    }
    const t = this.find(ref, ['struct', 'union', 'typedef']);
    if (t) {
      const r = this.resolve(t.id);
      if (r.kind === 'struct' || r.kind === 'union') return r;
    }
    const fwd = this.find(ref, ['fwd']);
    throw this.err(
      fwd ? `struct ${ref} is only declared (forward), not defined` : `struct ${ref} is not defined`,
      { type: ref, hint: 'the kernel may predate or have renamed this structure; check which fields exist with `vmsight types`' },
    );
  }

  /** Where `path` sits inside a struct/union, or undefined when it does not exist. */
  tryField(ref: TypeRef, path: string): FieldInfo | undefined {
    const outer = typeof ref === 'number' ? this.resolve(ref) : this.composite(ref);
    let cache = this.fieldCache.get(outer.id);
    if (!cache) this.fieldCache.set(outer.id, (cache = new Map()));
    const hit = cache.get(path);
    if (hit !== undefined) return hit ?? undefined;
    const f = this.walkPath(outer, path);
    cache.set(path, f ?? null);
    return f;
  }

  /**
   * Like tryField, for any type id (arrays included); '' is the type itself.
   * Returns undefined (never throws) when the path does not exist.
   */
  tryFieldOf(id: TypeId, path: string): FieldInfo | undefined {
    try {
      return this.tryField(id, path);
    } catch (e) {
      if (e instanceof ProfileError) return undefined;
      throw e;
    }
  }

  /** Where `path` ('a.b[2].c', through anonymous members) sits; throws ProfileError when absent. */
  field(ref: TypeRef, path: string): FieldInfo {
    const f = this.tryField(ref, path);
    if (f) return f;
    const name = this.refName(ref);
    throw this.err(`${name} has no member '${path}'`, {
      type: name,
      field: path,
      hint: 'choose the code path by which members exist (TypeDb.hasMember)',
    });
  }

  /** True when the struct/union exists and has `path`. Never throws for a missing type. */
  hasMember(ref: TypeRef, path: string): boolean {
    try {
      return this.tryField(ref, path) !== undefined;
    } catch (e) {
      if (e instanceof ProfileError) return false;
      throw e;
    }
  }

  /** Byte offset of `path` in a struct/union (of the storage unit for bitfields). */
  offsetOf(ref: TypeRef, path: string): number {
    return this.field(ref, path).offset;
  }

  /** Size in bytes of a type (an id, or a struct/union/typedef name). */
  sizeOf(ref: TypeRef): number {
    if (typeof ref === 'string') return this.sizeOfId(this.parse(ref));
    return this.sizeOfId(ref);
  }

  /** Members of an enum by value; undefined when the value has no name. */
  enumName(ref: TypeRef, value: bigint | number): string | undefined {
    const t = typeof ref === 'number' ? this.resolve(ref) : this.enum(ref);
    if (t.kind !== 'enum') throw this.err(`type ${this.refName(ref)} is not an enum`, { type: this.refName(ref) });
    const v = BigInt(value);
    for (const e of t.values) if (e.value === v) return e.name;
    // Unsigned storage of a negative enumerator (or the reverse).
    const mask = (1n << BigInt(t.size * 8)) - 1n;
    for (const e of t.values) if ((e.value & mask) === (v & mask)) return e.name;
    return undefined;
  }

  /** The value of enumerator `name` in any enum of the profile, or undefined. */
  enumerator(enumName: string, name: string): bigint | undefined {
    const t = this.find(enumName, ['enum']);
    if (!t || t.kind !== 'enum') return undefined;
    return t.values.find((v) => v.name === name)?.value;
  }

  /** A pointer type to `target` (found in the store or synthesized once). */
  pointerTo(target: TypeId): TypeId {
    return this.synthesize(`p${target}`, { kind: 'pointer', name: '', target });
  }

  /** An array type of `length` elements (synthesized once). */
  arrayOf(elem: TypeId, length: number): TypeId {
    if (!Number.isInteger(length) || length < 0) throw this.err(`array length ${length} is invalid`);
    return this.synthesize(`a${elem}:${length}`, { kind: 'array', name: '', elem, length });
  }

  /**
   * Parses a C type expression into an id: 'struct list_head', 'task_struct'
   * (tried as struct, union, typedef, base type), 'unsigned long', 'char[65]',
   * 'struct printk_ringbuffer *', 'sys_call_ptr_t[451]'.
   */
  parse(expr: string): TypeId {
    return parseCType(this, expr);
  }

  /** C spelling of a type, e.g. 'struct list_head *', 'char[16]', 'u64'. */
  typeName(id: TypeId): string {
    return declareC(this, id, '').trim();
  }

  /** A C declaration of `name` with type `id`, e.g. 'char comm[16]', 'void (*fn)(int)'. */
  declare(id: TypeId, name: string): string {
    return declareC(this, id, name);
  }

  // ---- internals ----------------------------------------------------------

  private tryResolve(id: TypeId): Type | undefined {
    try {
      return this.resolve(id);
    } catch {
      return undefined;
    }
  }

  /** Bitfield width of a member: kind_flag style (bitSize) or a legacy BTF INT encoding. */
  memberBits(m: Member): { bitSize: number; extraOffset: number } {
    if (m.bitSize) return { bitSize: m.bitSize, extraOffset: 0 };
    const r = this.tryResolve(m.type);
    if (r && r.kind === 'int' && (r.bits !== r.size * 8 || r.bitOffset !== 0) && r.bits > 0) {
      return { bitSize: r.bits, extraOffset: r.bitOffset };
    }
    return { bitSize: 0, extraOffset: 0 };
  }

  private walkPath(outer: Type, path: string): FieldInfo | undefined {
    const steps = splitPath(path);
    if (!steps) throw this.err(`field path '${path}' is malformed`, { field: path });
    let cur: Type = outer;
    let bitOffset = 0;
    let bitSize = 0;
    let type: TypeId = outer.id;
    for (const step of steps) {
      if (bitSize) return undefined; // nothing inside a bitfield
      if (typeof step === 'number') {
        if (cur.kind !== 'array') return undefined;
        if (cur.length > 0 && step >= cur.length) return undefined;
        bitOffset += step * this.sizeOfId(cur.elem) * 8;
        type = cur.elem;
      } else {
        if (cur.kind !== 'struct' && cur.kind !== 'union') return undefined;
        const hit = this.findMember(cur, step, 0);
        if (!hit) return undefined;
        bitOffset += hit.bitOffset;
        const bits = this.memberBits(hit.member);
        bitOffset += bits.extraOffset;
        bitSize = bits.bitSize;
        type = hit.member.type;
      }
      cur = this.resolve(type);
    }
    const size = cur.kind === 'void' || cur.kind === 'fwd' || cur.kind === 'func' || cur.kind === 'func_proto' ? 0 : this.sizeOfId(type);
    const offset = bitSize ? storageOffset(bitOffset, bitSize, size) : bitOffset / 8;
    if (!bitSize && bitOffset % 8 !== 0) return undefined;
    return { path, offset, bitOffset, bitSize, type, size };
  }

  /** Finds a named member, descending into anonymous struct/union members. */
  private findMember(t: StructType, name: string, depth: number, seen = new Set<TypeId>()): { member: Member; bitOffset: number } | undefined {
    // `seen`: a type searched once without a hit never has it (hostile BTF can nest a struct in itself many times).
    if (depth > MAX_DEPTH || seen.has(t.id)) return undefined;
    seen.add(t.id);
    for (const m of t.members) if (m.name === name) return { member: m, bitOffset: m.bitOffset };
    for (const m of t.members) {
      if (m.name !== '') continue;
      const r = this.tryResolve(m.type);
      if (!r || (r.kind !== 'struct' && r.kind !== 'union')) continue;
      const hit = this.findMember(r, name, depth + 1, seen);
      if (hit) return { member: hit.member, bitOffset: m.bitOffset + hit.bitOffset };
    }
    return undefined;
  }

  private sizeOfId(id: TypeId, depth = 0): number {
    const cached = this.sizeCache.get(id);
    if (cached !== undefined) return cached;
    if (depth > MAX_DEPTH) throw this.err(`type id ${id} nests deeper than ${MAX_DEPTH} (corrupt profile?)`);
    const t = this.get(id);
    let size: number;
    switch (t.kind) {
      case 'int':
      case 'float':
      case 'struct':
      case 'union':
      case 'enum':
      case 'datasec':
        size = t.size;
        break;
      case 'pointer':
        size = POINTER_SIZE;
        break;
      case 'array':
        size = t.length * this.sizeOfId(t.elem, depth + 1);
        break;
      case 'typedef':
      case 'const':
      case 'volatile':
      case 'restrict':
      case 'type_tag':
        size = this.sizeOfId(t.target, depth + 1);
        break;
      case 'var':
        size = this.sizeOfId(t.type, depth + 1);
        break;
      case 'fwd': {
        const full = this.resolve(id);
        if (full.kind === 'fwd') throw this.err(`${t.union ? 'union' : 'struct'} ${t.name} is only declared, so its size is unknown`, { type: t.name });
        size = this.sizeOfId(full.id, depth + 1);
        break;
      }
      default:
        throw this.err(`${this.typeName(id)} has no size (kind ${t.kind})`, { type: this.typeName(id) });
    }
    if (!Number.isSafeInteger(size) || size < 0) throw this.err(`type id ${id} has an impossible size ${size}`);
    this.sizeCache.set(id, size);
    return size;
  }

  private need(name: string, kind: 'struct' | 'union' | 'enum' | 'typedef'): Type {
    const t = this.find(name, [kind]);
    if (t) return t;
    throw this.err(`${kind} ${name} is not defined`, { type: `${kind} ${name}` });
  }

  private synthesize(key: string, t: NewType): TypeId {
    const known = this.synth.get(key);
    if (known !== undefined) return known;
    const id = this.extra.add(t) - 1 + this.store.count;
    this.synth.set(key, id);
    return id;
  }

  /** How errors name a type: a struct/union by its bare name (as callers spell it), others in C. */
  private refName(ref: TypeRef): string {
    if (typeof ref === 'string') return ref;
    try {
      const t = this.resolve(ref);
      if ((t.kind === 'struct' || t.kind === 'union') && t.name) return t.name;
      return this.typeName(ref);
    } catch {
      return `type id ${ref}`;
    }
  }

  private err(message: string, extra: { type?: string; field?: string; hint?: string } = {}): ProfileError {
    return new ProfileError(message, { ...extra, tried: [this.store.source] });
  }
}

/** Byte offset of the naturally aligned storage unit holding a bitfield. */
function storageOffset(bitOffset: number, bitSize: number, size: number): number {
  const unit = size > 0 && size <= 8 ? size * 8 : 8;
  let start = Math.floor(bitOffset / unit) * unit;
  if (bitOffset + bitSize > start + unit) start = Math.floor(bitOffset / 8) * 8; // straddles: byte-aligned
  return start / 8;
}
