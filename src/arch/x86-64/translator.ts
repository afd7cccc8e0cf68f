/**
 * Cached VA → PA translation for one address space (one DTB). The cache maps
 * 4 KiB VA pages to their physical page. A live guest changes its page
 * tables, so every entry belongs to an epoch of the TableReader (a new one
 * per pass, and whenever the source's generation moves): the first time an
 * entry is used in a new epoch, the page-table entries its walk read are
 * checked again — the leaf word (one 8-byte read), then the upper levels,
 * each upper entry once per epoch for all translations below it — and the
 * VA is walked again only when one of them changed. Kernel direct-map
 * translations (VA = page_offset_base + PA) are arithmetic and survive every
 * epoch. A 2 MiB or 1 GiB page walked once answers for its other 4 KiB pages
 * in the same epoch without a walk (the direct map's slab pages, kernel text).
 * Faults are not cached.
 */
import { FaultError } from '../../core/errors.js';
import type { PhysicalMemory } from '../../memory/types.js';
import { newWalkPath, type PagingMode, TableReader, type Translation, walk, walkMany, type WalkPath, type WalkStep } from './paging.js';
import { gpa } from '../../core/address.js';

export interface TranslatorStats {
  hits: number;
  /** Walks: VAs not cached, or cached but changed. */
  misses: number;
  faults: number;
  /** Whole-cache drops: explicit flush(), or the path table full. */
  flushes: number;
  /** Entries overwritten by another page mapping to the same slot. */
  evictions: number;
  /** Cached entries checked in a new epoch and kept (their page-table entries unchanged). */
  revalidated: number;
  /** Cached entries checked in a new epoch and found changed (walked again). */
  stale: number;
  /** 4 KiB pages not cached, answered without a walk by a 2 MiB or 1 GiB page walked in the same epoch. */
  largePages: number;
}

export interface TranslatorOptions {
  /** Cache slots, rounded up to a power of two (default 131,072 pages = 512 MiB of 4 KiB pages, 4 MiB of tables). */
  readonly maxEntries?: number;
}

/** Negative VAs down to -2^63 are sign-extended addresses; below that they are invalid (the walk says so). */
const MIN_I64 = -(1n << 63n);
const LEVEL_SIZES = [0, 4096, 2 << 20, 1 << 30];
/** info bit 31: a direct-map translation, valid in every epoch. */
const PERMANENT = 1 << 31;
/** info bits 16..30: the epoch the slot was last walked or checked in, modulo 2^15 (all slots are dropped when it wraps). */
const TAG_SHIFT = 16;
const TAG_MASK = 0x7fff;
/** Upper-level entries remembered (shared by every translation below them): one per 8 slots, 64..16,384. */
const nodesFor = (slots: number): number => Math.max(64, Math.min(1 << 14, slots >> 3));
/** Large pages remembered (a power of two), by their 2 MiB frame number: the direct map spreads a run's slab objects over a few. */
const LARGE_SLOTS = 64;

/** A 2 MiB or 1 GiB page as one walk found it, valid in the epoch it was walked in. */
interface LargePage {
  readonly start: bigint;
  readonly end: bigint;
  readonly pa: number;
  readonly t: Translation;
  readonly epoch: number;
}

