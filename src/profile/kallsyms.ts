/**
 * kallsyms: the kernel's own symbol table, decoded from guest memory into a
 * SymbolTable equal to the guest's /proc/kallsyms (core kernel, KASLR applied).
 *
 * Two ways in, tried in this order (each attempt is recorded as a step):
 * 1. vmcoreinfo addresses (6.0+: SYMBOL(kallsyms_names|…)): read each table
 *    at its address and decode. Needs a kernel-virtual reader: an
 *    AddressSpace, or the kernel-image map derived from phys_base.
 * 2. Pattern search (5.10 has no such keys): find the tables by their shape
 *    in the kernel image's physical range (from KERNELOFFSET/phys_base), or in
 *    all of RAM when nothing says where the kernel is.
 * `kallsymsFromBytes` runs the search over any bytes (an extracted vmlinux).
 *
 * Longer than ~400 lines on purpose: the two ways in (vmcoreinfo addresses,
 * pattern search) and their recorded steps form one pipeline; decoding and
 * locating already live in kallsyms/.
 */
import { FaultError } from '../core/errors.js';
import { readPhys, readPhysInto } from '../memory/access.js';
import type { PhysicalMemory } from '../memory/types.js';
import {
  type KallsymsAddressing,
  type KallsymsAnomaly,
  KallsymsError,
  MAX_NAME_LENGTH,
  MAX_SYMBOLS,
  countInversions,
  decodeAddresses,
  parseTokens,
  toColumns,
  tokenTableLength,
} from './kallsyms/decode.js';
import { indexNames } from './kallsyms/lazy-names.js';
import { type KallsymsLocation, type KallsymsOrder, type LocatedKallsyms, searchKallsyms } from './kallsyms/locate.js';
import { SymbolTable } from './symbols.js';
import type { KallsymsAddresses, VmcoreInfo } from './vmcoreinfo.js';
import { monotonicMs } from '../core/clock.js';

export { KallsymsError, type KallsymsAddressing, type KallsymsAnomaly } from './kallsyms/decode.js';
export { type KallsymsLocation, type KallsymsOrder, searchKallsyms } from './kallsyms/locate.js';
export { kallsymsDigest, procKallsymsLines } from './kallsyms/digest.js';

/** Reads kernel virtual memory; throws FaultError (AddressSpace satisfies it). */
export interface KernelVirtualReader {
  read(va: bigint, len: number): Uint8Array;
  /** The same bytes into the caller's buffer (a BTF blob read into the memory its indexing pass runs in). */
  readInto?(va: bigint, dst: Uint8Array): void;
}

/** `dst.length` bytes at `va` into `dst`, through the reader's readInto when it has one. */
export function readIntoFrom(r: KernelVirtualReader, va: bigint, dst: Uint8Array): void {
  if (r.readInto) r.readInto(va, dst);
  else dst.set(r.read(va, dst.length));
}

/** x86-64 __START_KERNEL_map: the kernel image is mapped at phys − phys_base + this. */
export const START_KERNEL_MAP = 0xffffffff80000000n;
/** x86-64 default link address of `_text` (CONFIG_PHYSICAL_START 0x1000000). */
export const DEFAULT_TEXT = 0xffffffff81000000n;
/** How far past phys(_text) the pattern search looks (the image with its .rodata is 30–60 MiB). */
export const IMAGE_SEARCH_SPAN = 64 << 20;

export interface KallsymsStep {
  readonly method: 'vmcoreinfo' | 'search-image' | 'search-ram' | 'search-bytes';
  readonly ok: boolean;
  readonly detail: string;
  readonly ms: number;
}

/** Where the tables were, in guest terms. */
export interface KallsymsLayout {
  readonly order: KallsymsOrder | 'unknown';
  readonly addressing: KallsymsAddressing;
  readonly seqsOfNames?: boolean;
  /** Label alignment the searched tables show (4 or 8), which places relative_base after the offsets. */
  readonly align?: 4 | 8;
  readonly numSyms: number;
  readonly relativeBase: bigint;
  /** Table name → guest-virtual address, when known. */
  readonly virtual: Readonly<Record<string, bigint>>;
  /** Table name → guest-physical address (or offset in the searched bytes), when searched. */
  readonly physical?: Readonly<Record<string, number>>;
}

