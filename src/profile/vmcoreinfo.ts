/**
 * vmcoreinfo: the KEY=VALUE text block the kernel keeps for crash tools
 * (kernel/crash_core.c and arch/x86/kernel/machine_kexec_64.c). It gives the
 * release, build-id, KASLR offset, phys_base, init_top_pgt, paging mode,
 * struct offsets and, from 6.0, the kallsyms table addresses.
 *
 * In guest RAM there are two full copies (the ELF note exported at
 * /sys/kernel/vmcoreinfo, text at note+0x18, and the vmcoreinfo_data page),
 * plus look-alikes (the format strings in the kernel image, stale copies from
 * an earlier kernel). Every copy is parsed and validated; the caller gets all
 * of them, ranked, with the reason for the choice.
 *
 * Longer than ~400 lines on purpose: one format: parsing a copy and finding,
 * validating and ranking the copies in RAM share the copy model and its
 * reasons.
 */
import { FormatError, ProfileError } from '../core/errors.js';
import type { MappedRegion, PhysicalMemory } from '../memory/types.js';
import { gpa } from '../core/address.js';
import { monotonicMs } from '../core/clock.js';

/** Addresses of the kallsyms tables, present in vmcoreinfo from 6.0. */
export interface KallsymsAddresses {
  readonly names: bigint;
  readonly numSyms?: bigint;
  readonly tokenTable?: bigint;
  readonly tokenIndex?: bigint;
  readonly offsets?: bigint;
  readonly relativeBase?: bigint;
  readonly addresses?: bigint;
  readonly markers?: bigint;
  readonly seqsOfNames?: bigint;
}

export interface VmcoreInfo {
  /** The text as found. */
  readonly raw: string;
  /** OSRELEASE, e.g. '6.1.0-56-amd64'. */
  readonly release: string;
  readonly buildId?: string;
  readonly pageSize?: number;
  /** KERNELOFFSET: the KASLR virtual shift. */
  readonly kernelOffset?: bigint;
  /** NUMBER(phys_base), signed: phys = virt − __START_KERNEL_map + phys_base. */
  readonly physBase?: bigint;
  /** NUMBER(pgtable_l5_enabled) as a boolean, when present. */
  readonly l5Enabled?: boolean;
  /** NUMBER(KERNEL_IMAGE_SIZE). */
  readonly kernelImageSize?: bigint;
  /** CRASHTIME (seconds since the epoch), only in a crash dump. */
  readonly crashTime?: number;
  /** SYMBOL(name) → runtime address. */
  readonly symbols: ReadonlyMap<string, bigint>;
  /** SIZE(struct) → bytes. */
  readonly sizes: ReadonlyMap<string, number>;
  /** OFFSET(struct.field) → bytes. */
  readonly offsets: ReadonlyMap<string, number>;
  /** LENGTH(array) → elements. */
  readonly lengths: ReadonlyMap<string, number>;
  /** NUMBER(name) → signed value. */
  readonly numbers: ReadonlyMap<string, bigint>;
  /** Every other KEY=VALUE (OSRELEASE, PAGESIZE, … included), as text. */
  readonly keys: ReadonlyMap<string, string>;
  readonly kallsyms?: KallsymsAddresses;
  /** Lines that do not follow the grammar, duplicate keys, a missing final newline. */
  readonly anomalies: readonly string[];
  /** True when the last line has no terminating newline (the block was cut). */
  readonly truncated: boolean;
  /** Number of KEY=VALUE lines parsed. */
  readonly keyCount: number;
}

const GROUPED = /^(SYMBOL|SIZE|OFFSET|LENGTH|NUMBER)\(([A-Za-z0-9_.]+)\)=(.*)$/;
const PLAIN = /^([A-Z][A-Z0-9_-]*)=(.*)$/;
const HEX = /^(0x)?[0-9a-fA-F]{1,16}$/;
const DEC = /^-?[0-9]{1,20}$/;
const TEXT_VALUE = /^[\x20-\x7e]*$/;

function parseHex(v: string): bigint | undefined {
  return HEX.test(v) ? BigInt(v.startsWith('0x') ? v : `0x${v}`) : undefined;
}

