/**
 * Guest-physical blocks kept for one pass, for sources that cost one system
 * call per read whatever its size (live read: `PhysicalMemory.passBlockBytes`).
 * Inside a pass the PhysReader reads such a source in aligned blocks (a slab
 * of task_structs, a page of creds, a page table) and serves every later read
 * of the same block from that copy, zero-copy: the pass sees one copy of each
 * block, as it sees one answer per cached translation ("within a pass the
 * cached answer stands"). A new pass, or a new source generation, starts with
 * no block, so nothing older than the current pass is ever served; outside
 * passes nothing is kept (linux/kernel.ts opens and closes them).
 *
 * Each pass reads into buffers of its own: a view handed out in an earlier
 * pass keeps that pass's bytes and never shows another block's.
 */
import type { PhysicalMemory, PhysRange, ReadFailure, ReadOp } from '../memory/types.js';
import { gpa } from '../core/address.js';

/** A kept block: guest-physical [start, end) and its bytes (the shape PhysReader hands out for mapped regions). */
export interface Block {
  readonly start: number;
  readonly end: number;
  readonly bytes: Uint8Array;
  readonly view: DataView;
}

/** Counters of the current pass. */
export interface PassBlockStats {
  /** Reads served from kept blocks without asking the source. */
  hits: number;
  /** Batched reads issued to the source to fetch blocks (one system call each on live read). */
  fetches: number;
  /** Blocks fetched, and their bytes. */
  blocks: number;
  bytes: number;
  /** Reads passed straight to the source: too large, across a hole, or touching a block that failed. */
  direct: number;
  /** Times the bound was reached and every block dropped. */
  overflows: number;
  /** Blocks fetched because the last pass read them (see PassBlocks.newPass). */
  learned: number;
}

/** Sizes a source may ask for: 4 KiB to 256 KiB, powers of two. */
export function validBlockBytes(n: unknown): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= 4096 && n <= 1 << 18 && (n & (n - 1)) === 0;
}

/** Reads spanning more blocks than this go straight to the source (bulk reads are not worth keeping). */
const MAX_SPAN_BLOCKS = 4;
/** Most blocks one pass learns from the last (4 MiB of 16 KiB blocks): bounds what a wrong guess costs. */
const MAX_LEARNED = 256;
/** Blocks are cut from arenas of this many bytes (one host address lookup per arena, not per block). */
const ARENA_BYTES = 1 << 19;

export class PassBlocks {
  readonly stats: PassBlockStats = { hits: 0, fetches: 0, blocks: 0, bytes: 0, direct: 0, overflows: 0, learned: 0 };
  private readonly blocks = new Map<number, Block>();
  private readonly maxBlocks: number;
  private generation: number;
  private ranges: readonly PhysRange[];
  private arena: Buffer | undefined;
  private arenaUsed = 0;
  private last: Block | undefined;
  /** Blocks the last pass read, fetched again with this pass's first fetch, into the same buffers (see newPass). */
  private learned = new Map<number, Block>();

  constructor(
    readonly mem: PhysicalMemory,
    readonly blockBytes: number,
    /** Most bytes kept per pass (default 64 MiB); past it every block is dropped and reading goes on. */
    maxBytes = 64 << 20,
  ) {
    if (!validBlockBytes(blockBytes)) throw new RangeError(`pass block size must be a power of two from 4 KiB to 256 KiB, got ${blockBytes}`);
    this.maxBlocks = Math.max(1, Math.floor(maxBytes / blockBytes));
    this.generation = mem.generation;
    this.ranges = mem.ranges();
  }

  /**
   * Starts a new pass: the blocks of the last one are dropped, and remembered
   * (at most MAX_LEARNED) as what this pass will likely read again. The first
   * block this pass has to fetch brings them along in the same batched read:
   * a pass that repeats the last (a monitor tick, pslist after pslist) costs
   * one system call, a pass that reads nothing reads nothing, and every byte
   * is still read in this pass. A block read again goes into the buffer it
   * had: a view kept from the last pass then shows the same guest bytes,
   * newer (as a live map's view does), and a repeated pass allocates nothing.
   */
  newPass(): void {
    if (this.blocks.size) this.learn(); // a pass started inside another: learn from the outer one
    this.clear();
    for (const k of Object.keys(this.stats) as (keyof PassBlockStats)[]) this.stats[k] = 0;
  }

  /** Ends a pass: its bytes go, the list of its blocks stays for the next pass (see newPass). */
  endPass(): void {
    this.learn();
    this.clear();
  }