export interface KallsymsResult {
  readonly table: SymbolTable;
  readonly method: 'vmcoreinfo' | 'search';
  readonly layout: KallsymsLayout;
  /** Decoded address of `_text`, when the table has it. */
  readonly text?: bigint;
  /** False when decoding stopped early (the table holds the symbols before the damage). */
  readonly complete: boolean;
  readonly anomalies: readonly KallsymsAnomaly[];
  readonly steps: readonly KallsymsStep[];
  readonly ms: number;
}

export interface KallsymsInputs {
  /** Kernel virtual memory, for tables at vmcoreinfo addresses. */
  readonly space?: KernelVirtualReader;
  /** Guest-physical memory: kernel-image reads via phys_base, and the pattern search. */
  readonly mem?: PhysicalMemory;
  readonly vmcoreinfo?: VmcoreInfo;
  /** Physical range to search, overriding the one derived from vmcoreinfo. */
  readonly searchRange?: { readonly start: number; readonly end: number };
  /** Skip the vmcoreinfo fast path (benchmarks, tests). */
  readonly forceSearch?: boolean;
  /** Description for SymbolTable.source, e.g. the memory source's target. */
  readonly target?: string;
}

/** Reads kernel-image virtual addresses through phys = va − __START_KERNEL_map + phys_base (no page tables). */
export function kernelImageReader(mem: PhysicalMemory, physBase: bigint): KernelVirtualReader {
  const physical = (va: bigint, len: number): number => {
    const off = va - START_KERNEL_MAP;
    if (off < 0n || off >= 1n << 30n) throw new FaultError('virtual', va, 'outside the kernel image map (0xffffffff80000000 + 1 GiB)');
    const pa = off + physBase;
    if (pa < 0n || pa + BigInt(len) > BigInt(mem.size)) throw new FaultError('virtual', va, `kernel-image phys 0x${pa.toString(16)} is outside guest memory`);
    return Number(pa);
  };
  return {
    read: (va, len) => readPhys(mem, physical(va, len), len),
    readInto: (va, dst) => readPhysInto(mem, physical(va, dst.length), dst),
  };
}

/**
 * Reads through `fast` (the linear kernel-image map: zero-copy over mapped
 * memory, no page walk) and falls back to `full` (the page tables) on a fault.
 */
export function firstThatReads(fast: KernelVirtualReader, full: KernelVirtualReader): KernelVirtualReader {
  return {
    read(va: bigint, len: number): Uint8Array {
      try {
        return fast.read(va, len);
      } catch (e) {
        if (e instanceof FaultError) return full.read(va, len);
        throw e;
      }
    },
    readInto(va: bigint, dst: Uint8Array): void {
      try {
        readIntoFrom(fast, va, dst);
      } catch (e) {
        if (e instanceof FaultError) readIntoFrom(full, va, dst);
        else throw e;
      }
    },
  };
}

/** Reads up to `len` bytes, shrinking on faults (the tail of a table may border unmapped memory). */
function readUpTo(r: KernelVirtualReader, va: bigint, len: number, min: number, table: string): Uint8Array {
  let n = len;
  for (let tries = 0; tries < 24; tries++) {
    try {
      return r.read(va, n);
    } catch (e) {
      if (!(e instanceof FaultError)) throw e;
      if (n <= min) throw new KallsymsError(table, va, `unreadable: ${e.message}`, 'is the kernel address space right (DTB, phys_base)?');
      n = Math.max(min, n >>> 1);
    }
  }
  throw new KallsymsError(table, va, 'unreadable');
}

function readExact(r: KernelVirtualReader, va: bigint, len: number, table: string): Uint8Array {
  try {
    return r.read(va, len);
  } catch (e) {
    if (e instanceof FaultError) throw new KallsymsError(table, va, `unreadable (${len} bytes): ${e.message}`, 'is the kernel address space right (DTB, phys_base)?');
    throw e;
  }
}

function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

function sourceName(inputs: { target?: string }, how: string): string {
  return `kallsyms:${inputs.target ? `${inputs.target} ` : ''}(${how})`;
}

/**
 * Decodes the tables at the addresses vmcoreinfo gives (the fast path). A
 * corrupt names table yields the symbols before the damage, complete=false.
 */
