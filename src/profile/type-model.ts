/**
 * The type model every profile fills (BTF from the guest or a file, or a
 * Volatility ISF): decoded types, the store interface a profile implements,
 * and a growable in-memory store. Type ids are small integers; 0 is `void`.
 * Queries over a store are TypeDb's (types.ts).
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
