/**
 * Fast reads of a live guest for the monitor's hot loop: kernel virtual → guest-physical by arithmetic in the
 * direct map (slab objects: tasks, creds, modules' list heads, sockets) and by the kernel address space's
 * cached translation elsewhere (kernel image, vmalloc); bytes from the source's zero-copy mapped views when
 * it has them (live map), else through batched `readv` into buffers we own (live read, QMP, gdbstub).
 *
 * Every read may fail: `bytes` returns undefined for an unreadable or unmapped range, never throws for
 * guest-controlled addresses.
 */
import type { Kernel } from '../linux/kernel.js';
import type { MappedRegion, PhysicalMemory } from '../memory/types.js';
import { type GuestPhysAddr, type GuestVirtAddr, gpa, gva } from '../core/address.js';

const PAGE = 4096;

export class GuestView {
  private readonly regions: readonly MappedRegion[];
  private lastRegion: MappedRegion | undefined;
  private readonly directBase: bigint | undefined;
  private readonly directEnd: bigint | undefined;
  private readonly scratch = new Map<number, Uint8Array>();
  /** A DataView per mapped region (same order as `regions`), built once. */
  private readonly regionViews: DataView[];
  private lastView: DataView | undefined;
  /** Offset in the DataView of the last `dv` call's address (a field, so the hot path allocates nothing). */
  at = 0;
  private readonly size: number;
  private baseHi: number | undefined;
  private baseLo: number | undefined;
  /** Reads through readv (no mapped view), for the cost report. */
  copies = 0;

  constructor(
    readonly kernel: Kernel,
    /** Use zero-copy mapped views when the source has them (false: always copy, for comparisons). */
    zeroCopy = true,
  ) {
    const mem: PhysicalMemory = kernel.memory;
    this.regions = zeroCopy && mem.mapped ? mem.mapped() : [];
    this.regionViews = this.regions.map((r) => new DataView(r.bytes.buffer, r.bytes.byteOffset, r.bytes.length));
    let base: bigint | undefined;
    try {
      base = kernel.directMapBase;
    } catch {
      base = undefined; // no page_offset_base: every address goes through the page tables
    }
    this.directBase = base;
    this.directEnd = base === undefined ? undefined : base + BigInt(mem.size);
    this.size = mem.size;
    if (base !== undefined) {
      this.baseHi = Number(base >> 32n);
      this.baseLo = Number(base & 0xffffffffn);
    }
  }

  /**
   * A DataView and the offset in it of guest-physical `pa`, covering `len` bytes: the mapped region's own
   * view (no copy, no allocation) or a scratch copy valid until the next call. Undefined when unreadable.
   */
  window(pa: number, len: number): { readonly dv: DataView; readonly at: number } | undefined {
    const dv = this.dv(pa, len);
    return dv ? { dv, at: this.at } : undefined;
  }

  /**
   * `window` for the hot path, without allocating for mapped memory: the DataView covering `len` bytes at
   * `pa`, with the offset of `pa` in it left in `this.at` (read it before the next call). Undefined when
   * unreadable.
   */
  dv(pa: number, len: number): DataView | undefined {
    if (len <= 0 || len > 1 << 20 || pa < 0) return undefined;
    const r = this.region(pa, len);
    if (r) {
      this.at = pa - r.start;
      return this.lastView;
    }
    const b = this.bytes(pa, len);
    if (!b) return undefined;
    this.at = 0;
    return new DataView(b.buffer, b.byteOffset, b.length);
  }

  /** The mapped region's bytes holding [pa, pa+len) and the offset of pa in them (zero-copy sources only). */
  locate(pa: number, len: number): { readonly bytes: Uint8Array; readonly at: number } | undefined {
    const r = this.region(pa, len);
    return r ? { bytes: r.bytes, at: pa - r.start } : undefined;
  }

  /**
   * The guest-physical address a kernel pointer (the 8 bytes at `dv[at]`) points to, computed in 32-bit
   * halves for direct-map pointers (no BigInt on the hot path); other pointers go through the page tables.
   * -1 when it points nowhere readable.
   */
  pointerPa(dv: DataView, at: number): number {
    return this.halvesPa(dv.getUint32(at, true), dv.getUint32(at + 4, true));
  }

  /** `pointerPa` of a pointer already read as its low and high 32-bit halves. */
  halvesPa(lo: number, hi: number): number {
    if (this.baseHi !== undefined) {
      const off = (hi - this.baseHi) * 4294967296 + (lo - this.baseLo!);
      if (off >= 0 && off < this.size) return off;
    }
    if (hi < 0xff000000) return -1; // not a kernel address
    const pa = this.pa((BigInt(hi) << 32n) | BigInt(lo));
    return pa ?? -1;
  }

  /** The kernel VA of a direct-map physical address (for reports). */
  directVa(pa: number): GuestVirtAddr | undefined {
    return this.directBase === undefined ? undefined : gva(this.directBase + BigInt(pa));
  }

  get zeroCopy(): boolean {
    return this.regions.length > 0;
  }