export class Translator {
  readonly tables: TableReader;
  readonly dtb: number;
  readonly mode: PagingMode;
  readonly stats: TranslatorStats = { hits: 0, misses: 0, faults: 0, flushes: 0, evictions: 0, revalidated: 0, stale: 0, largePages: 0 };
  /** Large pages of recent walks, by 2 MiB frame (see largePage). */
  private readonly large: (LargePage | undefined)[] = new Array<LargePage | undefined>(LARGE_SLOTS);
  private readonly mask: number;
  private readonly tagHi: Int32Array;
  private readonly tagLo: Float64Array;
  private readonly paPage: Float64Array;
  /**
   * bit 0 valid, bits 1..12 flags (low 12 bits of the entry >> 0, stored shifted by 1), bit 13 nx, bits 14..15 level,
   * bits 16..30 epoch tag, bit 31 permanent: one word per lookup, so a hit touches no more memory than before epochs.
   */
  private readonly info: Int32Array;
  /** The current epoch's tag (epoch modulo 2^15). */
  private tag: number;
  /** Physical address of the leaf entry (-1: unknown, re-walk in a new epoch) and its words. */
  private readonly leafPa: Float64Array;
  private readonly leafLo: Uint32Array;
  private readonly leafHi: Uint32Array;
  /** Node of the entry one level above the leaf (-1: none). */
  private readonly leafParent: Int32Array;
  /**
   * Upper-level entries (the path above leaves), interned: entry address,
   * words, parent node, epoch last checked, dead (found changed).
   */
  private readonly maxNodes: number;
  private readonly nodePa: Float64Array;
  private readonly nodeLo: Uint32Array;
  private readonly nodeHi: Uint32Array;
  private readonly nodeParent: Int32Array;
  private readonly nodeEpoch: Int32Array;
  private readonly nodeDead: Uint8Array;
  private readonly nodeAt = new Map<number, number>();
  private nodes = 0;
  private readonly path: WalkPath = newWalkPath();
  private readonly words = new Uint32Array(2);
  private readonly chain = new Int32Array(5);
  private epoch: number;
  /** Direct map [base, base + size) as numbers split at bit 48 (see slotOf), when known. */
  private directBase: bigint | undefined;
  private directEnd = 0n;

  constructor(source: PhysicalMemory | TableReader, dtb: number, mode: PagingMode, options: TranslatorOptions = {}) {
    this.tables = source instanceof TableReader ? source : new TableReader(source);
    this.dtb = dtb;
    this.mode = mode;
    this.epoch = this.tables.epoch;
    this.tag = this.epoch & TAG_MASK;
    let slots = 1;
    while (slots < Math.max(1, Math.min(options.maxEntries ?? 1 << 17, 1 << 24))) slots *= 2;
    this.mask = slots - 1;
    this.tagHi = new Int32Array(slots);
    this.tagLo = new Float64Array(slots);
    this.paPage = new Float64Array(slots);
    this.info = new Int32Array(slots);
    this.leafPa = new Float64Array(slots);
    this.leafLo = new Uint32Array(slots);
    this.leafHi = new Uint32Array(slots);
    this.leafParent = new Int32Array(slots);
    const nodes = (this.maxNodes = nodesFor(slots));
    this.nodePa = new Float64Array(nodes);
    this.nodeLo = new Uint32Array(nodes);
    this.nodeHi = new Uint32Array(nodes);
    this.nodeParent = new Int32Array(nodes);
    this.nodeEpoch = new Int32Array(nodes);
    this.nodeDead = new Uint8Array(nodes);
  }

  get mem(): PhysicalMemory {
    return this.tables.phys.mem;
  }

  /**
   * Declares the kernel direct map: VAs in [base, base + size) translate to
   * VA - base in every epoch once walked (the mapping is linear by design).
   */
  setDirectMap(base: bigint | undefined, size: number): void {
    this.directBase = base;
    this.directEnd = base === undefined ? 0n : base + BigInt(size);
  }

  /** Drops every cached translation and page table (a pass that reuses nothing). */
  flush(): void {
    this.info.fill(0);
    this.large.fill(undefined);
    this.nodeAt.clear();
    this.nodes = 0;
    this.tables.flush();
    this.stats.flushes++;
  }

  /** The current epoch's tag; a new epoch that wraps the tag (or jumps a whole cycle) drops every slot. */
  private checkGeneration(): number {
    const e = this.tables.epoch;
    if (e !== this.epoch) {
      if (e - this.epoch > TAG_MASK || (e & TAG_MASK) < (this.epoch & TAG_MASK)) this.info.fill(0);
      this.epoch = e;
      this.tag = e & TAG_MASK;
    }
    return this.tag;
  }

  private slotOf(hi: number, pageLo: number): number {
    return (pageLo ^ (hi << 9)) & this.mask;
  }

