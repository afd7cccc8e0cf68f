/**
 * A guest-virtual address space: one DTB over one PhysicalMemory, with cached
 * translation, batched virtual reads split at page boundaries, typed scalar
 * reads, iteration of present mappings, and the kernel direct map (found by
 * arch/direct-map.ts). Reads inside one page of a mapped source, and objects
 * read in place over contiguous pages, are zero-copy views (valid for the
 * current generation). */
import { FaultError, ProfileError } from '../core/errors.js';
import type { PhysicalMemory, ReadOp } from '../memory/types.js';
import { findDirectMapBase } from './direct-map.js';
import { PhysReader } from './phys-reader.js';
import {
  type MappingOptions,
  type Mapping,
  mappings,
  type PagingMode,
  TableReader,
  type Translation,
  type WalkStep,
} from './x86-64/paging.js';
import { Translator, type TranslatorOptions, type TranslatorStats } from './x86-64/translator.js';
import { type GuestPhysAddr, type GuestVirtAddr, gpa, gva } from '../core/address.js';

/** One virtual read in a batch. When `dst` is absent it is allocated and stored back. */
export interface VirtualReadOp {
  va: GuestVirtAddr;
  len: number;
  dst?: Uint8Array;
}

/** A range of a virtual batch that could not be read; its bytes are zero in `dst`. */
export interface VirtualReadFailure {
  readonly va: GuestVirtAddr;
  readonly len: number;
  readonly reason: string;
}

export interface AddressSpaceOptions extends TranslatorOptions {
  /** Shown in errors and reports, e.g. 'kernel' or 'pid 42'. */
  readonly name?: string;
  /** Start of the kernel direct map (page_offset_base), when known. */
  readonly directMapBase?: bigint;
}

/** Largest single virtual read accepted (guest lengths are hostile input). */
export const MAX_VIRTUAL_READ = 1 << 30;
const PAGE = 4096;
/** Largest object `readInPlace` hands out in place (pages translated one by one to check they are contiguous). */
const MAX_VIEW = 64 * 1024;

/** Level shifts used to skip a whole unmapped region after a fault. */
const LEVEL_SHIFT: Record<number, bigint> = { 1: 12n, 2: 21n, 3: 30n, 4: 39n, 5: 48n };

export class AddressSpace {
  readonly name: string;
  readonly translator: Translator;
  private directBase: bigint | undefined;

  constructor(source: PhysicalMemory | TableReader, dtb: number, mode: PagingMode, options: AddressSpaceOptions = {}) {
    this.translator = new Translator(source, dtb, mode, options);
    this.name = options.name ?? `dtb 0x${dtb.toString(16)}`;
    this.directMapBase = options.directMapBase;
  }

  get mem(): PhysicalMemory {
    return this.translator.mem;
  }
  /** A running guest's memory, read while it runs (not an image, not a guest the source holds paused). */
  get changesUnderUs(): boolean {
    const t = this.translator.mem.technique;
    return t.live && !t.haltsGuest;
  }
  /** Start of the kernel direct map (page_offset_base); its translations are arithmetic and survive every pass. */
  get directMapBase(): bigint | undefined {
    return this.directBase;
  }
  set directMapBase(base: bigint | undefined) {
    this.directBase = base;
    this.translator.setDirectMap(base, this.mem.size);
  }
  get dtb(): number {
    return this.translator.dtb;
  }
  get mode(): PagingMode {
    return this.translator.mode;
  }
  get stats(): TranslatorStats {
    return this.translator.stats;
  }
  private get phys(): PhysReader {
    return this.translator.tables.phys;
  }

  /** Another address space over the same source sharing the page-table cache (e.g. a process's mm->pgd). */
  withDtb(dtb: number, name?: string, options: TranslatorOptions = {}): AddressSpace {
    const opts: AddressSpaceOptions = { ...options, name: name ?? `dtb 0x${dtb.toString(16)}` };
    const s = new AddressSpace(this.translator.tables, dtb, this.mode, opts);
    s.directMapBase = this.directMapBase;
    return s;
  }