  /** Guest-physical address of a kernel VA, or undefined when it is not mapped. */
  pa(va: bigint): GuestPhysAddr | undefined {
    if (this.directBase !== undefined && va >= this.directBase && va < this.directEnd!) return gpa(Number(va - this.directBase));
    const t = this.kernel.space.tryTranslate(gva(va));
    return t === undefined ? undefined : gpa(t.pa);
  }

  /**
   * `len` bytes at guest-physical `pa`: a live view when mapped (valid until the next call for copies),
   * undefined when unreadable. Reads crossing a page boundary outside the direct map are the caller's job.
   */
  bytes(pa: number, len: number): Uint8Array | undefined {
    if (len <= 0 || len > 1 << 20 || pa < 0) return undefined;
    const r = this.region(pa, len);
    if (r) return r.bytes.subarray(pa - r.start, pa - r.start + len);
    let buf = this.scratch.get(len);
    if (!buf) {
      buf = new Uint8Array(len);
      if (this.scratch.size < 64) this.scratch.set(len, buf);
    }
    this.copies++;
    const failures = this.kernel.memory.readv([{ addr: gpa(pa), len, dst: buf }]);
    return failures.length ? undefined : buf;
  }

  /** Copies `len` bytes at `pa` into a new buffer (for shadows), or undefined. */
  copy(pa: number, len: number): Uint8Array | undefined {
    const b = this.bytes(pa, len);
    return b ? Uint8Array.from(b) : undefined;
  }

  /** Reads into `dst` (no allocation); false when unreadable. */
  readInto(pa: number, dst: Uint8Array): boolean {
    const r = this.region(pa, dst.length);
    if (r) {
      dst.set(r.bytes.subarray(pa - r.start, pa - r.start + dst.length));
      return true;
    }
    this.copies++;
    return this.kernel.memory.readv([{ addr: gpa(pa), len: dst.length, dst }]).length === 0;
  }

  /**
   * Guest-physical address of user-space VA `va` (below 2^56, exact as a number) through the page tables at
   * guest-physical `rootPa` (an mm's pgd), 4- or 5-level; -1 when not present or unreadable. A walk of at
   * most `levels` reads of one entry each, straight from the mapping: what a process start needs for its
   * argv, without building an address space for a process that may be gone a millisecond later.
   */
  userPa(rootPa: number, va: number, levels: number): number {
    if (va < 0 || va >= 2 ** (12 + 9 * levels)) return -1;
    let table = rootPa;
    for (let level = levels; level >= 1; level--) {
      const size = 2 ** (12 + 9 * (level - 1));
      const dv = this.dv(table + (Math.floor(va / size) % 512) * 8, 8);
      if (!dv) return -1;
      const lo = dv.getUint32(this.at, true);
      const hi = dv.getUint32(this.at + 4, true);
      if ((lo & 1) === 0) return -1; // not present
      const frame = (hi & 0xfffff) * 4294967296 + (lo >>> 12) * 4096;
      if (level === 1) return frame + (va % 4096);
      // A 1 GiB or 2 MiB page (PS set at level 3 or 2): bits below its size in the entry are flags (PAT).
      if ((level === 2 || level === 3) && (lo & 0x80) !== 0) return frame - (frame % size) + (va % size);
      table = frame;
    }
    return -1;
  }

  /**
   * Copies the user-space bytes [va, va+dst.length) into `dst` through the page tables at `rootPa`; pages
   * that are not present stay zero. Returns how many bytes could not be read.
   */
  readUser(rootPa: number, va: number, dst: Uint8Array, levels: number): number {
    let missing = 0;
    for (let done = 0; done < dst.length; ) {
      const at = va + done;
      const n = Math.min(dst.length - done, PAGE - (at % PAGE));
      const pa = this.userPa(rootPa, at, levels);
      const src = pa < 0 ? undefined : this.bytes(pa, n);
      if (src) dst.set(src, done);
      else missing += n;
      done += n;
    }
    return missing;
  }

  /** A little-endian u64 at a kernel VA (must not cross a page), or undefined. */
  u64(va: bigint): bigint | undefined {
    const pa = this.pa(va);
    if (pa === undefined || (pa % PAGE) + 8 > PAGE) return pa === undefined ? undefined : this.u64Split(va);
    const b = this.bytes(pa, 8);
    return b ? new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true) : undefined;
  }

  private u64Split(va: bigint): bigint | undefined {
    try {
      return this.kernel.space.readU64(va);
    } catch {
      return undefined;
    }
  }

  private region(pa: number, len: number): MappedRegion | undefined {
    const last = this.lastRegion;
    if (last && pa >= last.start && pa + len <= last.start + last.bytes.length) return last;
    for (let i = 0; i < this.regions.length; i++) {
      const r = this.regions[i]!;
      if (pa >= r.start && pa + len <= r.start + r.bytes.length) {
        this.lastRegion = r;
        this.lastView = this.regionViews[i];
        return r;
      }
    }
    return undefined;
  }
}
