/**
 * Cached VA → PA translation for one address space (one DTB). The cache maps
 * 4 KiB VA pages to their physical page and is dropped whenever the source's
 * generation changes (checked on every call: one integer compare), so a live
 * guest never gets a stale translation across passes. Faults are not cached.
 */
import { FaultError } from '../../core/errors.js';
import type { PhysicalMemory } from '../../memory/types.js';
import { type PagingMode, TableReader, type Translation, walk, walkMany, type WalkStep } from './paging.js';

export interface TranslatorStats {
  hits: number;
  misses: number;
  faults: number;
  /** Whole-cache drops: explicit flush() or generation change. */
  flushes: number;
  /** Entries overwritten by another page mapping to the same slot. */
  evictions: number;
}

export interface TranslatorOptions {
  /** Cache slots, rounded up to a power of two (default 131,072 pages = 512 MiB of 4 KiB pages, 3 MiB of tables). */
  readonly maxEntries?: number;
}

/** Negative VAs down to -2^63 are sign-extended addresses; below that they are invalid (the walk says so). */
const MIN_I64 = -(1n << 63n);
const LEVEL_SIZES = [0, 4096, 2 << 20, 1 << 30];

/**
 * The cache is a direct-mapped table (like a hardware TLB) in typed arrays:
 * a VA is split, with two cheap bigint operations, into its bits 48..63
 * (`tagHi`, a small integer) and its 4 KiB page number below bit 48
 * (`pageLo`, an exact double). Both are compared on lookup, so distinct VAs,
 * including non-canonical ones, never alias. No Map, no allocation per hit.
 */
export class Translator {
  readonly tables: TableReader;
  readonly dtb: number;
  readonly mode: PagingMode;
  readonly stats: TranslatorStats = { hits: 0, misses: 0, faults: 0, flushes: 0, evictions: 0 };
  private readonly mask: number;
  private readonly tagHi: Int32Array;
  private readonly tagLo: Float64Array;
  private readonly paPage: Float64Array;
  /** bit 0 valid, bits 1..12 flags (low 12 bits of the entry >> 0, stored shifted by 1), bit 13 nx, bits 14..15 level. */
  private readonly info: Int32Array;
  private generation: number;

  constructor(source: PhysicalMemory | TableReader, dtb: number, mode: PagingMode, options: TranslatorOptions = {}) {
    this.tables = source instanceof TableReader ? source : new TableReader(source);
    this.dtb = dtb;
    this.mode = mode;
    this.generation = this.tables.epoch;
    let slots = 1;
    while (slots < Math.max(1, Math.min(options.maxEntries ?? 1 << 17, 1 << 24))) slots *= 2;
    this.mask = slots - 1;
    this.tagHi = new Int32Array(slots);
    this.tagLo = new Float64Array(slots);
    this.paPage = new Float64Array(slots);
    this.info = new Int32Array(slots);
  }

  get mem(): PhysicalMemory {
    return this.tables.phys.mem;
  }

  /** Drops every cached translation and page table (after the caller knows the guest changed). */
  flush(): void {
    this.info.fill(0);
    this.tables.flush();
    this.stats.flushes++;
  }

  private checkGeneration(): void {
    const g = this.tables.epoch;
    if (g !== this.generation) {
      this.generation = g;
      this.flush();
    }
  }

  private slotOf(hi: number, pageLo: number): number {
    return (pageLo ^ (hi << 9)) & this.mask;
  }

  private remember(t: Translation): void {
    const u = t.va;
    const hi = Number(u >> 48n);
    const pageLo = Math.floor(Number(BigInt.asUintN(48, u)) / 4096);
    const slot = this.slotOf(hi, pageLo);
    if (this.info[slot]! & 1 && (this.tagLo[slot] !== pageLo || this.tagHi[slot] !== hi)) this.stats.evictions++;
    this.tagHi[slot] = hi;
    this.tagLo[slot] = pageLo;
    this.paPage[slot] = t.pa - (t.pa % 4096);
    this.info[slot] = 1 | ((t.flags & 0xfff) << 1) | (t.nx ? 1 << 13 : 0) | (t.level << 14);
  }

  /** Physical address of `va` (hot path: no allocation on a cache hit). Throws FaultError. */
  physical(va: bigint): number {
    this.checkGeneration();
    const u = va < 0n && va >= MIN_I64 ? BigInt.asUintN(64, va) : va;
    const hi = Number(u >> 48n);
    const low = Number(BigInt.asUintN(48, u));
    const off = low % 4096;
    const pageLo = (low - off) / 4096;
    const slot = this.slotOf(hi, pageLo);
    if (this.tagLo[slot] === pageLo && this.tagHi[slot] === hi && this.info[slot]! & 1) {
      this.stats.hits++;
      return this.paPage[slot]! + off;
    }
    return this.miss(u).pa;
  }

  /** Full translation of `va` (page size, level, flags). Throws FaultError. */
  translate(va: bigint): Translation {
    this.checkGeneration();
    const u = va < 0n && va >= MIN_I64 ? BigInt.asUintN(64, va) : va;
    const hit = this.lookup(u);
    return hit ?? this.miss(u);
  }

  private lookup(u: bigint): Translation | undefined {
    if (u >= 1n << 64n) return undefined;
    const hi = Number(u >> 48n);
    const low = Number(BigInt.asUintN(48, u));
    const off = low % 4096;
    const pageLo = (low - off) / 4096;
    const slot = this.slotOf(hi, pageLo);
    const info = this.info[slot]!;
    if (this.tagLo[slot] !== pageLo || this.tagHi[slot] !== hi || !(info & 1)) return undefined;
    this.stats.hits++;
    const level = (info >> 14) & 3;
    return { va: u, pa: this.paPage[slot]! + off, pageSize: LEVEL_SIZES[level]!, level, flags: (info >> 1) & 0xfff, nx: (info & (1 << 13)) !== 0 };
  }

  private miss(u: bigint): Translation {
    this.stats.misses++;
    try {
      const t = walk(this.tables, this.mode, this.dtb, u);
      this.remember(t);
      return t;
    } catch (e) {
      if (e instanceof FaultError) this.stats.faults++;
      throw e;
    }
  }

  /** Translates many VAs, walking the misses level by level in batches. Never throws for faults. */
  translateMany(vas: readonly bigint[]): (Translation | FaultError)[] {
    this.checkGeneration();
    const out: (Translation | FaultError)[] = new Array(vas.length);
    const missIdx: number[] = [];
    const missVa: bigint[] = [];
    for (let i = 0; i < vas.length; i++) {
      const va = vas[i]!;
      const u = va < 0n && va >= -(1n << 63n) ? BigInt.asUintN(64, va) : va;
      const hit = u >= 0n ? this.lookup(u) : undefined;
      if (hit !== undefined) out[i] = hit;
      else {
        missIdx.push(i);
        missVa.push(u);
      }
    }
    if (missVa.length) {
      this.stats.misses += missVa.length;
      const results = walkMany(this.tables, this.mode, this.dtb, missVa);
      for (let j = 0; j < results.length; j++) {
        const r = results[j]!;
        out[missIdx[j]!] = r;
        if (r instanceof FaultError) this.stats.faults++;
        else this.remember(r);
      }
    }
    return out;
  }

  /** Translation with every level's entry, uncached (for `vmsight translate`). */
  trace(va: bigint): { steps: WalkStep[]; result: Translation | FaultError } {
    const steps: WalkStep[] = [];
    try {
      return { steps, result: walk(this.tables, this.mode, this.dtb, va, steps) };
    } catch (e) {
      if (e instanceof FaultError) return { steps, result: e };
      throw e;
    }
  }
}