/** NUMBER values are %ld; a few kernels print hex with 0x. */
function parseSigned(v: string): bigint | undefined {
  if (DEC.test(v)) return BigInt(v);
  if (/^-?0x[0-9a-fA-F]{1,16}$/.test(v)) return v.startsWith('-') ? -BigInt(v.slice(1)) : BigInt(v);
  return undefined;
}

function parseSmall(v: string): number | undefined {
  return /^[0-9]{1,15}$/.test(v) ? Number(v) : undefined;
}

/**
 * Parses a vmcoreinfo block. Malformed lines become anomalies, never
 * exceptions; only a block without OSRELEASE is refused (it is not vmcoreinfo).
 */
export function parseVmcoreinfo(text: string, origin = 'vmcoreinfo'): VmcoreInfo {
  const symbols = new Map<string, bigint>();
  const sizes = new Map<string, number>();
  const offsets = new Map<string, number>();
  const lengths = new Map<string, number>();
  const numbers = new Map<string, bigint>();
  const keys = new Map<string, string>();
  const anomalies: string[] = [];
  const truncated = text.length > 0 && !text.endsWith('\n');
  if (truncated) anomalies.push('the last line has no newline: the block is cut short');
  const lines = text.split('\n');
  lines.pop(); // the empty tail after the final newline, or a cut last line (not trusted)
  let keyCount = 0;
  const bad = (line: string, why: string): void => {
    if (anomalies.length < 50) anomalies.push(`${why}: ${JSON.stringify(line.slice(0, 80))}`);
  };
  for (const line of lines) {
    if (line === '') continue;
    if (!TEXT_VALUE.test(line)) {
      bad(line, 'non-printable bytes');
      continue;
    }
    const g = GROUPED.exec(line);
    if (g) {
      const [, kind, name, value] = g as unknown as [string, string, string, string];
      const set = <V>(m: Map<string, V>, v: V | undefined): void => {
        if (v === undefined) return bad(line, `bad ${kind} value`);
        if (m.has(name)) bad(line, 'duplicate key');
        m.set(name, v);
        keyCount++;
      };
      if (kind === 'SYMBOL') set(symbols, parseHex(value));
      else if (kind === 'NUMBER') set(numbers, parseSigned(value));
      else set(kind === 'SIZE' ? sizes : kind === 'OFFSET' ? offsets : lengths, parseSmall(value));
      continue;
    }
    const p = PLAIN.exec(line);
    if (p) {
      const [, key, value] = p as unknown as [string, string, string];
      if (keys.has(key)) bad(line, 'duplicate key');
      keys.set(key, value);
      keyCount++;
      continue;
    }
    bad(line, 'not KEY=VALUE');
  }
  const release = keys.get('OSRELEASE');
  if (release === undefined || release === '' || release.includes('%')) {
    throw new FormatError(origin, 'not a vmcoreinfo block: no OSRELEASE value', {
      hint: 'vmcoreinfo starts with OSRELEASE=<kernel release>',
    });
  }
  const pageSizeText = keys.get('PAGESIZE');
  const pageSize = pageSizeText !== undefined ? parseSmall(pageSizeText) : undefined;
  if (pageSizeText !== undefined && pageSize === undefined) bad(`PAGESIZE=${pageSizeText}`, 'bad PAGESIZE value');
  const kernelOffsetText = keys.get('KERNELOFFSET');
  const kernelOffset = kernelOffsetText !== undefined ? parseHex(kernelOffsetText) : undefined;
  if (kernelOffsetText !== undefined && kernelOffset === undefined) bad(`KERNELOFFSET=${kernelOffsetText}`, 'bad KERNELOFFSET value');
  const crashText = keys.get('CRASHTIME');
  const crashTime = crashText !== undefined ? parseSmall(crashText) : undefined;
  const buildId = keys.get('BUILD-ID');
  const l5 = numbers.get('pgtable_l5_enabled');
  const names = symbols.get('kallsyms_names');
  const kallsyms: KallsymsAddresses | undefined =
    names === undefined
      ? undefined
      : dropUndefined({
          names,
          numSyms: symbols.get('kallsyms_num_syms'),
          tokenTable: symbols.get('kallsyms_token_table'),
          tokenIndex: symbols.get('kallsyms_token_index'),
          offsets: symbols.get('kallsyms_offsets'),
          relativeBase: symbols.get('kallsyms_relative_base'),
          addresses: symbols.get('kallsyms_addresses'),
          markers: symbols.get('kallsyms_markers'),
          seqsOfNames: symbols.get('kallsyms_seqs_of_names'),
        });
  return dropUndefined({
    raw: text,
    release,
    buildId: buildId !== undefined && /^[0-9a-fA-F]+$/.test(buildId) ? buildId.toLowerCase() : undefined,
    pageSize,
    kernelOffset,
    physBase: numbers.get('phys_base'),
    l5Enabled: l5 === undefined ? undefined : l5 !== 0n,
    kernelImageSize: numbers.get('KERNEL_IMAGE_SIZE'),
    crashTime,
    symbols,
    sizes,
    offsets,
    lengths,
    numbers,
    keys,
    kallsyms,
    anomalies,
    truncated,
    keyCount,
  }) as VmcoreInfo;
}

