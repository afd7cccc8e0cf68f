/**
 * The type model every profile fills (BTF from the guest or a file, or a
 * Volatility ISF) and the `TypeDb` that answers layout questions over it:
 * `struct('task_struct')`, `offsetOf('task_struct', 'se.vruntime')`,
 * `hasMember('mm_struct', 'mm_mt')`, `sizeOf`, C type expressions, and a
 * pahole-like layout text. Type ids are small integers; 0 is `void`.
 *
 * Layers above decide how to walk a structure by asking what exists
 * (`hasMember`), never by kernel version (R8).
 */
import { ProfileError } from '../core/errors.js';

/** A type's index in its TypeDb. 0 is `void`. */
export type TypeId = number;

export interface Member {
  /** '' for an anonymous struct/union member. */
  readonly name: string;
  readonly type: TypeId;
  /** Offset in bits from the start of the enclosing struct/union. */
  readonly bitOffset: number;
  /** Width in bits for a bitfield, 0 otherwise. */
  readonly bitSize: number;
}

export interface EnumValue {
  readonly name: string;
  readonly value: bigint;
}

export interface FuncParam {
  readonly name: string;
  /** 0 with `variadic` for a trailing `...`. */
  readonly type: TypeId;
}

export interface DatasecVar {
  readonly type: TypeId;
  readonly offset: number;
  readonly size: number;
}

/** A decoded type. `name` is '' for anonymous types. */
export type Type =
  | { readonly kind: 'void'; readonly id: TypeId; readonly name: 'void' }
  | {
      readonly kind: 'int';
      readonly id: TypeId;
      readonly name: string;
      readonly size: number;
      readonly signed: boolean;
      readonly char: boolean;
      readonly bool: boolean;
      /** BTF INT encoding: value bits and bit offset inside the storage (legacy bitfields). */
      readonly bits: number;
      readonly bitOffset: number;
    }
  | { readonly kind: 'float'; readonly id: TypeId; readonly name: string; readonly size: number }
  | { readonly kind: 'pointer'; readonly id: TypeId; readonly name: ''; readonly target: TypeId }
  | {
      readonly kind: 'array';
      readonly id: TypeId;
      readonly name: '';
      readonly elem: TypeId;
      readonly length: number;
    }
  | StructType
  | EnumType
  | { readonly kind: 'fwd'; readonly id: TypeId; readonly name: string; readonly union: boolean }
  | { readonly kind: 'typedef'; readonly id: TypeId; readonly name: string; readonly target: TypeId }
  | {
      readonly kind: 'const' | 'volatile' | 'restrict';
      readonly id: TypeId;
      readonly name: '';
      readonly target: TypeId;
    }
  | { readonly kind: 'type_tag'; readonly id: TypeId; readonly name: string; readonly target: TypeId }
  | {
      readonly kind: 'func';
      readonly id: TypeId;
      readonly name: string;
      readonly proto: TypeId;
      /** 0 static, 1 global, 2 extern. */
      readonly linkage: number;
    }
  | {
      readonly kind: 'func_proto';
      readonly id: TypeId;
      readonly name: '';
      readonly ret: TypeId;
      readonly params: readonly FuncParam[];
      readonly variadic: boolean;
    }
  | { readonly kind: 'var'; readonly id: TypeId; readonly name: string; readonly type: TypeId; readonly linkage: number }
  | {
      readonly kind: 'datasec';
      readonly id: TypeId;
      readonly name: string;
      readonly size: number;
      readonly vars: readonly DatasecVar[];
    }
  | {
      readonly kind: 'decl_tag';
      readonly id: TypeId;
      readonly name: string;
      readonly target: TypeId;
      /** -1 when the tag applies to the target itself, else the member/param index. */
      readonly component: number;
    };

export interface StructType {
  readonly kind: 'struct' | 'union';
  readonly id: TypeId;
  readonly name: string;
  readonly size: number;
  readonly members: readonly Member[];
}

export interface EnumType {
  readonly kind: 'enum';
  readonly id: TypeId;
  readonly name: string;
  readonly size: number;
  readonly signed: boolean;
  readonly values: readonly EnumValue[];
}

export type TypeKind = Type['kind'];

/** A type without its id, as a store builder adds it. */
export type NewType = Type extends infer T ? (T extends { id: TypeId } ? Omit<T, 'id'> : never) : never;

/**
 * Where types come from. BTF decodes lazily; ISF and synthesized types live in
 * an `ArrayTypeStore`. Ids run from 0 (void) to `count - 1`.
 */
