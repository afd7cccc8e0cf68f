/**
 * x86-64 paging as data plus one walker that reads it. 4-level and 5-level
 * (LA57) paging differ only by one more row in the table; 2 MiB and 1 GiB
 * pages are rows that allow the PS bit. Arithmetic runs on 32-bit halves in
 * plain numbers (bigint only at the edges): this is the hot path.
 *
 * Intel SDM vol. 3A §4.5: each level indexes 9 VA bits; an entry holds the
 * next table's (or the page's) physical address in bits 12..51, P (bit 0),
 * R/W (1), U/S (2), PS (7, levels 3 and 2 only) and XD/NX (63). The effective
 * R/W and U/S are the AND over all levels, NX the OR.
 *
 * Longer than ~400 lines on purpose: the paging table and the one walker that
 * reads it, with its allocation-free fast path: the hot path stays one unit
 * whose invariants are read together.
 */
import { FaultError } from '../../core/errors.js';
import type { PhysicalMemory } from '../../memory/types.js';
import { PhysReader } from '../phys-reader.js';
import { type GuestPhysAddr, gpa } from '../../core/address.js';

/** One level of the table, from the top. */
export interface LevelRow {
  /** 5 = PML5, 4 = PML4, 3 = PDPT, 2 = PD, 1 = PT. */
  readonly level: number;
  readonly name: string;
  /** Lowest VA bit this level indexes. */
  readonly shift: number;
  /** Page size mapped by a leaf at this level (PS set, or level 1), 0 when PS is reserved. */
  readonly leafSize: number;
}

export interface PagingMode {
  readonly name: '4-level' | '5-level';
  readonly levels: 4 | 5;
  /** Implemented virtual-address bits: 48 or 57. */
  readonly vaBits: 48 | 57;
  /** Top to bottom. */
  readonly rows: readonly LevelRow[];
}

const ROW_PML5: LevelRow = { level: 5, name: 'PML5', shift: 48, leafSize: 0 };
const ROW_PML4: LevelRow = { level: 4, name: 'PML4', shift: 39, leafSize: 0 };
const ROW_PDPT: LevelRow = { level: 3, name: 'PDPT', shift: 30, leafSize: 1 << 30 };
const ROW_PD: LevelRow = { level: 2, name: 'PD', shift: 21, leafSize: 1 << 21 };
const ROW_PT: LevelRow = { level: 1, name: 'PT', shift: 12, leafSize: 1 << 12 };

export const PAGING_4_LEVEL: PagingMode = {
  name: '4-level',
  levels: 4,
  vaBits: 48,
  rows: [ROW_PML4, ROW_PDPT, ROW_PD, ROW_PT],
};

export const PAGING_5_LEVEL: PagingMode = {
  name: '5-level',
  levels: 5,
  vaBits: 57,
  rows: [ROW_PML5, ROW_PML4, ROW_PDPT, ROW_PD, ROW_PT],
};

export function pagingMode(levels: number): PagingMode {
  if (levels === 4) return PAGING_4_LEVEL;
  if (levels === 5) return PAGING_5_LEVEL;
  throw new RangeError(`x86-64 paging has 4 or 5 levels, not ${levels}`);
}

/** Entry bits (low word). */
export const PTE = {
  present: 0x1,
  writable: 0x2,
  user: 0x4,
  writeThrough: 0x8,
  cacheDisable: 0x10,
  accessed: 0x20,
  dirty: 0x40,
  pageSize: 0x80,
  global: 0x100,
} as const;

/** Physical-address bits 12..51 of an entry, for callers working in bigint. */
export const PTE_ADDR_MASK = 0x000f_ffff_ffff_f000n;
const TWO32 = 4294967296;

/** The result of translating one virtual address. */
export interface Translation {
  readonly va: bigint;
  /** Guest-physical address of `va`. */
  readonly pa: GuestPhysAddr;
  /** 4096, 2 MiB or 1 GiB. */
  readonly pageSize: number;
  /** Level of the leaf entry: 1 (4 KiB), 2 (2 MiB), 3 (1 GiB). */
  readonly level: number;
  /** Low 12 bits of the leaf entry, with R/W and U/S replaced by their effective values. */
  readonly flags: number;
  /** Effective no-execute (XD bit set at any level). */
  readonly nx: boolean;
}