function dropUndefined<T extends object>(o: T): T {
  for (const k of Object.keys(o) as (keyof T)[]) if (o[k] === undefined) delete o[k];
  return o;
}

/** What a block must hold to be used for the bootstrap; empty when complete. */
export function missingEssentials(v: VmcoreInfo): string[] {
  const missing: string[] = [];
  if (v.pageSize === undefined || v.pageSize < 4096 || (v.pageSize & (v.pageSize - 1)) !== 0) missing.push('PAGESIZE');
  if (!v.symbols.has('init_top_pgt') && !v.symbols.has('swapper_pg_dir')) missing.push('SYMBOL(init_top_pgt) or SYMBOL(swapper_pg_dir)');
  if (v.kernelOffset === undefined && v.physBase === undefined) missing.push('KERNELOFFSET or NUMBER(phys_base)');
  return missing;
}

/** Where a copy sits: the ELF note's text, the start of a page (vmcoreinfo_data), or elsewhere. */
export type CopyKind = 'elf-note' | 'page' | 'other' | 'out-of-band';

export interface VmcoreinfoCopy {
  /** Guest-physical address of the text (undefined for an out-of-band copy). */
  readonly pa?: number;
  readonly kind: CopyKind;
  /** Text length in bytes. */
  readonly length: number;
  /** Parsed block, when it has an OSRELEASE. */
  readonly info?: VmcoreInfo;
  /** Holds every essential key and no anomaly that matters. */
  readonly complete: boolean;
  /** Why it is incomplete or suspicious. */
  readonly problems: readonly string[];
  /** Where it came from, for reports: 'memory 0x18e2018 (ELF note)'. */
  readonly source: string;
}

export interface VmcoreinfoSearch {
  /** Every copy found, best first. */
  readonly copies: readonly VmcoreinfoCopy[];
  /** The best complete copy, if any. */
  readonly chosen?: VmcoreinfoCopy;
  /** Why it was chosen (or why none was). */
  readonly reason: string;
  /** 'aligned': only page starts and note texts were probed; 'full': every byte. */
  readonly strategy: 'aligned' | 'full';
  readonly scannedBytes: number;
  /** True when `accept` took a copy before the end of memory. */
  readonly stoppedEarly?: boolean;
  readonly ms: number;
}

const NEEDLE = Buffer.from('OSRELEASE=', 'latin1');
/** The note's text starts after its 12-byte header and the 12-byte padded name "VMCOREINFO". */
const NOTE_TEXT_OFFSET = 0x18;
const NOTE_NAME = Buffer.from('VMCOREINFO\0', 'latin1');
/** The kernel keeps the text in one page (VMCOREINFO_BYTES); read at most this much. */
const MAX_TEXT = 4096;
const CHUNK = 1 << 20;
/** Mapped memory is scanned in slices so an accepted copy stops the scan early. */
const SLICE = 16 << 20;

/** Copy kind from the bytes before a hit. */
function kindAt(pa: number, before: Uint8Array | undefined): CopyKind {
  if (before && before.length === NOTE_TEXT_OFFSET) {
    const dv = new DataView(before.buffer, before.byteOffset, before.length);
    const namesz = dv.getUint32(0, true);
    const type = dv.getUint32(8, true);
    if (namesz === NOTE_NAME.length && type === 0 && Buffer.from(before.subarray(12, 12 + NOTE_NAME.length)).equals(NOTE_NAME)) {
      return 'elf-note';
    }
  }
  return pa % 4096 === 0 ? 'page' : 'other';
}

