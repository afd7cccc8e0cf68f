/**
 * Synthetic kernel memory and types for walker and object-model tests: a
 * sparse page store readable through the `VirtualMemory` interface that
 * typed access uses (unmapped pages fault like the real address space), and
 * a small builder of structs over an ArrayTypeStore.
 */
import { FaultError } from '../../../src/core/errors.js';
import { Typed } from '../../../src/profile/typed.js';
import { ArrayTypeStore, TypeDb, type Member, type TypeId } from '../../../src/profile/types.js';

const PAGE = 4096n;

export class FakeMemory {
  readonly pages = new Map<bigint, Uint8Array>();
  reads = 0;

  /** Maps (zeroed) every page touching [va, va+len). */
  map(va: bigint, len: number): this {
    for (let p = va & ~(PAGE - 1n); p < va + BigInt(len); p += PAGE) if (!this.pages.has(p)) this.pages.set(p, new Uint8Array(4096));
    return this;
  }

  unmap(va: bigint): void {
    this.pages.delete(va & ~(PAGE - 1n));
  }

  read(va: bigint, len: number): Uint8Array {
    this.reads++;
    const out = new Uint8Array(len);
    let done = 0;
    while (done < len) {
      const a = va + BigInt(done);
      const page = this.pages.get(a & ~(PAGE - 1n));
      if (!page) throw new FaultError('virtual', a, 'not mapped in the synthetic memory');
      const off = Number(a & (PAGE - 1n));
      const n = Math.min(4096 - off, len - done);
      out.set(page.subarray(off, off + n), done);
      done += n;
    }
    return out;
  }

  write(va: bigint, bytes: Uint8Array): void {
    this.map(va, bytes.length);
    let done = 0;
    while (done < bytes.length) {
      const a = va + BigInt(done);
      const page = this.pages.get(a & ~(PAGE - 1n))!;
      const off = Number(a & (PAGE - 1n));
      const n = Math.min(4096 - off, bytes.length - done);
      page.set(bytes.subarray(done, done + n), off);
      done += n;
    }
  }

  w64(va: bigint, v: bigint): void {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, BigInt.asUintN(64, v), true);
    this.write(va, b);
  }
  w32(va: bigint, v: number): void {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, v >>> 0, true);
    this.write(va, b);
  }
  w16(va: bigint, v: number): void {
    const b = new Uint8Array(2);
    new DataView(b.buffer).setUint16(0, v, true);
    this.write(va, b);
  }
  w8(va: bigint, v: number): void {
    this.write(va, Uint8Array.of(v));
  }
  /** A NUL-terminated string. */
  wstr(va: bigint, s: string): void {
    this.write(va, Uint8Array.from([...Buffer.from(s, 'utf8'), 0]));
  }
}

/** [name, type, byte offset, bit size?, bit offset inside the byte?] */
export type MemberSpec = readonly [string, TypeId, number, number?, number?];

export class TypeBuilder {
  readonly store = new ArrayTypeStore('btf:synthetic');
  readonly char = this.int('char', 1, true, true);
  readonly u8 = this.int('unsigned char', 1, false);
  readonly u16 = this.int('unsigned short', 2, false);
  readonly int_ = this.int('int', 4, true);
  readonly uint = this.int('unsigned int', 4, false);
  readonly ulong = this.int('unsigned long', 8, false);
  readonly long = this.int('long', 8, true);
  readonly u64 = this.int('long long unsigned int', 8, false);
  readonly voidp = this.ptr(0);

  int(name: string, size: number, signed: boolean, char = false): TypeId {
    return this.store.add({ kind: 'int', name, size, signed, char, bool: false, bits: size * 8, bitOffset: 0 });
  }
  ptr(target: TypeId): TypeId {
    return this.store.add({ kind: 'pointer', name: '', target });
  }
  array(elem: TypeId, length: number): TypeId {
    return this.store.add({ kind: 'array', name: '', elem, length });
  }
  typedef(name: string, target: TypeId): TypeId {
    return this.store.add({ kind: 'typedef', name, target });
  }
  /** Declares a struct (so pointers to it can be made) to be defined later. */
  declare(name: string, kind: 'struct' | 'union' = 'struct'): TypeId {
    return this.store.add({ kind, name, size: 0, members: [] });
  }
  define(id: TypeId, size: number, members: readonly MemberSpec[], kind: 'struct' | 'union' = 'struct'): TypeId {
    const name = (this.store.get(id) as { name: string }).name;
    this.store.set(id, { kind, name, size, members: members.map(toMember) });
    return id;
  }
  struct(name: string, size: number, members: readonly MemberSpec[], kind: 'struct' | 'union' = 'struct'): TypeId {
    return this.store.add({ kind, name, size, members: members.map(toMember) });
  }
  enum_(name: string, values: Record<string, number>): TypeId {
    return this.store.add({ kind: 'enum', name, size: 4, signed: false, values: Object.entries(values).map(([n, v]) => ({ name: n, value: BigInt(v) })) });
  }

  /** list_head, hlist_head, hlist_node, rb_node, rb_root. */
  listTypes(): { listHead: TypeId; hlistHead: TypeId; hlistNode: TypeId; rbNode: TypeId; rbRoot: TypeId } {
    const listHead = this.declare('list_head');
    this.define(listHead, 16, [['next', this.ptr(listHead), 0], ['prev', this.ptr(listHead), 8]]);
    const hlistNode = this.declare('hlist_node');
    this.define(hlistNode, 16, [['next', this.ptr(hlistNode), 0], ['pprev', this.ptr(this.ptr(hlistNode)), 8]]);
    const hlistHead = this.struct('hlist_head', 8, [['first', this.ptr(hlistNode), 0]]);
    const rbNode = this.declare('rb_node');
    this.define(rbNode, 24, [['__rb_parent_color', this.ulong, 0], ['rb_right', this.ptr(rbNode), 8], ['rb_left', this.ptr(rbNode), 16]]);
    const rbRoot = this.struct('rb_root', 8, [['rb_node', this.ptr(rbNode), 0]]);
    return { listHead, hlistHead, hlistNode, rbNode, rbRoot };
  }

  db(): TypeDb {
    return new TypeDb(this.store);
  }
}

function toMember([name, type, offset, bitSize, bitInByte]: MemberSpec): Member {
  return { name, type, bitOffset: offset * 8 + (bitInByte ?? 0), bitSize: bitSize ?? 0 };
}

/** A Typed over synthetic memory. */
export function typedOver(db: TypeDb, mem: FakeMemory): Typed {
  return new Typed(db, mem);
}

/** Kernel-looking addresses for synthetic objects. */
export const KBASE = 0xffff_8880_0000_0000n;