export interface TypeStore {
  /** Names this profile source in errors, e.g. 'btf:memory', 'isf:/tmp/x.json'. */
  readonly source: string;
  readonly count: number;
  /** Decodes one type; throws FormatError when the underlying data is corrupt. */
  get(id: TypeId): Type;
  /** Ids of named types (struct, union, enum, typedef, fwd, int, float, var) with this name, lowest id first. */
  lookup(name: string): readonly TypeId[];
}

/** A growable in-memory store (ISF import, tests, synthesized pointer/array types). */
export class ArrayTypeStore implements TypeStore {
  readonly source: string;
  private readonly types: Type[] = [{ kind: 'void', id: 0, name: 'void' }];
  private readonly byName = new Map<string, TypeId[]>();

  constructor(source: string) {
    this.source = source;
  }

  get count(): number {
    return this.types.length;
  }

  get(id: TypeId): Type {
    const t = this.types[id];
    if (!t) throw new ProfileError(`type id ${id} is out of range (${this.types.length} types in ${this.source})`);
    return t;
  }

  lookup(name: string): readonly TypeId[] {
    return this.byName.get(name) ?? [];
  }

  /** Appends a type and returns its id. */
  add(t: NewType): TypeId {
    const id = this.types.length;
    this.types.push({ ...t, id } as Type);
    if (t.name && NAMED_KINDS.has(t.kind)) {
      const ids = this.byName.get(t.name);
      if (ids) ids.push(id);
      else this.byName.set(t.name, [id]);
    }
    return id;
  }

  /** Replaces a placeholder added earlier (forward references while importing). */
  set(id: TypeId, t: NewType): void {
    if (id <= 0 || id >= this.types.length) throw new ProfileError(`type id ${id} is out of range in ${this.source}`);
    this.types[id] = { ...t, id } as Type;
  }
}

/** Kinds that the name index covers. */
export const NAMED_KINDS: ReadonlySet<TypeKind> = new Set<TypeKind>([
  'struct',
  'union',
  'enum',
  'typedef',
  'fwd',
  'int',
  'float',
  'var',
]);

/** Where a (possibly nested) field sits inside a type. */
export interface FieldInfo {
  /** The path as asked, e.g. 'se.vruntime' or 'cpus_mask.bits[0]'. */
  readonly path: string;
  /** Byte offset of the field's storage from the start of the outer type. */
  readonly offset: number;
  /** Absolute bit offset from the start of the outer type. */
  readonly bitOffset: number;
  /** Width in bits for a bitfield, 0 otherwise. */
  readonly bitSize: number;
  /** Declared type (may be a typedef or qualified). */
  readonly type: TypeId;
  /** Byte size of the declared type (for a bitfield: of its underlying integer). */
  readonly size: number;
}

/** A reference to a struct/union: its name, or its id. */
export type TypeRef = string | TypeId;