  flush(): void {
    this.translator.flush();
  }

  translate(va: GuestVirtAddr): Translation {
    return this.translator.translate(va);
  }

  /** The translation, or undefined when `va` is not mapped. */
  tryTranslate(va: GuestVirtAddr): Translation | undefined {
    try {
      return this.translator.translate(va);
    } catch (e) {
      if (e instanceof FaultError) return undefined;
      throw e;
    }
  }

  translateMany(vas: readonly GuestVirtAddr[]): (Translation | FaultError)[] {
    return this.translator.translateMany(vas);
  }

  /** Physical address of `va`. Throws FaultError. */
  physical(va: GuestVirtAddr): GuestPhysAddr {
    return gpa(this.translator.physical(va));
  }

  trace(va: GuestVirtAddr): { steps: WalkStep[]; result: Translation | FaultError } {
    return this.translator.trace(va);
  }

  /**
   * Reads every op; splits at page boundaries and issues one batched physical
   * read. Unmapped or unreadable ranges are zero-filled and returned.
   */
  readv(ops: VirtualReadOp[]): VirtualReadFailure[] {
    const failures: VirtualReadFailure[] = [];
    const physOps: ReadOp[] = [];
    const physVa: bigint[] = [];
    for (const op of ops) {
      if (!Number.isInteger(op.len) || op.len < 0 || op.len > MAX_VIRTUAL_READ) {
        throw new RangeError(`virtual read of ${op.len} bytes at 0x${op.va.toString(16)}: length must be 0..${MAX_VIRTUAL_READ}`);
      }
      const dst = op.dst ?? new Uint8Array(op.len);
      if (dst.length < op.len) throw new RangeError(`virtual read at 0x${op.va.toString(16)}: dst holds ${dst.length} < ${op.len} bytes`);
      op.dst = dst;
      let done = 0;
      // Physically contiguous pieces are merged into one op.
      let runPa = -1;
      let runOff = 0;
      let runLen = 0;
      const flushRun = (): void => {
        if (runLen > 0) {
          // Mapped memory is copied directly; the rest goes to the source in one batch.
          const r = this.phys.region(runPa, runLen);
          if (r !== undefined) dst.set(r.bytes.subarray(runPa - r.start, runPa - r.start + runLen), runOff);
          else {
            physOps.push({ addr: gpa(runPa), len: runLen, dst: dst.subarray(runOff, runOff + runLen) });
            physVa.push(op.va + BigInt(runOff));
          }
        }
        runLen = 0;
      };
      while (done < op.len) {
        const va = op.va + BigInt(done);
        let pa: number;
        try {
          pa = this.translator.physical(va);
        } catch (e) {
          if (!(e instanceof FaultError)) throw e;
          flushRun();
          // A non-present entry at level L leaves its whole span unmapped; a fault without a
          // level is a non-canonical address, whose hole is aligned far beyond 1 GiB.
          const shift = e.level === undefined ? 30n : (LEVEL_SHIFT[e.level] ?? 12n);
          const span = 1n << shift;
          const next = ((BigInt.asUintN(64, va) / span) + 1n) * span;
          const toBoundary = next - BigInt.asUintN(64, va);
          const skip = toBoundary < BigInt(op.len - done) ? Number(toBoundary) : op.len - done;
          dst.fill(0, done, done + skip);
          failures.push({ va: gva(va), len: skip, reason: e.detail });
          done += skip;
          continue;
        }
        // 4 KiB steps with the allocation-free lookup; large pages merge into one run below.
        const n = Math.min(PAGE - (pa % PAGE), op.len - done);
        if (runLen > 0 && runPa + runLen === pa) runLen += n;
        else {
          flushRun();
          runPa = pa;
          runOff = done;
          runLen = n;
        }
        done += n;
      }
      flushRun();
    }
    if (physOps.length) {
      for (const f of this.phys.readv(physOps)) {
        const i = physOps.findIndex((p) => f.addr >= p.addr && f.addr < p.addr + p.len);
        const va = i >= 0 ? physVa[i]! + BigInt(f.addr - physOps[i]!.addr) : 0n;
        failures.push({ va: gva(va), len: f.len, reason: `maps to physical 0x${f.addr.toString(16)}: ${f.reason}` });
      }
    }
    return failures;
  }