export function decodeKallsymsAt(reader: KernelVirtualReader, at: KallsymsAddresses, options: { target?: string; expectedText?: bigint } = {}): KallsymsResult {
  const t0 = monotonicMs();
  if (at.numSyms === undefined || at.tokenTable === undefined || at.tokenIndex === undefined)
    throw new KallsymsError('vmcoreinfo', undefined, 'lacks kallsyms_num_syms, kallsyms_token_table or kallsyms_token_index');
  if (at.addresses === undefined && (at.offsets === undefined || at.relativeBase === undefined))
    throw new KallsymsError('vmcoreinfo', undefined, 'lacks kallsyms_offsets/kallsyms_relative_base (and kallsyms_addresses)');
  const n = view(readExact(reader, at.numSyms, 4, 'kallsyms_num_syms')).getUint32(0, true);
  if (n === 0 || n > MAX_SYMBOLS) throw new KallsymsError('kallsyms_num_syms', at.numSyms, `implausible symbol count ${n}`);

  const indexBytes = readExact(reader, at.tokenIndex, 512, 'kallsyms_token_index');
  const index = new Uint16Array(256);
  const iv = view(indexBytes);
  for (let i = 0; i < 256; i++) index[i] = iv.getUint16(2 * i, true);
  const gapTT = at.tokenIndex - at.tokenTable;
  const ttLen = gapTT > 0n && gapTT <= 65536n ? Number(gapTT) : Math.min(65536, (index[255] ?? 0) + MAX_NAME_LENGTH + 1);
  const tokens = parseTokens(readUpTo(reader, at.tokenTable, ttLen, Math.min(ttLen, (index[255] ?? 0) + 2), 'kallsyms_token_table'), index, {
    table: at.tokenTable,
    index: at.tokenIndex,
  });

  // Names are followed by markers, and (in both orders) token_table comes after them: read up to it.
  const gapN = at.tokenTable - at.names;
  const namesLen = gapN > 0n && gapN <= 64n << 20n ? Number(gapN) : Math.min(n * (2 + MAX_NAME_LENGTH), 64 << 20);
  const namesBytes = readUpTo(reader, at.names, namesLen, Math.min(namesLen, 2 * n), 'kallsyms_names');
  const anomalies: KallsymsAnomaly[] = [];
  // Index first (names stay compressed until looked up), then cross-check kallsyms_markers against the
  // entry offsets the indexing saw (no extra pass). The table keeps the names (indexNames copies them) and
  // the tokens, copied out of the source: a mapped one hands out views that die with the mapping.
  const kept = { ...tokens, table: tokens.table.slice(0, tokenTableLength(tokens)) };
  const names = indexNames(namesBytes, 0, n, kept);
  if (names.count === n && !markersAfter(namesBytes, names.end, n, at.markers, at.names, names.entryOffsets))
    anomalies.push({ table: 'kallsyms_markers', reason: 'not found right after kallsyms_names: names not cross-checked' });
  anomalies.push(...names.anomalies);
  if (names.count === 0) throw new KallsymsError('kallsyms_names', at.names, names.anomalies[0]?.reason ?? 'no symbol decodes');

  const textIndex = firstNamed(names, '_text');
  let addressing: KallsymsAddressing;
  let base = 0n;
  let raw: Uint8Array;
  if (at.offsets !== undefined && at.relativeBase !== undefined) {
    raw = readExact(reader, at.offsets, 4 * n, 'kallsyms_offsets');
    base = view(readExact(reader, at.relativeBase, 8, 'kallsyms_relative_base')).getBigUint64(0, true);
    addressing = offsetsAddressing(raw, textIndex, n);
  } else {
    raw = readExact(reader, at.addresses!, 8 * n, 'kallsyms_addresses');
    addressing = 'absolute';
  }
  const addresses = decodeAddresses(raw, n, addressing, base);
  const text = textIndex >= 0 && textIndex < names.count ? addresses[textIndex]! : undefined;
  if (text === undefined) anomalies.push({ table: 'kallsyms_names', reason: 'no _text symbol to check the addresses against' });
  else if (addressing !== 'absolute' && text !== base)
    anomalies.push({ table: 'kallsyms_offsets', reason: `_text decodes to 0x${text.toString(16)}, relative_base is 0x${base.toString(16)}` });
  if (text !== undefined && options.expectedText !== undefined && text !== options.expectedText)
    anomalies.push({ table: 'kallsyms_offsets', reason: `_text is 0x${text.toString(16)} but vmcoreinfo implies 0x${options.expectedText.toString(16)}` });
  const inv = countInversions(addresses.subarray(0, names.count));
  if (inv) anomalies.push({ table: addressing === 'absolute' ? 'kallsyms_addresses' : 'kallsyms_offsets', reason: `${inv} addresses out of order` });

  const cut = names.truncated(Math.min(names.count, addresses.length));
  const table = new SymbolTable(
    { deferred: cut, types: cut.types, addresses: addresses.length === cut.count ? addresses : addresses.slice(0, cut.count), sorted: inv === 0 },
    sourceName(options, 'vmcoreinfo addresses'),
  );
  const virtual: Record<string, bigint> = {
    kallsyms_num_syms: at.numSyms,
    kallsyms_names: at.names,
    kallsyms_token_table: at.tokenTable,
    kallsyms_token_index: at.tokenIndex,
  };
  if (at.offsets !== undefined) virtual.kallsyms_offsets = at.offsets;
  if (at.relativeBase !== undefined) virtual.kallsyms_relative_base = at.relativeBase;
  if (at.addresses !== undefined) virtual.kallsyms_addresses = at.addresses;
  const order: KallsymsOrder | 'unknown' =
    at.offsets !== undefined ? (at.offsets < at.names ? 'classic' : at.offsets > at.tokenIndex ? 'names-first' : 'unknown') : 'unknown';
  const ms = monotonicMs() - t0;
  return {
    table,
    method: 'vmcoreinfo',
    layout: { order, addressing, numSyms: n, relativeBase: base, virtual },
    ...(text === undefined ? {} : { text }),
    complete: names.count === n,
    anomalies,
    steps: [{ method: 'vmcoreinfo', ok: true, detail: `${names.count}/${n} symbols from the vmcoreinfo table addresses`, ms }],
    ms,
  };
}