const POINTER_SIZE = 8;
/** Bound on typedef/qualifier chains and nesting: hostile BTF may loop. */
const MAX_DEPTH = 64;
/** Bound on layout text (anonymous members are expanded inline). */
const MAX_LAYOUT_LINES = 20_000;

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
    let s = expr.trim();
    const dims: number[] = [];
    for (let m = /\[(\d*)\]\s*$/.exec(s); m; m = /\[(\d*)\]\s*$/.exec(s)) {
      dims.unshift(m[1] === '' ? 0 : Number(m[1]));
      s = s.slice(0, m.index).trim();
    }
    let stars = 0;
    while (s.endsWith('*')) {
      stars++;
      s = s.slice(0, -1).trim();
    }
    s = s.replace(/\b(const|volatile)\b/g, '').replace(/\s+/g, ' ').trim();
    let id: TypeId;
    const tagged = /^(struct|union|enum) (\S+)$/.exec(s);
    if (tagged) {
      const kind = tagged[1] as 'struct' | 'union' | 'enum';
      const t = this.find(tagged[2]!, [kind, 'fwd']);
      if (!t) throw this.err(`${kind} ${tagged[2]} is not defined`, { type: `${kind} ${tagged[2]}` });
      id = t.id;
    } else if (s === 'void') {
      id = 0;
    } else {
      let t = this.find(s, ['struct', 'union', 'typedef', 'int', 'float', 'enum', 'fwd']);
      for (const alt of intSpellings(s)) t ??= this.find(alt, ['int']);
      if (!t) throw this.err(`type '${s}' is not defined`, { type: s });
      id = t.id;
    }
    for (let i = 0; i < stars; i++) id = this.pointerTo(id);
    for (let i = dims.length - 1; i >= 0; i--) id = this.arrayOf(id, dims[i]!);
    return id;
  }

  /** C spelling of a type, e.g. 'struct list_head *', 'char[16]', 'u64'. */
  typeName(id: TypeId): string {
    return this.declare(id, '').trim();
  }

  /** A C declaration of `name` with type `id`, e.g. 'char comm[16]', 'void (*fn)(int)'. */
  declare(id: TypeId, name: string, depth = 0, budget = { steps: 4096 }): string {
    if (depth > MAX_DEPTH || --budget.steps < 0) return `... ${name}`;
    const t = this.get(id);
    const sp = name ? (name.startsWith('[') ? name : ` ${name}`) : '';
    switch (t.kind) {
      case 'void':
      case 'int':
      case 'float':
      case 'typedef':
        return `${t.name}${sp}`;
      case 'struct':
      case 'union':
      case 'enum':
        return `${t.kind} ${t.name || '{...}'}${sp}`;
      case 'fwd':
        return `${t.union ? 'union' : 'struct'} ${t.name}${sp}`;
      case 'pointer': {
        const target = this.get(t.target);
        const inner = target.kind === 'array' || target.kind === 'func_proto' ? `(*${name})` : `*${name}`;
        return this.declare(t.target, inner, depth + 1, budget);
      }
      case 'array':
        return this.declare(t.elem, `${name}[${t.length}]`, depth + 1, budget);
      case 'const':
      case 'volatile':
      case 'restrict': {
        const target = this.get(t.target);
        if (target.kind === 'pointer') return this.declare(t.target, `${t.kind}${sp}`, depth + 1, budget);
        return `${t.kind} ${this.declare(t.target, name, depth + 1, budget)}`;
      }
      case 'type_tag':
        return this.declare(t.target, name, depth + 1, budget);
      case 'func_proto': {
        const params = t.params.map((p) => (p.type === 0 && t.variadic ? '...' : this.declare(p.type, p.name, depth + 1, budget).trim()));
        return this.declare(t.ret, `${name}(${params.join(', ') || 'void'})`, depth + 1, budget);
      }
      case 'func':
        return this.declare(t.proto, t.name, depth + 1, budget);
      case 'var':
        return this.declare(t.type, t.name, depth + 1, budget);
      case 'datasec':
        return `SEC("${t.name}")${sp}`;
      case 'decl_tag':
        return `__attribute__((btf_decl_tag("${t.name}")))${sp}`;
    }
  }

  /**
   * A pahole-like layout of a struct/union: each member with its offset and
   * size (bitfields as byte:bit), anonymous members expanded, holes and
   * padding flagged, and a summary line.
   */
  layout(ref: TypeRef): string {
    const t = this.composite(ref);
    const lines: string[] = [];
    const stats = { holes: 0, holeBytes: 0, bitHoles: 0 };
    lines.push(`${t.kind} ${t.name || '{...}'} {`);
    const end = this.layoutMembers(t, 0, 1, lines, stats);
    if (lines.length > MAX_LAYOUT_LINES) lines.splice(MAX_LAYOUT_LINES, lines.length, '\t/* ... layout truncated ... */');
    const pad = t.size - Math.ceil(end / 8);
    lines.push('');
    lines.push(`\t/* size: ${t.size}, members: ${t.members.length}${stats.holes ? `, holes: ${stats.holes}, sum holes: ${stats.holeBytes}` : ''}${pad > 0 ? `, padding: ${pad}` : ''} */`);
    lines.push('};');
    return lines.join('\n');
  }

  // ---- internals ----------------------------------------------------------

  private layoutMembers(t: StructType, base: number, indent: number, lines: string[], stats: { holes: number; holeBytes: number }): number {
    const tab = '\t'.repeat(indent);
    let cursor = base; // bits
    let maxEnd = base;
    for (const m of t.members) {
      if (lines.length > MAX_LAYOUT_LINES) break;
      const abs = base + m.bitOffset;
      const info = this.memberBits(m);
      const bitOff = abs + info.extraOffset;
      if (t.kind === 'struct' && bitOff > cursor && info.bitSize === 0) {
        const holeBits = bitOff - cursor;
        if (holeBits >= 8) {
          stats.holes++;
          stats.holeBytes += Math.floor(holeBits / 8);
          lines.push(`${tab}/* XXX ${Math.floor(holeBits / 8)} byte${holeBits >= 16 ? 's' : ''} hole, try to pack */`);
        } else lines.push(`${tab}/* XXX ${holeBits} bit${holeBits > 1 ? 's' : ''} hole */`);
      }
      let size = 0;
      try {
        size = this.sizeOfId(m.type);
      } catch {
        size = 0;
      }
      const r = this.tryResolve(m.type);
      let endBits: number;
      if (m.name === '' && r && (r.kind === 'struct' || r.kind === 'union') && indent < 8) {
        lines.push(`${tab}${r.kind} {`);
        this.layoutMembers(r, bitOff, indent + 1, lines, stats);
        lines.push(`${tab}};${' '.repeat(Math.max(1, 40 - indent * 8))}/* ${pos(bitOff)} ${size} */`);
        endBits = bitOff + size * 8;
      } else if (info.bitSize) {
        const decl = `${this.declare(m.type, m.name)}:${info.bitSize};`;
        const byte = Math.floor(bitOff / 8);
        lines.push(`${tab}${pad(decl, 48 - indent * 8)} /* ${String(byte).padStart(5)}:${String(bitOff % 8).padStart(2)} ${String(size).padStart(4)} */`);
        endBits = bitOff + info.bitSize;
      } else {
        const decl = `${this.declare(m.type, m.name)};`;
        lines.push(`${tab}${pad(decl, 48 - indent * 8)} /* ${pos(bitOff)} ${String(size).padStart(4)} */`);
        endBits = bitOff + size * 8;
      }
      if (t.kind === 'struct') cursor = Math.max(cursor, endBits);
      maxEnd = Math.max(maxEnd, endBits);
    }
    return maxEnd;
  }

  private tryResolve(id: TypeId): Type | undefined {
    try {
      return this.resolve(id);
    } catch {
      return undefined;
    }
  }

  /** Bitfield width of a member: kind_flag style (bitSize) or a legacy BTF INT encoding. */
  private memberBits(m: Member): { bitSize: number; extraOffset: number } {
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

/**
 * Other spellings of a C integer type name: GCC's DWARF/BTF says
 * 'long unsigned int' where C code says 'unsigned long'.
 */
export function intSpellings(name: string): string[] {
  const words = name.split(' ');
  if (!words.every((w) => ['unsigned', 'signed', 'short', 'long', 'int', 'char'].includes(w))) return [];
  const unsigned = words.includes('unsigned');
  const longs = words.filter((w) => w === 'long').length;
  const base = words.includes('char') ? 'char' : words.includes('short') ? 'short' : longs === 2 ? 'long long' : longs === 1 ? 'long' : 'int';
  if (base === 'char') return unsigned ? ['unsigned char'] : words.includes('signed') ? ['signed char'] : ['char'];
  if (base === 'int') return unsigned ? ['unsigned int', 'unsigned'] : ['int', 'signed int'];
  return unsigned ? [`${base} unsigned int`, `unsigned ${base} int`, `unsigned ${base}`] : [`${base} int`, `signed ${base} int`, base, `signed ${base}`];
}

/** Splits 'a.b[2].c' into ['a', 'b', 2, 'c']; undefined when malformed. */
export function splitPath(path: string): (string | number)[] | undefined {
  const out: (string | number)[] = [];
  const re = /\s*(?:\.?\s*([A-Za-z_$][\w$]*)|\[\s*(\d+)\s*\])/y;
  let i = 0;
  if (path === '') return out;
  while (i < path.length) {
    re.lastIndex = i;
    const m = re.exec(path);
    if (!m || (m[1] !== undefined && out.length === 0 && path[i] === '.')) return undefined;
    out.push(m[1] !== undefined ? m[1] : Number(m[2]));
    i = re.lastIndex;
  }
  return out;
}

/** Byte offset of the naturally aligned storage unit holding a bitfield. */
function storageOffset(bitOffset: number, bitSize: number, size: number): number {
  const unit = size > 0 && size <= 8 ? size * 8 : 8;
  let start = Math.floor(bitOffset / unit) * unit;
  if (bitOffset + bitSize > start + unit) start = Math.floor(bitOffset / 8) * 8; // straddles: byte-aligned
  return start / 8;
}

function pos(bits: number): string {
  return String(Math.floor(bits / 8)).padStart(6);
}

function pad(s: string, n: number): string {
  return s.length >= n ? s : s + ' '.repeat(n - s.length);
}