function decodeText(bytes: Uint8Array): { text: string; terminated: boolean } {
  const nul = bytes.indexOf(0);
  const end = nul < 0 ? bytes.length : nul;
  return { text: Buffer.from(bytes.buffer, bytes.byteOffset, end).toString('latin1'), terminated: nul >= 0 };
}

/** Parses and judges one block of text. */
export function examineCopy(text: string, kind: CopyKind, source: string, pa?: number, terminated = true): VmcoreinfoCopy {
  const problems: string[] = [];
  let info: VmcoreInfo | undefined;
  try {
    info = parseVmcoreinfo(text, source);
  } catch (e) {
    problems.push(e instanceof Error ? e.message : String(e));
  }
  if (info) {
    const missing = missingEssentials(info);
    if (missing.length) problems.push(`missing ${missing.join(', ')}`);
    if (info.truncated) problems.push('cut short (no final newline)');
    const badLines = info.anomalies.filter((a) => !a.startsWith('the last line'));
    if (badLines.length) problems.push(`${badLines.length} malformed line(s), first ${badLines[0]}`);
  }
  if (!terminated) problems.push(`no NUL within ${MAX_TEXT} bytes`);
  const base = { kind, length: text.length, complete: problems.length === 0, problems, source };
  return dropUndefined({ ...base, pa, info }) as VmcoreinfoCopy;
}

function describeLocation(pa: number, kind: CopyKind): string {
  const where = `memory 0x${pa.toString(16)}`;
  return kind === 'elf-note' ? `${where} (ELF note text)` : kind === 'page' ? `${where} (page start)` : where;
}

/** Reads the text at a hit and the note header before it. Returns undefined if unreadable. */
function readCandidate(mem: PhysicalMemory, pa: number, regions: readonly MappedRegion[] | undefined): VmcoreinfoCopy | undefined {
  const limit = Math.min(MAX_TEXT, mem.size - pa);
  let body: Uint8Array | undefined;
  let before: Uint8Array | undefined;
  const region = regions?.find((r) => pa >= r.start && pa < r.start + r.bytes.length);
  if (region) {
    const off = pa - region.start;
    body = region.bytes.subarray(off, Math.min(region.bytes.length, off + limit));
    if (off >= NOTE_TEXT_OFFSET) before = region.bytes.subarray(off - NOTE_TEXT_OFFSET, off);
  }
  if (!body || body.length < limit) {
    const ops = [{ addr: gpa(pa), len: limit, dst: new Uint8Array(limit) }];
    const failures = mem.readv(ops);
    // Keep what precedes the first failure: a copy at the end of RAM is still data.
    const firstBad = failures.reduce((m, f) => Math.min(m, f.addr - pa), limit);
    if (firstBad <= 0) return undefined;
    body = ops[0]!.dst.subarray(0, firstBad);
  }
  if (!before && pa >= NOTE_TEXT_OFFSET) {
    const op = { addr: gpa(pa - NOTE_TEXT_OFFSET), len: NOTE_TEXT_OFFSET, dst: new Uint8Array(NOTE_TEXT_OFFSET) };
    if (mem.readv([op]).length === 0) before = op.dst;
  }
  const kind = kindAt(pa, before);
  const { text, terminated } = decodeText(body);
  return examineCopy(text, kind, describeLocation(pa, kind), pa, terminated);
}

/** Orders copies: complete first, then more keys, then ELF note > page > other. */
function rank(copies: VmcoreinfoCopy[]): VmcoreinfoCopy[] {
  const kindOrder: Record<CopyKind, number> = { 'out-of-band': 0, 'elf-note': 1, page: 2, other: 3 };
  return copies.sort(
    (a, b) =>
      Number(b.complete) - Number(a.complete) ||
      (b.info?.keyCount ?? 0) - (a.info?.keyCount ?? 0) ||
      kindOrder[a.kind] - kindOrder[b.kind] ||
      (a.pa ?? 0) - (b.pa ?? 0),
  );
}