  private learn(): void {
    this.learned = new Map();
    for (const [n, b] of this.blocks) if (this.learned.set(n, b).size >= MAX_LEARNED) break;
  }

  /** Drops every block (a new pass, a validation retry); later reads fetch again into new buffers. */
  clear(): void {
    this.blocks.clear();
    this.last = undefined;
    this.arena = undefined;
    this.arenaUsed = 0;
    this.generation = this.mem.generation;
    this.ranges = this.mem.ranges();
  }

  /** Blocks belong to one source generation: when the source moves on, they all go. */
  private current(): void {
    if (this.mem.generation !== this.generation) this.clear();
  }

  /** The kept block holding all of [pa, pa+len), without reading. */
  lookup(pa: number, len: number): Block | undefined {
    this.current();
    const last = this.last;
    if (last !== undefined && pa >= last.start && pa + len <= last.end) {
      this.stats.hits++;
      return last;
    }
    const b = this.blocks.get(Math.floor(pa / this.blockBytes));
    if (b === undefined || pa < b.start || pa + len > b.end) return undefined;
    this.stats.hits++;
    this.last = b;
    return b;
  }

  /** Drops the kept blocks overlapping [pa, pa+len): the next read of them fetches them again (a second look). */
  forget(pa: number, len: number): void {
    if (!Number.isSafeInteger(pa) || !(len > 0)) return;
    for (let n = Math.floor(pa / this.blockBytes); n * this.blockBytes < pa + len; n++) {
      const b = this.blocks.get(n);
      if (b === undefined) continue;
      this.blocks.delete(n);
      if (this.last === b) this.last = undefined;
    }
  }

  /** The block holding all of [pa, pa+len), fetched when not kept; undefined when the range spans blocks or is not all backed. */
  fetch(pa: number, len: number): Block | undefined {
    const kept = this.lookup(pa, len);
    if (kept !== undefined) return kept;
    if (!(len > 0) || !Number.isSafeInteger(pa) || pa < 0) return undefined;
    const n = Math.floor(pa / this.blockBytes);
    if (Math.floor((pa + len - 1) / this.blockBytes) !== n) return undefined;
    const extent = this.extent(n, pa);
    if (extent === undefined || pa + len > extent.end) return undefined;
    this.load([extent]);
    const b = this.blocks.get(n);
    return b !== undefined && pa >= b.start && pa + len <= b.end ? b : undefined;
  }

  /**
   * The source's batched read through the blocks: the blocks the ops need
   * and lack are fetched in one batch, then copied out. An op that is too
   * large, runs into a hole or touches a block that failed goes to the
   * source as it is, so its failures carry the source's own ranges.
   */
  readv(ops: ReadOp[]): ReadFailure[] {
    this.current();
    const B = this.blockBytes;
    const direct: ReadOp[] = [];
    const wanted = new Map<number, { start: number; end: number; n: number }>();
    const through: ReadOp[] = [];
    for (const op of ops) {
      const { addr, len } = op;
      if (!Number.isSafeInteger(addr) || !Number.isSafeInteger(len) || addr < 0 || len <= 0 || (op.dst !== undefined && op.dst.length < len)) {
        direct.push(op);
        continue;
      }
      const first = Math.floor(addr / B);
      const last = Math.floor((addr + len - 1) / B);
      if (last - first >= MAX_SPAN_BLOCKS) {
        direct.push(op);
        continue;
      }
      let ok = true;
      for (let n = first; n <= last && ok; n++) {
        const at = Math.max(addr, n * B);
        const kept = this.blocks.get(n);
        if (kept !== undefined && at >= kept.start && Math.min(addr + len, (n + 1) * B) <= kept.end) continue;
        const extent = wanted.get(n) ?? this.extent(n, at);
        // Covered only if the op's piece of this block is backed all through.
        if (extent === undefined || at < extent.start || Math.min(addr + len, (n + 1) * B) > extent.end) ok = false;
        else wanted.set(n, extent);
      }
      (ok ? through : direct).push(op);
    }
    if (wanted.size > this.maxBlocks) {
      // More than one pass may keep: read this batch as it is.
      direct.push(...through);
      through.length = 0;
    } else if (wanted.size) this.load([...wanted.values()]);
    for (const op of through) {
      const { addr, len } = op;
      const dst = (op.dst ??= new Uint8Array(len));
      const first = Math.floor(addr / B);
      const last = Math.floor((addr + len - 1) / B);
      let ok = true;
      for (let n = first; n <= last && ok; n++) {
        const b = this.blocks.get(n);
        ok = b !== undefined && Math.max(addr, n * B) >= b.start && Math.min(addr + len, (n + 1) * B) <= b.end;
      }
      if (!ok) {
        direct.push(op); // a block that failed to read (or was dropped at the bound)
        continue;
      }
      for (let n = first; n <= last; n++) {
        const b = this.blocks.get(n)!;
        const from = Math.max(addr, b.start);
        const to = Math.min(addr + len, b.end);
        dst.set(b.bytes.subarray(from - b.start, to - b.start), from - addr);
      }
      this.stats.hits++;
    }
    if (!direct.length) return [];
    this.stats.direct += direct.length;
    return this.mem.readv(direct);
  }