/** Index of the first entry named `name`, or -1 (a length compare per entry, tokens only for equal lengths). */
function firstNamed(names: { count: number; nameStarts: Uint32Array; nameIs(i: number, name: string): boolean }, name: string): number {
  for (let i = 0; i < names.count; i++) if (names.nameStarts[i + 1]! - names.nameStarts[i]! === name.length && names.nameIs(i, name)) return i;
  return -1;
}

/** Decides how kallsyms_offsets are read: `_text` is -1 with ABSOLUTE_PERCPU, 0 with plain relative offsets. */
function offsetsAddressing(raw: Uint8Array, textIndex: number, n: number): KallsymsAddressing {
  const dv = view(raw);
  if (textIndex >= 0 && textIndex < n) {
    const v = dv.getInt32(4 * textIndex, true);
    if (v === -1) return 'absolute-percpu';
    if (v === 0) return 'relative';
  }
  let negative = 0;
  for (let i = 0; i < n; i++) if (dv.getInt32(4 * i, true) < 0) negative++;
  return negative > n / 2 ? 'absolute-percpu' : 'relative';
}

/** The markers right after names (at `end`, 4- or 8-aligned), if they equal the decoded entries' offsets. */
function markersAfter(names: Uint8Array, end: number, n: number, markersVa: bigint | undefined, namesVa: bigint, entryOffsets: Uint32Array): Uint32Array | undefined {
  const m = Math.ceil(n / 256);
  if (entryOffsets.length !== m) return undefined;
  const starts: number[] = [];
  if (markersVa !== undefined && markersVa >= namesVa && markersVa - namesVa < BigInt(names.length)) starts.push(Number(markersVa - namesVa));
  else for (const a of [4, 8]) starts.push(end + ((a - ((end + Number(namesVa & 7n)) % a)) % a));
  for (const s of starts) {
    if (s + 4 * m > names.length) continue;
    const dv = new DataView(names.buffer, names.byteOffset + s, 4 * m);
    const markers = new Uint32Array(m);
    let same = true;
    for (let k = 0; k < m && same; k++) {
      markers[k] = dv.getUint32(4 * k, true);
      same = markers[k] === entryOffsets[k];
    }
    if (same) return markers;
  }
  return undefined;
}