  /** The node for an upper-level entry just read; a changed entry kills its old node. */
  private nodeFor(pa: number, lo: number, hi: number, parent: number): number {
    const old = this.nodeAt.get(pa);
    if (old !== undefined && this.nodeDead[old] === 0 && this.nodeParent[old] === parent) {
      if (this.nodeLo[old] === lo && this.nodeHi[old] === hi) {
        this.nodeEpoch[old] = this.epoch;
        return old;
      }
      this.nodeDead[old] = 1;
    }
    if (this.nodes >= this.maxNodes) return -2;
    const n = this.nodes++;
    this.nodePa[n] = pa;
    this.nodeLo[n] = lo;
    this.nodeHi[n] = hi;
    this.nodeParent[n] = parent;
    this.nodeEpoch[n] = this.epoch;
    this.nodeDead[n] = 0;
    this.nodeAt.set(pa, n);
    return n;
  }

  private remember(t: Translation, path: WalkPath | undefined): void {
    const u = t.va;
    const hi = Number(u >> 48n);
    const pageLo = Math.floor(Number(BigInt.asUintN(48, u)) / 4096);
    const slot = this.slotOf(hi, pageLo);
    if (this.info[slot]! & 1 && (this.tagLo[slot] !== pageLo || this.tagHi[slot] !== hi)) this.stats.evictions++;
    this.tagHi[slot] = hi;
    this.tagLo[slot] = pageLo;
    this.paPage[slot] = t.pa - (t.pa % 4096);
    this.info[slot] = 1 | ((t.flags & 0xfff) << 1) | (t.nx ? 1 << 13 : 0) | (t.level << 14) | (this.tag << TAG_SHIFT);
    this.leafPa[slot] = -1;
    if (this.directBase !== undefined && u >= this.directBase && u < this.directEnd && BigInt(t.pa) === u - this.directBase) {
      this.info[slot] = this.info[slot]! | PERMANENT;
      return;
    }
    const n = path === undefined ? 0 : path[0]!;
    if (n === 0) return;
    let parent = -1;
    for (let i = 0; i < n - 1; i++) {
      parent = this.nodeFor(path![1 + i]!, path![6 + i]!, path![11 + i]!, parent);
      if (parent === -2) {
        // Path table full: start over (rare; bounded memory matters more).
        this.info.fill(0);
        this.nodeAt.clear();
        this.nodes = 0;
        this.stats.flushes++;
        this.remember(t, path);
        return;
      }
    }
    this.leafPa[slot] = path![n]!;
    this.leafLo[slot] = path![5 + n]!;
    this.leafHi[slot] = path![10 + n]!;
    this.leafParent[slot] = parent;
  }

  /**
   * A cached slot from an earlier epoch: true when every page-table entry its
   * walk read still holds the same words (upper entries checked once per epoch).
   */
  private revalidate(slot: number): boolean {
    const leaf = this.leafPa[slot]!;
    if (leaf < 0) return false;
    const w = this.words;
    const epoch = this.epoch;
    const chain = this.chain;
    let len = 0;
    try {
      this.tables.entryAt(leaf, w);
      if (w[0] !== this.leafLo[slot] || w[1] !== this.leafHi[slot]) return false;
      // Up to the first entry already checked in this epoch (its own chain was checked whole).
      for (let n = this.leafParent[slot]!; n >= 0 && len < 5; n = this.nodeParent[n]!) {
        if (this.nodeDead[n] === 1) return false;
        if (this.nodeEpoch[n] === epoch) break;
        this.tables.entryAt(this.nodePa[n]!, w);
        if (w[0] !== this.nodeLo[n] || w[1] !== this.nodeHi[n]) {
          this.nodeDead[n] = 1;
          return false;
        }
        chain[len++] = n;
      }
    } catch (e) {
      if (e instanceof FaultError) return false;
      throw e;
    }
    // Only a chain found unchanged all the way up counts as checked: marking a lower entry
    // before its parents were read would let the next VA below it skip a changed parent.
    for (let i = 0; i < len; i++) this.nodeEpoch[chain[i]!] = epoch;
    this.info[slot] = (this.info[slot]! & 0xffff) | (this.tag << TAG_SHIFT);
    return true;
  }