/** One level of a walk, as shown by `vmsight translate`. */
export interface WalkStep {
  readonly level: number;
  readonly name: string;
  readonly index: number;
  readonly tableAddr: number;
  readonly entryAddr: number;
  readonly entry: bigint;
}

export function flagNames(t: { flags: number; nx: boolean }): string[] {
  const names = ['P'];
  names.push(t.flags & PTE.writable ? 'RW' : 'RO');
  names.push(t.flags & PTE.user ? 'US' : 'SU');
  if (t.nx) names.push('NX');
  if (t.flags & PTE.global) names.push('G');
  if (t.flags & PTE.accessed) names.push('A');
  if (t.flags & PTE.dirty) names.push('D');
  if (t.flags & PTE.cacheDisable) names.push('PCD');
  if (t.flags & PTE.writeThrough) names.push('PWT');
  return names;
}

/** Splits a VA into 32-bit halves and checks it is canonical for the mode. */
export function splitCanonical(mode: PagingMode, va: bigint): { lo: number; hi: number } {
  if (va >= 1n << 64n || va < -(1n << 63n)) throw new FaultError('virtual', va, 'is not a 64-bit address');
  const u = BigInt.asUintN(64, va);
  const hi = Number(u >> 32n);
  const lo = Number(u & 0xffff_ffffn);
  const top = mode.vaBits === 48 ? hi >>> 15 : hi >>> 24;
  const ones = mode.vaBits === 48 ? 0x1ffff : 0xff;
  if (top !== 0 && top !== ones) {
    throw new FaultError('virtual', u, `not canonical for ${mode.name} paging (bits ${mode.vaBits - 1}..63 must be equal)`);
  }
  return { lo, hi };
}

/** The 9-bit table index of a VA (given as 32-bit halves) at a level shift. */
export function levelIndex(lo: number, hi: number, shift: number): number {
  switch (shift) {
    case 12:
      return (lo >>> 12) & 511;
    case 21:
      return (lo >>> 21) & 511;
    case 30:
      return ((lo >>> 30) | (hi << 2)) & 511;
    case 39:
      return (hi >>> 7) & 511;
    case 48:
      return (hi >>> 16) & 511;
    default:
      throw new RangeError(`no x86-64 paging level indexes from bit ${shift}`);
  }
}

/**
 * Reads page-table entries. Zero-copy from mapped sources; for the others it
 * reads whole 4 KiB tables (as cheap as 8 bytes on every technique measured)
 * and keeps them for the current epoch (a pass, or a source generation),
 * bounded. The epoch is also what every Translator sharing this reader
 * checks its cached translations against.
 */
export class TableReader {
  readonly phys: PhysReader;
  private readonly pages = new Map<number, Uint32Array>();
  private pagesEpoch = -1;
  private readonly maxPages: number;
  /** Whole-table reads issued to the source (non-mapped sources). */
  tableReads = 0;
  /**
   * The validity period of everything cached over this reader (tables here,
   * translations in every Translator sharing it): a new one starts when the
   * source's generation moves or a pass asks for it (`newEpoch`).
   */
  private epochValue = 0;
  private epochGeneration: number;

  constructor(source: PhysicalMemory | PhysReader, options: { maxCachedTables?: number } = {}) {
    this.phys = source instanceof PhysReader ? source : new PhysReader(source);
    this.maxPages = options.maxCachedTables ?? 2048;
    this.epochGeneration = this.phys.mem.generation;
  }

  /** The current epoch (one integer compare when the source generation is unchanged). */
  get epoch(): number {
    const g = this.phys.mem.generation;
    if (g !== this.epochGeneration) {
      this.epochGeneration = g;
      this.epochValue++;
    }
    return this.epochValue;
  }

  /** Starts a new epoch: every cached entry must be checked against guest memory again before use. */
  newEpoch(): number {
    this.epochGeneration = this.phys.mem.generation;
    return ++this.epochValue;
  }

  /** Drops every cached table (the next walk re-reads them). */
  flush(): void {
    this.pages.clear();
  }