/**
 * A search hit turned into a result; `toVirtual` maps an offset in the bytes
 * to a kernel VA when known. A `_text` that disagrees with the one vmcoreinfo
 * implies (`wantText`) is reported: every address is then likely wrong.
 */
function fromLocated(
  hit: LocatedKallsyms,
  source: string,
  step: KallsymsStep,
  physOf: (off: number) => number,
  toVirtual?: (off: number) => bigint,
  wantText?: bigint,
): KallsymsResult {
  const loc = hit.location;
  const where: Array<[string, number | undefined]> = [
    ['kallsyms_num_syms', loc.numSymsAt],
    ['kallsyms_names', loc.namesAt],
    ['kallsyms_markers', loc.markersAt],
    ['kallsyms_token_table', loc.tokenTableAt],
    ['kallsyms_token_index', loc.tokenIndexAt],
    [loc.addressing === 'absolute' ? 'kallsyms_addresses' : 'kallsyms_offsets', loc.addressTableAt],
    ['kallsyms_relative_base', loc.relativeBaseAt],
  ];
  const physical: Record<string, number> = {};
  const virtual: Record<string, bigint> = {};
  for (const [k, off] of where) {
    if (off === undefined) continue;
    physical[k] = physOf(off);
    if (toVirtual) virtual[k] = toVirtual(off);
  }
  const table = new SymbolTable(toColumns(hit.names, hit.addresses), source);
  return {
    table,
    method: 'search',
    layout: {
      order: loc.order,
      addressing: loc.addressing,
      seqsOfNames: loc.seqsOfNames,
      align: loc.align,
      numSyms: loc.numSyms,
      relativeBase: loc.relativeBase,
      virtual,
      physical,
    },
    ...(hit.text === undefined ? {} : { text: hit.text }),
    complete: hit.names.count === loc.numSyms,
    anomalies:
      hit.text !== undefined && wantText !== undefined && hit.text !== wantText
        ? [...hit.anomalies, { table: 'kallsyms_relative_base', reason: `_text decodes to 0x${hit.text.toString(16)} but vmcoreinfo implies 0x${wantText.toString(16)}` }]
        : hit.anomalies,
    steps: [step],
    ms: step.ms,
  };
}

/** Runs the pattern search over bytes (an extracted vmlinux, a raw dump) and decodes the best table found. */
export function kallsymsFromBytes(bytes: Uint8Array, options: { source?: string; expectedText?: bigint } = {}): KallsymsResult {
  const t0 = monotonicMs();
  const report = searchKallsyms(bytes);
  const ms = monotonicMs() - t0;
  const hit = pickHit(report.found, options.expectedText);
  const label = options.source ?? 'bytes';
  if (!hit)
    throw new KallsymsError('kallsyms_token_index', undefined, `no kallsyms tables found in ${label} (${report.candidates} token_index look-alikes${report.rejected.length ? `; ${report.rejected[0]}` : ''})`);
  const step: KallsymsStep = { method: 'search-bytes', ok: true, detail: `tables found at offset 0x${hit.location.tokenIndexAt.toString(16)} of ${label}`, ms };
  const result = fromLocated(hit, `kallsyms:${label} (pattern search)`, step, (o) => o, undefined, options.expectedText);
  return withOtherHits(result, report.found, hit);
}

function pickHit(found: readonly LocatedKallsyms[], expectedText?: bigint): LocatedKallsyms | undefined {
  if (!found.length) return undefined;
  if (expectedText !== undefined) {
    const agree = found.find((f) => f.text === expectedText);
    if (agree) return agree;
  }
  return found[0];
}

function withOtherHits(result: KallsymsResult, found: readonly LocatedKallsyms[], chosen: LocatedKallsyms): KallsymsResult {
  const others = found.filter((f) => f !== chosen);
  if (!others.length) return result;
  return {
    ...result,
    anomalies: [
      ...result.anomalies,
      ...others.map((o) => ({
        table: 'kallsyms_token_index',
        reason: `another table at 0x${o.location.tokenIndexAt.toString(16)} (${o.location.numSyms} symbols, _text ${o.text === undefined ? '?' : `0x${o.text.toString(16)}`}) was not used`,
      })),
    ],
  };
}