function explain(copies: readonly VmcoreinfoCopy[], chosen?: VmcoreinfoCopy): string {
  const complete = copies.filter((c) => c.complete);
  if (complete.length === 0) {
    if (copies.length === 0) return 'no OSRELEASE= block found';
    return `${copies.length} OSRELEASE= hit(s), none complete (best: ${copies[0]!.source}: ${copies[0]!.problems.join('; ')})`;
  }
  const best = chosen ?? complete[0]!;
  const texts = new Set(complete.map((c) => c.info!.raw));
  const agree =
    complete.length === 1
      ? 'the only complete copy'
      : texts.size === 1
        ? `${complete.length} complete copies agree byte for byte`
        : `${complete.length} complete copies DISAGREE (releases ${[...new Set(complete.map((c) => c.info!.release))].join(', ')}): the page tables must decide`;
  const rejected = copies.filter((c) => !c.complete).length;
  return `${best.source}: ${best.info!.keyCount} keys, ${agree}${rejected ? `; ${rejected} look-alike(s) rejected` : ''}`;
}

/** Page-aligned hits (vmcoreinfo_data) and note texts (note page + 0x18) in one mapped buffer. */
function alignedHits(bytes: Uint8Array, start: number, out: number[]): void {
  const n0 = NEEDLE[0]!;
  const first = (4096 - (start % 4096)) % 4096;
  const matchAt = (o: number): boolean => {
    let k = 1;
    while (k < NEEDLE.length && bytes[o + k] === NEEDLE[k]) k++;
    return k === NEEDLE.length;
  };
  for (let off = first; off + NOTE_TEXT_OFFSET + NEEDLE.length <= bytes.length; off += 4096) {
    if (bytes[off] === n0 && matchAt(off)) out.push(start + off);
    const note = off + NOTE_TEXT_OFFSET;
    if (bytes[note] === n0 && matchAt(note)) out.push(start + note);
  }
}

function allHits(bytes: Uint8Array, start: number, out: number[], from = 0): void {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = buf.indexOf(NEEDLE, from); i >= 0; i = buf.indexOf(NEEDLE, i + 1)) {
    out.push(start + i);
    if (out.length > 10_000) return; // hostile memory full of the needle
  }
}

/**
 * Scan order: RAM above 4 GiB first, then the rest, each ascending. Both
 * copies are page allocations made early in boot, and the page allocator
 * serves ZONE_NORMAL (above 4 GiB on x86-64) first, from its low end: with an
 * early stop this finds them after a few MiB instead of after the whole
 * low memory (which on a cold mapping costs a page fault per page).
 */
function likelyFirst<T extends { start: number }>(ranges: readonly T[]): T[] {
  const FOUR_GIB = 4 * 1024 ** 3;
  return [...ranges.filter((r) => r.start >= FOUR_GIB), ...ranges.filter((r) => r.start < FOUR_GIB)];
}

export interface FindOptions {
  /** 'aligned' probes page starts and note texts only (fast), 'full' every byte; 'auto' (default) goes full when aligned finds no usable copy. */
  readonly strategy?: 'aligned' | 'full' | 'auto';
  /**
   * Called for each complete copy in address order; returning true takes it
   * and stops the scan (the bootstrap passes its page-table check). Without
   * it every copy is collected and the best ranked one is chosen.
   */
  readonly accept?: (copy: VmcoreinfoCopy) => boolean;
}

/**
 * Finds every vmcoreinfo copy in guest-physical memory. Uses the source's
 * mapped views (no copy) when it has them, else 1 MiB batched reads.
 */