  private cached(tablePa: number): Uint32Array | undefined {
    const epoch = this.epoch;
    if (epoch !== this.pagesEpoch) {
      this.pages.clear();
      this.pagesEpoch = epoch;
    }
    return this.pages.get(tablePa);
  }

  private store(tablePa: number, words: Uint32Array): void {
    if (this.pages.size >= this.maxPages) this.pages.clear();
    this.pages.set(tablePa, words);
  }

  /**
   * Reads the 8-byte entry at physical `entryPa` straight from the source
   * (no table cache) into out = [lo, hi]: how a cached translation is
   * re-checked in a new epoch. Throws FaultError('physical').
   */
  entryAt(entryPa: number, out: Uint32Array): void {
    this.entryChecks++;
    this.phys.u64Halves(entryPa, out);
  }
  /** Entry words re-read by `entryAt` (revalidations). */
  entryChecks = 0;

  /** Reads entry `index` of the table at `tablePa` into out = [lo, hi]. Throws FaultError('physical'). */
  entry(tablePa: number, index: number, out: Uint32Array): void {
    const pa = tablePa + index * 8;
    if (this.phys.region(pa, 8) !== undefined) {
      this.phys.u64Halves(pa, out);
      return;
    }
    let words = this.cached(tablePa);
    if (words === undefined) {
      words = this.readTable(tablePa);
      this.store(tablePa, words);
    }
    out[0] = words[index * 2]!;
    out[1] = words[index * 2 + 1]!;
  }

  /** The 512 entries of a table as 1024 little-endian 32-bit words. */
  table(tablePa: number): Uint32Array {
    const r = this.phys.region(tablePa, 4096);
    if (r !== undefined) {
      const bytes = r.bytes.subarray(tablePa - r.start, tablePa - r.start + 4096);
      if (bytes.byteOffset % 4 === 0) return new Uint32Array(bytes.buffer, bytes.byteOffset, 1024);
      return new Uint32Array(bytes.slice().buffer);
    }
    let words = this.cached(tablePa);
    if (words === undefined) {
      words = this.readTable(tablePa);
      this.store(tablePa, words);
    }
    return words;
  }

  /** Reads the tables not yet cached in one batch (non-mapped sources); failures surface on use. */
  prefetch(tablePas: Iterable<number>): void {
    const ops: { addr: GuestPhysAddr; len: number; dst: Uint8Array }[] = [];
    const seen = new Set<number>();
    for (const pa of tablePas) {
      if (seen.has(pa) || this.phys.region(pa, 4096) !== undefined || this.cached(pa) !== undefined) continue;
      seen.add(pa);
      ops.push({ addr: gpa(pa), len: 4096, dst: new Uint8Array(4096) });
    }
    if (ops.length < 2) return;
    this.tableReads += ops.length;
    const failures = this.phys.readv(ops);
    const bad = new Set(failures.map((f) => f.addr - (f.addr % 4096)));
    for (const op of ops) if (!bad.has(op.addr)) this.store(op.addr, new Uint32Array(op.dst.buffer));
  }

  private readTable(tablePa: number): Uint32Array {
    const dst = new Uint8Array(4096);
    this.tableReads++;
    const failures = this.phys.readv([{ addr: gpa(tablePa), len: 4096, dst }]);
    if (failures.length) throw new FaultError('physical', failures[0]!.addr, failures[0]!.reason);
    return new Uint32Array(dst.buffer);
  }
}

/**
 * The entries a walk read, top first, for callers that re-check a cached
 * translation later: [count, entryPa×5, lo×5, hi×5] (words unsigned).
 */
export type WalkPath = Float64Array;
export const newWalkPath = (): WalkPath => new Float64Array(16);

/** In-flight state of one walk; `step` advances it one level. */
interface WalkState {
  path: WalkPath | undefined;
  readonly va: bigint;
  readonly lo: number;
  readonly hi: number;
  /** Index into mode.rows of the next level to read. */
  row: number;
  table: number;
  rw: number;
  us: number;
  nx: boolean;
  done: Translation | FaultError | undefined;
}

const entryWords = new Uint32Array(2);