/** Physical start of the kernel image per vmcoreinfo: phys(_stext) rounded down to 2 MiB, else phys(_text). */
export function kernelImageSearchStart(v: VmcoreInfo): number | undefined {
  if (v.physBase === undefined) return undefined;
  const stext = v.symbols.get('_stext');
  const va = stext !== undefined ? stext & ~0x1fffffn : DEFAULT_TEXT + (v.kernelOffset ?? 0n);
  const pa = va - START_KERNEL_MAP + v.physBase;
  return pa >= 0n && pa < 1n << 52n ? Number(pa) : undefined;
}

/** The runtime `_text` vmcoreinfo implies (default link address + KERNELOFFSET). */
export function expectedText(v: VmcoreInfo | undefined): bigint | undefined {
  return v?.kernelOffset === undefined ? undefined : DEFAULT_TEXT + v.kernelOffset;
}

/** Pattern search in guest-physical [start, end): one zero-copy view when mapped, else one read per RAM range. */
function searchPhysRange(mem: PhysicalMemory, start: number, end: number): { found: LocatedKallsyms[]; base: number; candidates: number; rejected: string[] } {
  const ranges = mem.ranges().filter((r) => r.end > start && r.start < end);
  const found: LocatedKallsyms[] = [];
  const rejected: string[] = [];
  let candidates = 0;
  let base = start;
  for (const r of ranges) {
    const s = Math.max(r.start, start);
    const e = Math.min(r.end, end);
    let bytes: Uint8Array;
    try {
      bytes = readPhys(mem, s, e - s);
    } catch (err) {
      if (err instanceof FaultError) {
        rejected.push(`0x${s.toString(16)}-0x${e.toString(16)} unreadable: ${err.message}`);
        continue;
      }
      throw err;
    }
    const rep = searchKallsyms(bytes, { aligned: s % 4 === 0 });
    candidates += rep.candidates;
    rejected.push(...rep.rejected);
    if (rep.found.length) {
      base = s;
      found.push(...rep.found);
      break;
    }
  }
  return { found, base, candidates, rejected };
}

/** Window size and overlap for the whole-RAM search (tables lie within a few MiB of token_index). */
const RAM_WINDOW = 64 << 20;
const RAM_OVERLAP = 8 << 20;

/** Searches all of RAM window by window; the first window holding tables wins. */
function searchAllRam(mem: PhysicalMemory): { found: LocatedKallsyms[]; base: number; candidates: number; rejected: string[] } {
  let candidates = 0;
  const rejected: string[] = [];
  for (const r of mem.ranges()) {
    for (let s: number = r.start; s < r.end; s += RAM_WINDOW - 2 * RAM_OVERLAP) {
      const e = Math.min(r.end, s + RAM_WINDOW);
      let bytes: Uint8Array;
      try {
        bytes = readPhys(mem, s, e - s);
      } catch (err) {
        if (err instanceof FaultError) continue;
        throw err;
      }
      const from = s === r.start ? 0 : RAM_OVERLAP;
      const to = e === r.end ? e - s : e - s - RAM_OVERLAP;
      const rep = searchKallsyms(bytes, { from, to, aligned: s % 4 === 0 });
      candidates += rep.candidates;
      rejected.push(...rep.rejected);
      if (rep.found.length) return { found: rep.found, base: s, candidates, rejected };
      if (e === r.end) break;
    }
  }
  return { found: [], base: 0, candidates, rejected };
}

/**
 * Decodes kallsyms from a guest: vmcoreinfo addresses first, then the
 * pattern search over the kernel image, then over all RAM. Throws a
 * ProfileError listing every attempt when nothing works.
 */
