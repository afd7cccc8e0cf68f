/**
 * A page cache in front of any PhysicalMemory (a middleware with the same
 * interface). Pages are 4 KiB, the cache is LRU-bounded, and every entry
 * remembers the source generation it was read in: after a new pass
 * (`refresh()`, or the source bumping its generation on its own) no old page
 * is ever served. Pages that failed to read are not cached.
 *
 * Worth it for slow sources (monitor reads, gdbstub, live read of small
 * scattered reads); a live map is faster without it.
 */
import type { MappedRegion, PhysicalMemory, PhysRange, ReadFailure, ReadOp, SourceHints, TechniqueInfo } from './types.js';
import { gpa } from '../core/address.js';

export const PAGE_SIZE = 4096;

export interface PageCacheOptions {
  /** Most pages kept (default 16384 = 64 MiB). */
  readonly pages?: number;
}

export interface PageCacheStats {
  readonly hits: number;
  readonly misses: number;
  readonly evictions: number;
  /** Entries dropped because the source generation moved on. */
  readonly invalidations: number;
  readonly pages: number;
}

export interface CachedMemory extends PhysicalMemory {
  readonly inner: PhysicalMemory;
  readonly stats: PageCacheStats;
  /** Drops every cached page. */
  flush(): void;
  /** Refreshes the inner source (if it can) and drops pages of the old generation. */
  refresh(): Promise<void>;
}

class PageCache implements CachedMemory {
  readonly technique: TechniqueInfo;
  private readonly pages = new Map<number, Uint8Array>();
  private cachedGen: number;
  private hits = 0;
  private misses = 0;
  private evictions = 0;
  private invalidations = 0;

  constructor(
    readonly inner: PhysicalMemory,
    private readonly capacity: number,
  ) {
    this.technique = inner.technique;
    this.cachedGen = inner.generation;
    if (inner.mapped) this.mapped = () => inner.mapped!();
  }

  get target(): string {
    return this.inner.target;
  }
  get size(): number {
    return this.inner.size;
  }
  get generation(): number {
    return this.inner.generation;
  }
  get stats(): PageCacheStats {
    return { hits: this.hits, misses: this.misses, evictions: this.evictions, invalidations: this.invalidations, pages: this.pages.size };
  }

  ranges(): readonly PhysRange[] {
    return this.inner.ranges();
  }

  /** Present only when the inner source maps memory: zero-copy readers bypass the cache. */
  readonly mapped?: () => readonly MappedRegion[];

  hints(): Promise<SourceHints> {
    return this.inner.hints ? this.inner.hints() : Promise.resolve({});
  }

  flush(): void {
    this.pages.clear();
  }

  /** Entries belong to one generation; when the source moves on, they all go. */
  private checkGeneration(): void {
    const g = this.inner.generation;
    if (g !== this.cachedGen) {
      this.invalidations += this.pages.size;
      this.pages.clear();
      this.cachedGen = g;
    }
  }

  readv(ops: ReadOp[]): ReadFailure[] {
    this.checkGeneration();
    const failures: ReadFailure[] = [];
    // Pages this batch needs: from the cache (`have`) or fetched with one inner readv (`missing`).
    const have = new Map<number, Uint8Array>();
    const missing = new Map<number, ReadOp>();
    const direct = new Set<ReadOp>();
    for (const op of ops) {
      if (!Number.isSafeInteger(op.addr) || !Number.isSafeInteger(op.len) || op.addr < 0 || op.len < 0 || op.len > 1 << 30) {
        direct.add(op); // Let the inner source report it.
        continue;
      }
      op.dst ??= new Uint8Array(op.len);
      if (op.len === 0) continue;
      const last = Math.floor((op.addr + op.len - 1) / PAGE_SIZE);
      for (let p = Math.floor(op.addr / PAGE_SIZE); p <= last; p++) {
        if (have.has(p) || missing.has(p)) continue;
        const page = this.pages.get(p);
        if (page) {
          this.hits++;
          this.pages.delete(p); // LRU: move to the back.
          this.pages.set(p, page);
          have.set(p, page);
        } else {
          missing.set(p, { addr: gpa(p * PAGE_SIZE), len: PAGE_SIZE });
        }
      }
    }
    const failedPages = new Set<number>();
    if (missing.size) {
      const fetch = [...missing.values()];
      for (const f of this.inner.readv(fetch)) {
        const lastPage = Math.floor((f.addr + Math.max(f.len, 1) - 1) / PAGE_SIZE);
        for (let p = Math.floor(f.addr / PAGE_SIZE); p <= lastPage; p++) failedPages.add(p);
      }
      for (const f of fetch) {
        const p = f.addr / PAGE_SIZE;
        this.misses++;
        if (failedPages.has(p)) continue;
        have.set(p, f.dst!);
        this.insert(p, f.dst!);
      }
    }
    for (const op of ops) {
      if (direct.has(op) || op.len === 0) continue;
      const dst = op.dst!;
      const first = Math.floor(op.addr / PAGE_SIZE);
      const last = Math.floor((op.addr + op.len - 1) / PAGE_SIZE);
      let touchesFailed = false;
      for (let p = first; p <= last && !touchesFailed; p++) touchesFailed = failedPages.has(p);
      if (touchesFailed) {
        // Ask the source for exactly this op, so failures carry its own precise ranges.
        failures.push(...this.inner.readv([{ addr: op.addr, len: op.len, dst }]));
        continue;
      }
      for (let p = first; p <= last; p++) {
        const page = have.get(p)!;
        const pageStart = p * PAGE_SIZE;
        const from = Math.max(op.addr, pageStart);
        const to = Math.min(op.addr + op.len, pageStart + PAGE_SIZE);
        dst.set(page.subarray(from - pageStart, to - pageStart), from - op.addr);
      }
    }
    if (direct.size) failures.push(...this.inner.readv([...direct]));
    return failures;
  }

  private insert(page: number, bytes: Uint8Array): void {
    this.pages.set(page, bytes);
    while (this.pages.size > this.capacity) {
      const oldest = this.pages.keys().next().value as number;
      this.pages.delete(oldest);
      this.evictions++;
    }
  }

  async refresh(): Promise<void> {
    await this.inner.refresh?.();
    this.checkGeneration();
  }

  async close(): Promise<void> {
    this.pages.clear();
    await this.inner.close();
  }
}

/** Wraps `src` in an LRU page cache keyed by source generation. */
export function withPageCache(src: PhysicalMemory, options: PageCacheOptions = {}): CachedMemory {
  const pages = options.pages ?? 16384;
  if (!Number.isInteger(pages) || pages < 1) throw new RangeError(`page cache size must be a positive integer, got ${pages}`);
  return new PageCache(src, pages);
}
