/**
 * Fast reads of guest-physical memory for the translation layer: little-endian
 * integers and short views, zero-copy from mapped regions when the source
 * offers them, one `readv` otherwise. Region lookups are cached per source
 * generation (a live source may remap on refresh). Inside a pass, a source
 * that asks for it (`passBlockBytes`) is read in blocks kept for that pass
 * only (pass-blocks.ts), served like mapped regions.
 */
import { FaultError } from '../core/errors.js';
import type { MappedRegion, PhysicalMemory, ReadOp } from '../memory/types.js';
import { type Block, PassBlocks, validBlockBytes } from './pass-blocks.js';
import { gpa } from '../core/address.js';

interface Region {
  readonly start: number;
  readonly end: number;
  readonly bytes: Uint8Array;
  readonly view: DataView;
}

/**
 * Watches the physical pages a piece of work reads (the optimistic
 * consistent mode): `touch` is called before bytes are read.
 */
export interface ReadRecorder {
  /**
   * [pa, pa+len) is about to be read. `inPlace`: the reader is handed a view
   * of that memory (mapped, or a block of this pass), whose bytes are read
   * when they are used, not now.
   */
  touch(pa: number, len: number, inPlace?: boolean): void;
}

export class PhysReader {
  readonly mem: PhysicalMemory;
  /** When set, told about every physical range before it is read. */
  recorder: ReadRecorder | undefined;
  private regions: Region[] = [];
  private regionsGeneration = -1;
  private mappedRef: readonly MappedRegion[] | undefined;
  /** Last region hit: most reads of a walk or a struct fall in the same one. */
  private last: Region | undefined;
  private readonly scratch = new Uint8Array(8);
  private readonly scratchView = new DataView(this.scratch.buffer);
  /** The current pass's blocks (only between beginPass and endPass, for sources that ask for them). */
  private blocks: PassBlocks | undefined;
  /** The blocks object between passes: what the last pass read, to fetch ahead in the next (no bytes kept). */
  private idle: PassBlocks | undefined;

  constructor(mem: PhysicalMemory) {
    this.mem = mem;
  }

  /** True when the source hands out views of guest memory. */
  get zeroCopy(): boolean {
    return typeof this.mem.mapped === 'function';
  }

  private sync(): void {
    // Asked on every read: a closed source stops offering its views (reading an unmapped
    // view would crash the process), and a live one may remap on refresh.
    const current = this.mem.mapped?.();
    if (this.regionsGeneration === this.mem.generation && (current === this.mappedRef || this.sameRegions(current))) return;
    this.regionsGeneration = this.mem.generation;
    this.mappedRef = current;
    this.last = undefined;
    const mapped: readonly MappedRegion[] = current ?? [];
    this.regions = mapped
      .filter((r) => r.bytes.length > 0)
      .map((r) => ({
        start: r.start,
        end: r.start + r.bytes.length,
        bytes: r.bytes,
        view: new DataView(r.bytes.buffer, r.bytes.byteOffset, r.bytes.byteLength),
      }))
      .sort((a, b) => a.start - b.start);
  }

  /** True when `current` lists the same views as the cached regions (a source that returns a fresh array). */
  private sameRegions(current: readonly MappedRegion[] | undefined): boolean {
    const mine = this.mappedRef;
    if (current === undefined || mine === undefined || current.length !== mine.length) return false;
    for (let i = 0; i < current.length; i++) if (current[i]!.bytes !== mine[i]!.bytes || current[i]!.start !== mine[i]!.start) return false;
    this.mappedRef = current;
    return true;
  }

  /**
   * Starts keeping blocks for a pass, dropping any kept so far (every pass
   * reads afresh), when the source asks for it and maps nothing.
   */
  beginPass(): void {
    const size = this.mem.passBlockBytes;
    if (!validBlockBytes(size) || typeof this.mem.mapped === 'function') {
      this.blocks = undefined;
      return;
    }
    const reuse = this.blocks ?? this.idle;
    this.idle = undefined;
    if (reuse?.blockBytes === size) {
      reuse.newPass();
      this.blocks = reuse;
    } else this.blocks = new PassBlocks(this.mem, size);
  }

  /** Stops keeping blocks: outside passes every read goes to the source (only the list of blocks read is kept, to fetch ahead). */
  endPass(): void {
    if (this.blocks === undefined) return;
    this.blocks.endPass();
    this.idle = this.blocks;
    this.blocks = undefined;
  }

  /** Drops the blocks kept so far in this pass (a validation retry reads everything again). */
  dropPassBlocks(): void {
    this.blocks?.clear();
  }

  /**
   * Fetches the blocks holding these ranges in one batch, inside a pass of a
   * source read in blocks; does nothing otherwise (no read is worth making
   * ahead on the others). Reads nothing for the recorder: the reads that
   * follow are what a run uses.
   */
  prefetch(ranges: readonly { readonly pa: number; readonly len: number }[]): void {
    if (this.blocks !== undefined && ranges.length) this.blocks.prefetch(ranges);
  }

  /** The current pass's blocks (their counters), when blocks are kept. */
  get passBlocks(): PassBlocks | undefined {
    return this.blocks;
  }