export function loadKallsyms(inputs: KallsymsInputs): KallsymsResult {
  const t0 = monotonicMs();
  const steps: KallsymsStep[] = [];
  const v = inputs.vmcoreinfo;
  const wantText = expectedText(v);
  const target = inputs.target === undefined ? {} : { target: inputs.target };
  let partial: KallsymsResult | undefined;

  if (!inputs.forceSearch && v?.kallsyms) {
    const image = inputs.mem && v.physBase !== undefined ? kernelImageReader(inputs.mem, v.physBase) : undefined;
    const reader = image && inputs.space ? firstThatReads(image, inputs.space) : (image ?? inputs.space);
    const s0 = monotonicMs();
    if (!reader) steps.push({ method: 'vmcoreinfo', ok: false, detail: 'no kernel address space and no phys_base to read the tables with', ms: 0 });
    else {
      try {
        const r = decodeKallsymsAt(reader, v.kallsyms, { ...target, ...(wantText === undefined ? {} : { expectedText: wantText }) });
        if (r.complete || !inputs.mem) return { ...r, steps: [...steps, ...r.steps], ms: monotonicMs() - t0 };
        // Damaged at the vmcoreinfo addresses: see whether the search finds an intact copy, else keep what decoded.
        partial = r;
        steps.push({ method: 'vmcoreinfo', ok: false, detail: `only ${r.table.count}/${r.layout.numSyms} symbols: ${r.anomalies[0]?.reason ?? 'incomplete'}`, ms: monotonicMs() - s0 });
      } catch (e) {
        if (!(e instanceof KallsymsError)) throw e;
        steps.push({ method: 'vmcoreinfo', ok: false, detail: e.message, ms: monotonicMs() - s0 });
      }
    }
  } else if (!inputs.forceSearch) {
    steps.push({ method: 'vmcoreinfo', ok: false, detail: v ? 'vmcoreinfo has no kallsyms_* symbols (kernel < 6.0)' : 'no vmcoreinfo', ms: 0 });
  }

  const mem = inputs.mem;
  if (mem) {
    const imageStart = inputs.searchRange?.start ?? (v ? kernelImageSearchStart(v) : undefined);
    if (imageStart !== undefined) {
      const end = inputs.searchRange?.end ?? imageStart + IMAGE_SEARCH_SPAN;
      const s0 = monotonicMs();
      const rep = searchPhysRange(mem, imageStart, end);
      const hit = pickHit(rep.found, wantText);
      const ms = monotonicMs() - s0;
      const range = `0x${imageStart.toString(16)}-0x${end.toString(16)}`;
      if (hit) {
        const step: KallsymsStep = { method: 'search-image', ok: true, detail: `tables found by pattern in kernel image ${range}`, ms };
        const physBase = v?.physBase;
        const toVirtual = physBase === undefined ? undefined : (off: number) => BigInt(rep.base + off) - physBase + START_KERNEL_MAP;
        const r = fromLocated(hit, sourceName(inputs, 'pattern search'), step, (o) => rep.base + o, toVirtual, wantText);
        return withOtherHits({ ...r, steps: [...steps, step], ms: monotonicMs() - t0 }, rep.found, hit);
      }
      steps.push({ method: 'search-image', ok: false, detail: `nothing in ${range} (${rep.candidates} token_index look-alikes${rep.rejected[0] ? `; ${rep.rejected[0]}` : ''})`, ms });
    }
    const s0 = monotonicMs();
    const rep = searchAllRam(mem);
    const hit = pickHit(rep.found, wantText);
    const ms = monotonicMs() - s0;
    if (hit) {
      const step: KallsymsStep = { method: 'search-ram', ok: true, detail: `tables found by pattern in RAM at 0x${(rep.base + hit.location.tokenIndexAt).toString(16)}`, ms };
      const physBase = v?.physBase;
      const toVirtual = physBase === undefined ? undefined : (off: number) => BigInt(rep.base + off) - physBase + START_KERNEL_MAP;
      const r = fromLocated(hit, sourceName(inputs, 'pattern search'), step, (o) => rep.base + o, toVirtual, wantText);
      return withOtherHits({ ...r, steps: [...steps, step], ms: monotonicMs() - t0 }, rep.found, hit);
    }
    steps.push({ method: 'search-ram', ok: false, detail: `nothing in ${Math.round(mem.size / 1048576)} MiB of RAM (${rep.candidates} token_index look-alikes${rep.rejected[0] ? `; ${rep.rejected[0]}` : ''})`, ms });
  }
  if (partial) return { ...partial, steps, ms: monotonicMs() - t0 };
  throw new KallsymsError('kallsyms', undefined, `no kernel symbol table could be decoded: ${steps.map((s) => `${s.method}: ${s.detail}`).join('; ') || 'no memory given'}`, 'give a System.map or an ISF with --profile');
}