function startWalk(mode: PagingMode, dtb: number, va: bigint, path?: WalkPath): WalkState {
  let lo = 0;
  let hi = 0;
  let done: FaultError | undefined;
  try {
    ({ lo, hi } = splitCanonical(mode, va));
  } catch (e) {
    done = e as FaultError;
  }
  const u = va < 0n && done === undefined ? BigInt.asUintN(64, va) : va;
  if (path) path[0] = 0;
  return { path, va: u, lo, hi, row: 0, table: dtb, rw: PTE.writable, us: PTE.user, nx: false, done };
}

function describeEntry(lo: number, hi: number): bigint {
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}

/** Reads one level for `s`; sets `s.done` when the walk ends (leaf or fault). */
function step(reader: TableReader, mode: PagingMode, s: WalkState, trace?: WalkStep[]): void {
  const row = mode.rows[s.row]!;
  const index = levelIndex(s.lo, s.hi, row.shift);
  const entryAddr = s.table + index * 8;
  try {
    reader.entry(s.table, index, entryWords);
  } catch (e) {
    const reason = e instanceof FaultError ? e.message : String(e);
    s.done = new FaultError('virtual', s.va, `${row.name} table at physical 0x${s.table.toString(16)} is unreadable (${reason})`, {
      level: row.level,
      hint: 'the page tables point outside guest RAM: wrong DTB or corrupt tables',
    });
    return;
  }
  const lo = entryWords[0]!;
  const hi = entryWords[1]!;
  const path = s.path;
  if (path !== undefined) {
    const n = path[0]!;
    path[1 + n] = entryAddr;
    path[6 + n] = lo;
    path[11 + n] = hi;
    path[0] = n + 1;
  }
  if (trace) trace.push({ level: row.level, name: row.name, index, tableAddr: s.table, entryAddr, entry: describeEntry(lo, hi) });
  if ((lo & PTE.present) === 0) {
    s.done = new FaultError('virtual', s.va, `not present: ${row.name} entry ${index} (0x${describeEntry(lo, hi).toString(16)}) at physical 0x${entryAddr.toString(16)}`, {
      level: row.level,
      entry: describeEntry(lo, hi),
    });
    return;
  }
  s.rw &= lo;
  s.us &= lo;
  if (hi >>> 31) s.nx = true;
  const high = (hi & 0xfffff) * TWO32;
  const isLeaf = row.level === 1 || (lo & PTE.pageSize) !== 0;
  if (!isLeaf) {
    s.table = high + ((lo & 0xfffff000) >>> 0);
    s.row++;
    return;
  }
  if (row.leafSize === 0) {
    s.done = new FaultError('virtual', s.va, `reserved PS bit set in ${row.name} entry ${index} (0x${describeEntry(lo, hi).toString(16)})`, {
      level: row.level,
      entry: describeEntry(lo, hi),
    });
    return;
  }
  const offsetMask = row.leafSize - 1;
  const base = high + ((lo & ~offsetMask & 0xfffff000) >>> 0);
  s.done = {
    va: s.va,
    pa: gpa(base + ((s.lo & offsetMask) >>> 0)),
    pageSize: row.leafSize,
    level: row.level,
    flags: (lo & 0xff9) | s.rw | s.us,
    nx: s.nx,
  };
}

/**
 * Translates `va` through the tables rooted at physical `dtb` (CR3 without
 * its flag bits). Throws FaultError (space 'virtual') carrying the VA, the
 * level and the entry. When `trace` is given, each level read is appended;
 * `path` receives the entries read (allocation-free).
 */
export function walk(reader: TableReader, mode: PagingMode, dtb: number, va: bigint, trace?: WalkStep[], path?: WalkPath): Translation {
  const s = startWalk(mode, dtb, va, path);
  for (let guard = 0; s.done === undefined && guard < mode.levels; guard++) step(reader, mode, s, trace);
  const r = s.done!;
  if (r instanceof FaultError) throw r;
  return r;
}

/**
 * Translates many VAs level by level, prefetching each level's tables in one
 * batch (what makes slow sources usable). Returns a result or a FaultError
 * per VA, in order.
 */