  /** Slot holding `u` valid in this epoch (checked again if from an earlier one), or -1. */
  private validSlot(hi: number, pageLo: number): number {
    const slot = this.slotOf(hi, pageLo);
    if (this.tagLo[slot] !== pageLo || this.tagHi[slot] !== hi || !(this.info[slot]! & 1)) return -1;
    const info = this.info[slot]!;
    if (info < 0 || ((info >>> TAG_SHIFT) & TAG_MASK) === this.tag) return slot;
    if (this.revalidate(slot)) {
      this.stats.revalidated++;
      return slot;
    }
    this.stats.stale++;
    this.info[slot] = 0;
    return -1;
  }

  /** Physical address of `va` (hot path: no allocation on a cache hit). Throws FaultError. */
  physical(va: bigint): number {
    const tag = this.checkGeneration();
    const u = va < 0n && va >= MIN_I64 ? BigInt.asUintN(64, va) : va;
    const hi = Number(u >> 48n);
    const low = Number(BigInt.asUintN(48, u));
    const off = low % 4096;
    const pageLo = (low - off) / 4096;
    const slot = this.slotOf(hi, pageLo);
    const info = this.info[slot]!;
    if (this.tagLo[slot] === pageLo && this.tagHi[slot] === hi && info & 1 && (info < 0 || ((info >>> TAG_SHIFT) & TAG_MASK) === tag)) {
      this.stats.hits++;
      return this.paPage[slot]! + off;
    }
    if (u < 1n << 64n && this.validSlot(hi, pageLo) === slot) {
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
    if (u >= 1n << 64n || u < 0n) return undefined;
    const hi = Number(u >> 48n);
    const low = Number(BigInt.asUintN(48, u));
    const off = low % 4096;
    const pageLo = (low - off) / 4096;
    const slot = this.validSlot(hi, pageLo);
    if (slot < 0) return undefined;
    this.stats.hits++;
    const info = this.info[slot]!;
    const level = (info >> 14) & 3;
    return { va: u, pa: gpa(this.paPage[slot]! + off), pageSize: LEVEL_SIZES[level]!, level, flags: (info >> 1) & 0xfff, nx: (info & (1 << 13)) !== 0 };
  }

  private miss(u: bigint): Translation {
    const frame = Number(u >> 21n) & (LARGE_SLOTS - 1);
    const big = this.large[frame];
    if (big !== undefined && big.epoch === this.epoch && u >= big.start && u < big.end) {
      this.stats.largePages++;
      const t: Translation = { ...big.t, va: u, pa: gpa(big.pa + Number(u - big.start)) };
      // Not revalidatable on its own (no walk path): a later epoch asks the page tables again.
      this.remember(t, undefined);
      return t;
    }
    this.stats.misses++;
    try {
      const t = walk(this.tables, this.mode, this.dtb, u, undefined, this.path);
      this.remember(t, this.path);
      if (t.pageSize > 4096) {
        const within = u % BigInt(t.pageSize);
        this.large[frame] = { start: u - within, end: u - within + BigInt(t.pageSize), pa: t.pa - Number(within), t, epoch: this.epoch };
      }
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
      const hit = this.lookup(u);
      if (hit !== undefined) out[i] = hit;
      else {
        missIdx.push(i);
        missVa.push(u);
      }
    }
    if (missVa.length) {
      this.stats.misses += missVa.length;
      const paths = missVa.map(() => newWalkPath());
      const results = walkMany(this.tables, this.mode, this.dtb, missVa, paths);
      for (let j = 0; j < results.length; j++) {
        const r = results[j]!;
        out[missIdx[j]!] = r;
        if (r instanceof FaultError) this.stats.faults++;
        else this.remember(r, paths[j]);
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