export function findVmcoreinfo(mem: PhysicalMemory, options: FindOptions = {}): VmcoreinfoSearch {
  const t0 = monotonicMs();
  const want = options.strategy ?? 'auto';
  const regions = mem.mapped?.();
  let scanned = 0;
  let accepted: VmcoreinfoCopy | undefined;
  const seen = new Set<number>();
  const copies: VmcoreinfoCopy[] = [];
  /** Examines the hits of one slice; true when the caller's `accept` took a copy (stop). */
  const consider = (hits: number[]): boolean => {
    for (const pa of hits) {
      if (seen.has(pa) || copies.length >= 256) continue;
      seen.add(pa);
      const c = readCandidate(mem, pa, regions);
      if (!c) continue;
      copies.push(c);
      if (c.complete && options.accept?.(c)) {
        accepted = c;
        return true;
      }
    }
    return false;
  };
  /** One pass over memory in address order; stops early when a copy is accepted. */
  const scan = (full: boolean): void => {
    scanned = 0;
    const find = (bytes: Uint8Array, start: number, out: number[]): void => (full ? allHits(bytes, start, out) : alignedHits(bytes, start, out));
    if (regions && regions.length) {
      for (const r of likelyFirst(regions)) {
        for (let off = 0; off < r.bytes.length; off += SLICE) {
          const end = Math.min(r.bytes.length, off + SLICE + NEEDLE.length - 1);
          const hits: number[] = [];
          find(r.bytes.subarray(off, end), r.start + off, hits);
          scanned += Math.min(SLICE, r.bytes.length - off);
          if (consider(hits.filter((h) => h < r.start + off + SLICE))) return;
        }
      }
      return;
    }
    const buf = new Uint8Array(CHUNK + NEEDLE.length);
    for (const range of likelyFirst(mem.ranges())) {
      for (let a: number = range.start; a < range.end; a += CHUNK) {
        const len = Math.min(CHUNK + NEEDLE.length - 1, range.end - a);
        const dst = buf.subarray(0, len);
        const failures = mem.readv([{ addr: gpa(a), len, dst }]);
        if (failures.length === 1 && failures[0]!.len === len) continue;
        scanned += Math.min(CHUNK, len);
        const hits: number[] = [];
        find(dst, a, hits);
        // The overlap tail belongs to the next chunk.
        if (consider(hits.filter((h) => h < a + CHUNK))) return;
      }
    }
  };
  let strategy: 'aligned' | 'full' = want === 'full' ? 'full' : 'aligned';
  scan(strategy === 'full');
  if (want === 'auto' && !accepted && !copies.some((c) => c.complete && !options.accept)) {
    strategy = 'full';
    scan(true);
  }
  const ranked = rank(copies);
  const chosen = accepted ?? (options.accept ? undefined : ranked.find((c) => c.complete));
  const total = (regions && regions.length ? regions.map((r) => r.bytes.length) : mem.ranges().map((r) => r.end - r.start)).reduce((a, b) => a + b, 0);
  const stoppedEarly = accepted !== undefined && scanned < total;
  return dropUndefined({
    copies: ranked,
    chosen,
    reason: accepted ? `${explain(ranked, accepted)}${stoppedEarly ? ` (scan stopped at the first confirmed copy)` : ''}` : explain(ranked),
    strategy,
    scannedBytes: scanned,
    stoppedEarly,
    ms: monotonicMs() - t0,
  }) as VmcoreinfoSearch;
}

/**
 * The vmcoreinfo copy at guest-physical `pa` (a remembered address), or
 * undefined when the text there does not start with `OSRELEASE=`.
 */
export function vmcoreinfoCopyAt(mem: PhysicalMemory, pa: number): VmcoreinfoCopy | undefined {
  if (!Number.isSafeInteger(pa) || pa < 0 || pa + NEEDLE.length > mem.size) return undefined;
  const head = new Uint8Array(NEEDLE.length);
  if (mem.readv([{ addr: gpa(pa), len: NEEDLE.length, dst: head }]).length) return undefined;
  for (let i = 0; i < NEEDLE.length; i++) if (head[i] !== NEEDLE[i]) return undefined;
  return readCandidate(mem, pa, mem.mapped?.());
}

/** Judges a vmcoreinfo text that came out of band (ELF note, QEMU device). */
export function outOfBandCopy(text: string, source: string): VmcoreinfoCopy {
  const nul = text.indexOf('\0');
  return examineCopy(nul >= 0 ? text.slice(0, nul) : text, 'out-of-band', source);
}

/** The chosen copy's parsed block, or a ProfileError naming what was searched. */
export function requireVmcoreinfo(search: VmcoreinfoSearch, target: string): VmcoreInfo {
  if (search.chosen?.info) return search.chosen.info;
  throw new ProfileError(`no usable vmcoreinfo in ${target}: ${search.reason}`, {
    tried: [`${search.strategy} scan of ${Math.round(search.scannedBytes / 1048576)} MiB`],
    hint: 'is this a Linux guest (CONFIG_CRASH_CORE)? a dump taken with -device vmcoreinfo carries it as an ELF note',
  });
}
