/**
 * Cached VA → PA translation for one address space (one DTB). The cache maps
 * 4 KiB VA pages to their physical page and is dropped whenever the source's
 * generation changes (checked on every call: one integer compare), so a live
 * guest never gets a stale translation across passes. Faults are not cached.
 */
import { FaultError } from '../../core/errors.js';
import type { PhysicalMemory } from '../../memory/types.js';
import { type PagingMode, TableReader, type Translation, walk, walkMany, type WalkStep } from './paging.js';

interface CachedPage {
  /** Physical address of the 4 KiB page holding the VA page. */
  readonly pa: number;
  readonly pageSize: number;
  readonly level: number;
  readonly flags: number;
  readonly nx: boolean;
}

export interface TranslatorStats {
  hits: number;
  misses: number;
  faults: number;
  /** Cache drops: explicit flush(), generation change, or size bound. */
  flushes: number;
}

export interface TranslatorOptions {
  /** Bound on cached pages (default 262,144 = 1 GiB of 4 KiB pages); the cache is dropped when full. */
  readonly maxEntries?: number;
}

export class Translator {
  readonly tables: TableReader;
  readonly dtb: number;
  readonly mode: PagingMode;
  readonly stats: TranslatorStats = { hits: 0, misses: 0, faults: 0, flushes: 0 };
  private readonly cache = new Map<number, CachedPage>();
  private generation: number;
  private readonly maxEntries: number;

  constructor(source: PhysicalMemory | TableReader, dtb: number, mode: PagingMode, options: TranslatorOptions = {}) {
    this.tables = source instanceof TableReader ? source : new TableReader(source);
    this.dtb = dtb;
    this.mode = mode;
    this.generation = this.tables.phys.mem.generation;
    this.maxEntries = options.maxEntries ?? 1 << 18;
  }

  get mem(): PhysicalMemory {
    return this.tables.phys.mem;
  }

  /** Drops every cached translation and page table (after the caller knows the guest changed). */
  flush(): void {
    this.cache.clear();
    this.tables.flush();
    this.stats.flushes++;
  }

  private checkGeneration(): void {
    const g = this.tables.phys.mem.generation;
    if (g !== this.generation) {
      this.generation = g;
      if (this.cache.size) this.flush();
    }
  }

  private remember(pageKey: number, t: Translation): void {
    if (this.cache.size >= this.maxEntries) this.flush();
    const pageOffset = Number(t.va & 0xfffn);
    this.cache.set(pageKey, { pa: t.pa - pageOffset, pageSize: t.pageSize, level: t.level, flags: t.flags, nx: t.nx });
  }

  /** Physical address of `va` (hot path: no allocation on a cache hit). Throws FaultError. */
  physical(va: bigint): number {
    this.checkGeneration();
    const u = va < 0n ? BigInt.asUintN(64, va) : va;
    const key = Number(u >> 12n);
    const hit = this.cache.get(key);
    if (hit !== undefined) {
      this.stats.hits++;
      return hit.pa + Number(u & 0xfffn);
    }
    return this.miss(u, key).pa;
  }

  /** Full translation of `va` (page size, level, flags). Throws FaultError. */
  translate(va: bigint): Translation {
    this.checkGeneration();
    const u = va < 0n ? BigInt.asUintN(64, va) : va;
    const key = Number(u >> 12n);
    const hit = this.cache.get(key);
    if (hit !== undefined) {
      this.stats.hits++;
      return { va: u, pa: hit.pa + Number(u & 0xfffn), pageSize: hit.pageSize, level: hit.level, flags: hit.flags, nx: hit.nx };
    }
    return this.miss(u, key);
  }

  private miss(u: bigint, key: number): Translation {
    this.stats.misses++;
    try {
      const t = walk(this.tables, this.mode, this.dtb, u);
      this.remember(key, t);
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
      if (va >= 1n << 64n || va < -(1n << 63n)) {
        missIdx.push(i);
        missVa.push(va);
        continue;
      }
      const u = va < 0n ? BigInt.asUintN(64, va) : va;
      const hit = this.cache.get(Number(u >> 12n));
      if (hit !== undefined) {
        this.stats.hits++;
        out[i] = { va: u, pa: hit.pa + Number(u & 0xfffn), pageSize: hit.pageSize, level: hit.level, flags: hit.flags, nx: hit.nx };
      } else {
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
        else this.remember(Number(r.va >> 12n), r);
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