  /**
   * `len` bytes at `va`: a zero-copy view when they lie in one page of a
   * mapped source (valid for the current generation only), else a copy.
   * Throws FaultError on any unreadable byte.
   */
  read(va: GuestVirtAddr, len: number): Uint8Array {
    if (len <= PAGE && len >= 0) {
      const pa = this.translator.physical(va);
      if ((pa % PAGE) + len <= PAGE) {
        try {
          return this.phys.bytes(pa, len);
        } catch (e) {
          throw this.physicalFault(va, pa, e);
        }
      }
    }
    const op: VirtualReadOp = { va, len };
    const failures = this.readv([op]);
    if (failures.length) {
      const f = failures[0]!;
      throw new FaultError('virtual', f.va, f.reason);
    }
    return op.dst!;
  }

  /**
   * `len` bytes at `va` as a zero-copy view when they lie in physically contiguous pages of one mapped
   * region (a slab object across pages of the direct map; a task_struct is ~9.7 KiB), else what `read` gives. A
   * view shows guest memory as it is when each byte is used, and is valid
   * for the current generation only: for decoding an object in place, never
   * for keeping (a large read that is kept, a symbol table, goes by `read`).
   */
  readInPlace(va: GuestVirtAddr, len: number): Uint8Array {
    if (!(len > 0 && len <= MAX_VIEW)) return this.read(va, len);
    let pa: number;
    try {
      pa = this.translator.physical(va);
      for (let done = PAGE - (pa % PAGE); done < len; done += PAGE) {
        if (this.translator.physical(gva(BigInt.asUintN(64, va + BigInt(done)))) !== pa + done) return this.read(va, len);
      }
    } catch (e) {
      if (e instanceof FaultError) return this.read(va, len);
      throw e;
    }
    try {
      // One physical range: a view where one region (or pass block) holds it, else one copy.
      return this.phys.bytes(pa, len);
    } catch (e) {
      throw this.physicalFault(va, pa, e);
    }
  }

  /**
   * Tells the memory below what will be read next (virtual ranges, at most
   * 1024, each up to 64 KiB): a source read in pass blocks fetches them in
   * one batch; others read nothing. Unmapped ranges are skipped.
   */
  prefetch(ranges: readonly { readonly va: bigint; readonly len: number }[]): void {
    if (this.phys.passBlocks === undefined) return;
    const phys: { pa: number; len: number }[] = [];
    for (const { va, len } of ranges.slice(0, 1024)) {
      if (!Number.isInteger(len) || len <= 0 || len > 1 << 16) continue;
      // Page by page: physically scattered pages of one range are separate ranges below.
      for (let done = 0; done < len; ) {
        const at = va + BigInt(done);
        const n = Math.min(PAGE - Number(BigInt.asUintN(12, at)), len - done);
        try {
          phys.push({ pa: this.translator.physical(at), len: n });
        } catch (e) {
          if (!(e instanceof FaultError)) throw e;
        }
        done += n;
      }
    }
    this.phys.prefetch(phys);
  }

  /**
   * Makes the next read of [va, va+len) see guest memory as it is now, not
   * this pass's kept block (a walk's second look at something it caught
   * changing): the blocks holding it are fetched again. No-op elsewhere.
   */
  lookAgain(va: bigint, len: number): void {
    const blocks = this.phys.passBlocks;
    if (blocks === undefined || !(len > 0) || len > 1 << 16) return;
    for (let done = 0; done < len; ) {
      const at = va + BigInt(done);
      const n = Math.min(PAGE - Number(BigInt.asUintN(12, at)), len - done);
      try {
        blocks.forget(this.translator.physical(at), n);
      } catch (e) {
        if (!(e instanceof FaultError)) throw e;
      }
      done += n;
    }
  }