  /**
   * Fetches, in one batched read, the blocks holding these ranges that are
   * not kept yet (a walker that knows what it will read next: the cred and
   * signal of every task). Ranges across a hole or spanning many blocks are
   * skipped; nothing is read when all are kept. Bounded by the pass's limit.
   */
  prefetch(ranges: readonly { readonly pa: number; readonly len: number }[]): void {
    this.current();
    const B = this.blockBytes;
    const wanted = new Map<number, { start: number; end: number; n: number }>();
    for (const { pa, len } of ranges) {
      if (!Number.isSafeInteger(pa) || !Number.isSafeInteger(len) || pa < 0 || len <= 0) continue;
      const first = Math.floor(pa / B);
      const last = Math.floor((pa + len - 1) / B);
      if (last - first >= MAX_SPAN_BLOCKS) continue;
      for (let n = first; n <= last; n++) {
        if (this.blocks.has(n) || wanted.has(n)) continue;
        const extent = this.extent(n, Math.max(pa, n * B));
        if (extent !== undefined) wanted.set(n, extent);
      }
      if (wanted.size >= this.maxBlocks) break;
    }
    if (wanted.size) this.load([...wanted.values()]);
  }

  /** Block `n` clipped to the backed range holding `at` (RAM ranges need not be block-aligned). */
  private extent(n: number, at: number): { start: number; end: number; n: number } | undefined {
    const B = this.blockBytes;
    for (const r of this.ranges) {
      if (at >= r.start && at < r.end) return { start: Math.max(n * B, r.start), end: Math.min((n + 1) * B, r.end), n };
    }
    return undefined;
  }

  /** Fetches the extents in one batched read; those that fail are not kept. */
  private load(wanted: readonly { start: number; end: number; n: number }[]): void {
    let extents = wanted;
    const learned = this.learned;
    if (learned.size) {
      // This pass's first fetch: the last pass's blocks come along (those still backed as they were).
      const asked = new Set(wanted.map((e) => e.n));
      const more: { start: number; end: number; n: number }[] = [];
      for (const [n, b] of learned) if (!asked.has(n) && !this.blocks.has(n) && this.extent(n, b.start)?.end === b.end) more.push({ start: b.start, end: b.end, n });
      this.learned = new Map();
      extents = [...wanted, ...more];
      this.stats.learned += more.length;
    }
    if (this.blocks.size + extents.length > this.maxBlocks) {
      this.stats.overflows++;
      this.blocks.clear();
      this.last = undefined;
    }
    // A block of the last pass at the same place is read into its old buffer (see newPass).
    const again = extents.map((e) => {
      const old = learned.get(e.n);
      return old !== undefined && old.start === e.start && old.end === e.end ? old : undefined;
    });
    const ops: ReadOp[] = extents.map((e, i) => ({ addr: gpa(e.start), len: e.end - e.start, dst: again[i]?.bytes ?? this.space(e.end - e.start) }));
    this.stats.fetches++;
    const failures = this.mem.readv(ops);
    for (let i = 0; i < extents.length; i++) {
      const e = extents[i]!;
      if (failures.some((f) => f.addr < e.end && e.start < f.addr + Math.max(f.len, 1))) continue;
      const bytes = ops[i]!.dst!;
      this.blocks.set(e.n, again[i] ?? { start: e.start, end: e.end, bytes, view: new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength) });
      this.stats.blocks++;
      this.stats.bytes += bytes.length;
    }
  }

  /** `len` bytes of this pass's arena (not zeroed: every byte is written by the read, or the block is not kept). */
  private space(len: number): Uint8Array {
    if (this.arena === undefined || this.arenaUsed + len > this.arena.length) {
      this.arena = Buffer.allocUnsafeSlow(Math.max(ARENA_BYTES, len));
      this.arenaUsed = 0;
    }
    const out = this.arena.subarray(this.arenaUsed, this.arenaUsed + len);
    this.arenaUsed += len;
    return out;
  }
}