export function walkMany(reader: TableReader, mode: PagingMode, dtb: number, vas: readonly bigint[], paths?: readonly WalkPath[]): (Translation | FaultError)[] {
  const states = vas.map((va, i) => startWalk(mode, dtb, va, paths?.[i]));
  for (let level = 0; level < mode.levels; level++) {
    const pending = states.filter((s) => s.done === undefined);
    if (pending.length === 0) break;
    reader.prefetch(pending.map((s) => s.table));
    for (const s of pending) step(reader, mode, s);
  }
  return states.map((s) => s.done!);
}

/** The physical address of a DTB given as a CR3 value (drops PCID/flag bits and bit 63). */
export function dtbFromCr3(cr3: bigint): number {
  return Number(cr3 & PTE_ADDR_MASK);
}

/** One present leaf mapping, from `mappings()`. */
export interface Mapping {
  readonly va: bigint;
  readonly pa: number;
  readonly size: number;
  readonly level: number;
  readonly flags: number;
  readonly nx: boolean;
}

export interface MappingOptions {
  /** First VA of interest (inclusive, canonical). */
  readonly start?: bigint;
  /** Last VA of interest (exclusive). */
  readonly end?: bigint;
  /** Stop after this many mappings (default 1,048,576). */
  readonly limit?: number;
  /** Stop after reading this many tables (default 65,536): hostile tables can fan out. */
  readonly maxTables?: number;
}

/** Sign-extends a VA built from table indices to its canonical form. */
function canonical(mode: PagingMode, va: bigint): bigint {
  return BigInt.asIntN(mode.vaBits, va) < 0n ? BigInt.asUintN(64, BigInt.asIntN(mode.vaBits, va)) : va;
}

/**
 * Every present leaf mapping under `dtb`, in VA order, bounded. Tables that
 * cannot be read are skipped (they are reported by `translate` when used).
 */
export function* mappings(reader: TableReader, mode: PagingMode, dtb: number, options: MappingOptions = {}): Generator<Mapping> {
  const start = options.start ?? 0n;
  const end = options.end ?? 1n << 64n;
  const limit = options.limit ?? 1 << 20;
  const maxTables = options.maxTables ?? 1 << 16;
  let emitted = 0;
  let tables = 0;
  function* visit(table: number, rowIdx: number, vaBase: bigint, rw: number, us: number, nx: boolean): Generator<Mapping> {
    if (++tables > maxTables) return;
    let words: Uint32Array;
    try {
      words = reader.table(table);
    } catch {
      return;
    }
    const row = mode.rows[rowIdx]!;
    const span = 1n << BigInt(row.shift);
    // Below the top level every entry of a table shares the sign bit: one canonical base per table, and the
    // entries inside [start, end) found once, not per entry (a process's leaf tables are most of the work).
    const top = rowIdx === 0;
    const base = top ? 0n : canonical(mode, vaBase);
    let first = 0;
    let last = 512;
    if (!top) {
      if (start > base) first = Number((start - base) / span);
      if (end < base + 512n * span) last = Number((end - base + span - 1n) / span);
    }
    for (let i = first; i < last; i++) {
      const lo = words[i * 2]!;
      if ((lo & PTE.present) === 0) continue;
      const hi = words[i * 2 + 1]!;
      const va = top ? canonical(mode, vaBase + BigInt(i) * span) : base + BigInt(i) * span;
      if (top && (va + span <= start || va >= end)) continue;
      const erw = rw & lo;
      const eus = us & lo;
      const enx = nx || hi >>> 31 === 1;
      const high = (hi & 0xfffff) * TWO32;
      const leaf = row.level === 1 || (lo & PTE.pageSize) !== 0;
      if (!leaf) {
        yield* visit(high + ((lo & 0xfffff000) >>> 0), rowIdx + 1, vaBase + BigInt(i) * span, erw, eus, enx);
      } else if (row.leafSize !== 0) {
        const pa = high + ((lo & ~(row.leafSize - 1) & 0xfffff000) >>> 0);
        yield { va, pa, size: row.leafSize, level: row.level, flags: (lo & 0xff9) | erw | eus, nx: enx };
        emitted++;
      }
      if (emitted >= limit || tables > maxTables) return;
    }
  }
  yield* visit(dtb, 0, 0n, PTE.writable, PTE.user, false);
}
