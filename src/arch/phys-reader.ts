/**
 * Fast reads of guest-physical memory for the translation layer: little-endian
 * integers and short views, zero-copy from mapped regions when the source
 * offers them, one `readv` otherwise. Region lookups are cached per source
 * generation (a live source may remap on refresh).
 */
import { FaultError } from '../core/errors.js';
import type { MappedRegion, PhysicalMemory, ReadOp } from '../memory/types.js';
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
  touch(pa: number, len: number): void;
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

  /** The mapped region holding [pa, pa+len), if any. */
  region(pa: number, len: number): Region | undefined {
    if (this.recorder !== undefined) this.recorder.touch(pa, len);
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
    const r = this.region(pa, 8);
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
    const r = this.region(pa, 8);
    if (r !== undefined) return r.view.getBigUint64(pa - r.start, true);
    this.readSlow(pa, 8);
    return this.scratchView.getBigUint64(0, true);
  }

  /**
   * `len` bytes at `pa`: a view of mapped memory when possible (valid for
   * the current generation only), else a fresh copy. Throws FaultError.
   */
  bytes(pa: number, len: number): Uint8Array {
    const r = this.region(pa, len);
    if (r !== undefined) return r.bytes.subarray(pa - r.start, pa - r.start + len);
    const op: ReadOp = { addr: gpa(pa), len };
    const failures = this.mem.readv([op]);
    if (failures.length) throw new FaultError('physical', failures[0]!.addr, failures[0]!.reason);
    return op.dst!;
  }

  /** The source's batched read, seen by the recorder (every physical read of the arch layer goes through here or `region`). */
  readv(ops: ReadOp[]): ReturnType<PhysicalMemory['readv']> {
    const rec = this.recorder;
    if (rec !== undefined) for (const op of ops) rec.touch(op.addr, op.len);
    return this.mem.readv(ops);
  }

  /**
   * The 4 KiB page `page` (a page number) as bytes, read without telling the
   * recorder: a view of mapped memory when a region holds it (live: valid
   * now only), else a copy into `scratch` (unreadable bytes zero, so two
   * reads of an unchanged page compare equal).
   */
  pageUntracked(page: number, scratch: Uint8Array): Uint8Array {
    const pa = page * 4096;
    const saved = this.recorder;
    this.recorder = undefined;
    let r: Region | undefined;
    try {
      r = this.region(pa, 4096);
    } finally {
      this.recorder = saved;
    }
    if (r !== undefined) return r.bytes.subarray(pa - r.start, pa - r.start + 4096);
    const dst = scratch.subarray(0, 4096);
    this.mem.readv([{ addr: gpa(pa), len: 4096, dst }]);
    return dst;
  }

  private readSlow(pa: number, len: number): void {
    const failures = this.mem.readv([{ addr: gpa(pa), len, dst: this.scratch.subarray(0, len) }]);
    if (failures.length) throw new FaultError('physical', failures[0]!.addr, failures[0]!.reason);
  }
}