  /** The mapped region (or kept block of this pass) holding [pa, pa+len), if any, told to the recorder as a read. No read. */
  region(pa: number, len: number): Region | undefined {
    if (this.recorder !== undefined) this.recorder.touch(pa, len);
    return this.find(pa, len);
  }

  /** The mapped region (or kept block of this pass) holding [pa, pa+len), if any; the recorder is not told. */
  private find(pa: number, len: number): Region | undefined {
    if (this.blocks !== undefined) return this.blocks.lookup(pa, len);
    this.sync();
    const last = this.last;
    if (last !== undefined && pa >= last.start && pa + len <= last.end) return last;
    const rs = this.regions;
    let lo = 0;
    let hi = rs.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const r = rs[mid]!;
      if (pa < r.start) hi = mid - 1;
      else if (pa >= r.end) lo = mid + 1;
      else {
        if (pa + len > r.end) return undefined;
        this.last = r;
        return r;
      }
    }
    return undefined;
  }

  /** Reads 8 bytes at `pa` as two 32-bit halves into `out` ([lo, hi]); throws FaultError. */
  u64Halves(pa: number, out: Uint32Array): void {
    const r = this.region(pa, 8) ?? this.fetchBlock(pa, 8);
    if (r !== undefined) {
      const o = pa - r.start;
      out[0] = r.view.getUint32(o, true);
      out[1] = r.view.getUint32(o + 4, true);
      return;
    }
    this.readSlow(pa, 8);
    out[0] = this.scratchView.getUint32(0, true);
    out[1] = this.scratchView.getUint32(4, true);
  }

  u64(pa: number): bigint {
    const r = this.region(pa, 8) ?? this.fetchBlock(pa, 8);
    if (r !== undefined) return r.view.getBigUint64(pa - r.start, true);
    this.readSlow(pa, 8);
    return this.scratchView.getBigUint64(0, true);
  }

  /**
   * `len` bytes at `pa`: a view of mapped memory when possible (valid for
   * the current generation only), else a fresh copy. Throws FaultError.
   */
  bytes(pa: number, len: number): Uint8Array {
    let r = this.find(pa, len);
    if (this.recorder !== undefined) this.recorder.touch(pa, len, r !== undefined);
    r ??= this.fetchBlock(pa, len);
    if (r !== undefined) return r.bytes.subarray(pa - r.start, pa - r.start + len);
    const op: ReadOp = { addr: gpa(pa), len };
    const failures = this.source.readv([op]);
    if (failures.length) throw new FaultError('physical', failures[0]!.addr, failures[0]!.reason);
    return op.dst!;
  }

  /** The source's batched read, seen by the recorder (every physical read of the arch layer goes through here or `region`). */
  readv(ops: ReadOp[]): ReturnType<PhysicalMemory['readv']> {
    const rec = this.recorder;
    if (rec !== undefined) for (const op of ops) rec.touch(op.addr, op.len);
    return this.source.readv(ops);
  }

  /** Where reads that no region serves go: this pass's blocks, or the source. */
  private get source(): Pick<PhysicalMemory, 'readv'> {
    return this.blocks ?? this.mem;
  }

  /** The block holding [pa, pa+len), fetched for this pass; undefined outside passes or when no one block holds it. */
  private fetchBlock(pa: number, len: number): Block | undefined {
    return this.blocks === undefined ? undefined : this.blocks.fetch(pa, len);
  }

  /**
   * The 4 KiB page `page` (a page number) as bytes, read without telling the
   * recorder: a view of mapped memory when a region holds it (live: valid
   * now only), else a copy into `scratch` (unreadable bytes zero, so two
   * reads of an unchanged page compare equal).
   */
  pageUntracked(page: number, scratch: Uint8Array): Uint8Array {
    return this.pageView(page) ?? this.pageCopy(page, scratch);
  }

  /** The 4 KiB page `page` copied through the source into `scratch`, without telling the recorder (for when pageView has none). */
  pageCopy(page: number, scratch: Uint8Array): Uint8Array {
    const dst = scratch.subarray(0, 4096);
    this.source.readv([{ addr: gpa(page * 4096), len: 4096, dst }]);
    return dst;
  }

  /**
   * The 4 KiB page `page` as a view, without telling the recorder, when a
   * mapped region or a block of this pass holds it (live: it shows guest
   * memory as it is at each access); undefined when only a copy could.
   */
  pageView(page: number): Uint8Array | undefined {
    const pa = page * 4096;
    // Through this pass's blocks: the copy a validated run keeps is then the bytes it decodes.
    const r = this.find(pa, 4096) ?? this.fetchBlock(pa, 4096);
    return r === undefined ? undefined : r.bytes.subarray(pa - r.start, pa - r.start + 4096);
  }

  private readSlow(pa: number, len: number): void {
    const failures = this.source.readv([{ addr: gpa(pa), len, dst: this.scratch.subarray(0, len) }]);
    if (failures.length) throw new FaultError('physical', failures[0]!.addr, failures[0]!.reason);
  }
}