  /** Reads into a caller-owned buffer. Throws FaultError. */
  readInto(va: GuestVirtAddr, dst: Uint8Array): void {
    const failures = this.readv([{ va, len: dst.length, dst }]);
    if (failures.length) throw new FaultError('virtual', failures[0]!.va, failures[0]!.reason);
  }

  private physicalFault(va: bigint, pa: number, e: unknown): FaultError {
    const reason = e instanceof Error ? e.message : String(e);
    return new FaultError('virtual', va, `maps to physical 0x${pa.toString(16)}, which is unreadable (${reason})`, { cause: e });
  }

  private view(va: bigint, size: number): DataView {
    const b = this.read(gva(va), size);
    return new DataView(b.buffer, b.byteOffset, size);
  }

  readU8(va: bigint): number {
    return this.read(gva(va), 1)[0]!;
  }
  readU16(va: bigint): number {
    return this.view(va, 2).getUint16(0, true);
  }
  readU32(va: bigint): number {
    return this.view(va, 4).getUint32(0, true);
  }
  readU64(va: bigint): bigint {
    // Hot path: one cached translation and one direct load when inside a page
    // (the page offset of the PA is that of the VA).
    const pa = this.translator.physical(va);
    if (pa % PAGE <= PAGE - 8) {
      try {
        return this.phys.u64(pa);
      } catch (e) {
        throw this.physicalFault(va, pa, e);
      }
    }
    return this.view(va, 8).getBigUint64(0, true);
  }
  readPointer(va: bigint): bigint {
    return this.readU64(va);
  }

  /** A NUL-terminated string of at most `max` bytes (UTF-8). Throws FaultError. */
  readCString(va: bigint, max = 4096): string {
    const parts: Uint8Array[] = [];
    let got = 0;
    let cur = va;
    while (got < max) {
      const inPage = PAGE - Number(BigInt.asUintN(12, cur));
      const n = Math.min(inPage, max - got);
      const chunk = this.read(gva(cur), n);
      const nul = chunk.indexOf(0);
      if (nul >= 0) {
        parts.push(chunk.subarray(0, nul));
        break;
      }
      parts.push(chunk);
      got += n;
      cur += BigInt(n);
    }
    return Buffer.concat(parts).toString('utf8');
  }

  /** Present leaf mappings in VA order, bounded (see MappingOptions). */
  mappings(options: MappingOptions = {}): Generator<Mapping> {
    return mappings(this.translator.tables, this.mode, this.dtb, options);
  }

  /** First VA of the kernel half for this paging mode. */
  get kernelHalfStart(): bigint {
    return this.mode.vaBits === 48 ? 0xffff_8000_0000_0000n : 0xff00_0000_0000_0000n;
  }

  private requireDirectMap(): bigint {
    if (this.directMapBase === undefined) {
      throw new ProfileError(`the direct map base (page_offset_base) of address space ${this.name} is unknown`, {
        symbol: 'page_offset_base',
        hint: 'call findDirectMap() or set directMapBase from the page_offset_base symbol',
      });
    }
    return this.directMapBase;
  }

  /** Kernel direct-map VA of a physical address. */
  physToDirect(pa: GuestPhysAddr): GuestVirtAddr {
    return gva(this.requireDirectMap() + BigInt(pa));
  }

  /** Physical address of a direct-map VA (arithmetic, no walk). */
  directToPhys(va: GuestVirtAddr): GuestPhysAddr {
    const base = this.requireDirectMap();
    const off = va - base;
    if (off < 0n || off >= BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new FaultError('virtual', va, `is not in the direct map starting at 0x${base.toString(16)}`);
    }
    return gpa(Number(off));
  }

  /** Finds the direct map from the page tables (arch/direct-map.ts); sets and returns `directMapBase`, or undefined. */
  findDirectMap(maxTables = 4096): GuestVirtAddr | undefined {
    const base = findDirectMapBase(this, maxTables);
    if (base !== undefined) this.directMapBase = base;
    return base;
  }
}
