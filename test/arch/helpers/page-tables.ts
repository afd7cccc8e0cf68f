/**
 * Builds x86-64 page tables in a byte array from a list of mappings, and
 * answers translations from that list (the oracle), without sharing any code
 * with the walker under test.
 */
export const P = 1n;
export const RW = 2n;
export const US = 4n;
export const PS = 0x80n;
export const G = 0x100n;
export const XD = 1n << 63n;

/** 4 KiB, 2 MiB or 1 GiB (plain number: callers compute sizes). */
export type PageSize = number;

export interface DeclaredMapping {
  va: bigint;
  pa: number;
  size: number;
  writable: boolean;
  user: boolean;
  nx: boolean;
}

export type Expected =
  | { kind: 'ok'; pa: number; pageSize: number; level: number; writable: boolean; user: boolean; nx: boolean }
  | { kind: 'fault'; level: number }
  | { kind: 'noncanonical' };

const SIZE_LEVEL: Record<number, number> = { 4096: 1, [2 << 20]: 2, [1 << 30]: 3 };

export class PageTableBuilder {
  readonly mappings: DeclaredMapping[] = [];
  /** Tables created, keyed by "level:va-prefix". */
  private readonly tables = new Map<string, number>();
  private next: number;
  readonly top: number;

  /**
   * `bytes`: guest RAM; tables are allocated from `allocStart` upwards
   * (4 KiB each); the top table is at `top` (allocated when omitted).
   */
  constructor(
    readonly bytes: Uint8Array,
    readonly levels: 4 | 5,
    allocStart: number,
    top?: number,
  ) {
    this.next = allocStart;
    this.top = top ?? this.alloc();
  }

  private view(): DataView {
    return new DataView(this.bytes.buffer, this.bytes.byteOffset, this.bytes.byteLength);
  }

  alloc(): number {
    const pa = this.next;
    this.next += 4096;
    if (this.next > this.bytes.length) throw new Error('synthetic RAM too small for the tables');
    this.bytes.fill(0, pa, pa + 4096);
    return pa;
  }

  readEntry(pa: number): bigint {
    return this.view().getBigUint64(pa, true);
  }
  writeEntry(pa: number, value: bigint): void {
    this.view().setBigUint64(pa, value, true);
  }

  /** Index of `va` at a level (5..1), computed with bigint for independence. */
  static index(va: bigint, level: number): number {
    return Number((BigInt.asUintN(64, va) >> BigInt(12 + 9 * (level - 1))) & 511n);
  }

  /** Physical address of the entry for `va` at `level`, creating intermediate tables with `upperFlags`. */
  entryAddr(va: bigint, level: number, upperFlags = P | RW | US): number {
    let table = this.top;
    for (let l = this.levels; l > level; l--) {
      const ea = table + PageTableBuilder.index(va, l) * 8;
      let e = this.readEntry(ea);
      if ((e & P) === 0n) {
        const t = this.alloc();
        e = BigInt(t) | upperFlags;
        this.writeEntry(ea, e);
      }
      table = Number(e & 0x000f_ffff_ffff_f000n);
    }
    return table + PageTableBuilder.index(va, level) * 8;
  }

  map(va: bigint, pa: number, size: PageSize, opts: { writable?: boolean; user?: boolean; nx?: boolean; extra?: bigint } = {}): void {
    const m: DeclaredMapping = { va, pa, size, writable: opts.writable ?? true, user: opts.user ?? false, nx: opts.nx ?? false };
    const level = SIZE_LEVEL[size]!;
    let e = BigInt(pa) | P | (m.writable ? RW : 0n) | (m.user ? US : 0n) | (m.nx ? XD : 0n) | (opts.extra ?? 0n);
    if (level > 1) e |= PS;
    this.writeEntry(this.entryAddr(va, level), e);
    this.mappings.push(m);
  }

  /** Maps [va, va+len) onto [pa, pa+len) with pages of `size`. */
  mapRange(va: bigint, pa: number, len: number, size: PageSize, opts: { writable?: boolean; user?: boolean; nx?: boolean } = {}): void {
    for (let off = 0; off < len; off += size) this.map(va + BigInt(off), pa + off, size, opts);
  }

  /** The oracle: what translating `va` must give, from the declared mappings and the tables' shape. */
  expect(va: bigint): Expected {
    const bits = this.levels === 4 ? 48 : 57;
    const u = BigInt.asUintN(64, va);
    const top = u >> BigInt(bits - 1);
    if (top !== 0n && top !== (1n << BigInt(65 - bits)) - 1n) return { kind: 'noncanonical' };
    const m = this.mappings.find((x) => u >= x.va && u < x.va + BigInt(x.size));
    if (m) {
      return {
        kind: 'ok',
        pa: m.pa + Number(u - m.va),
        pageSize: m.size,
        level: SIZE_LEVEL[m.size]!,
        writable: m.writable,
        user: m.user,
        nx: m.nx,
      };
    }
    // Deepest table that exists on the way: the fault is at the level below it.
    let table = this.top;
    for (let l = this.levels; l >= 1; l--) {
      const e = this.readEntry(table + PageTableBuilder.index(u, l) * 8);
      if ((e & P) === 0n) return { kind: 'fault', level: l };
      table = Number(e & 0x000f_ffff_ffff_f000n);
    }
    throw new Error('oracle: present leaf without a declared mapping');
  }
}
