/**
 * Finds the kallsyms tables inside a block of bytes (a guest's kernel image
 * read from physical memory, or an extracted vmlinux) by their shape alone,
 * and decodes them. No symbol file, no vmcoreinfo needed.
 *
 * The tables are laid out in one of two orders (scripts/kallsyms.c; the
 * reorder is Masahiro Yamada's "scripts/kallsyms: change the output order",
 * v6.4):
 *   classic (≤ 6.3): offsets|addresses, relative_base, num_syms, names,
 *                    markers, [seqs_of_names (6.2+, backported to Debian 6.1)],
 *                    token_table, token_index
 *   names-first (≥ 6.4): num_syms, names, markers, token_table, token_index,
 *                    offsets|addresses, relative_base, seqs_of_names
 * Every label takes the same alignment (ALGN: `.balign 8` on 64-bit builds,
 * 4 on some); the tables show which: num_syms is a u32, so names starts 4 or 8
 * bytes after it. That alignment places the address table and relative_base
 * exactly: after an odd number of u32 offsets, relative_base follows 4 bytes
 * of zero padding when ALGN is 8 (Debian 6.12.118, 166973 symbols), and the
 * unpadded u64 there would read 0x8100000000000000 for 0xffffffff81000000.
 * The search anchors on token_index (256 increasing u16 from 0), steps back
 * over token_table, [seqs,] markers and names to num_syms, then tries the
 * places the address table can be (both orders, three addressings) and keeps
 * the one where `_text` decodes to relative_base.
 *
 * Longer than ~400 lines on purpose: the shape search for both table orders
 * (classic and names-first) shares its anchors and checks; each half alone
 * would repeat them.
 */
import {
  type DecodedNames,
  type KallsymsAddressing,
  type KallsymsAnomaly,
  KallsymsError,
  MAX_NAME_LENGTH,
  MAX_SYMBOLS,
  type Tokens,
  countInversions,
  decodeAddresses,
  decodeNames,
  findName,
  parseTokens,
  tokenTableLength,
  walkNames,
} from './decode.js';

export type KallsymsOrder = 'classic' | 'names-first';

/** Where each table sits, as offsets in the searched bytes. */
export interface KallsymsLocation {
  readonly order: KallsymsOrder;
  readonly addressing: KallsymsAddressing;
  /** True when kallsyms_seqs_of_names sits between markers and token_table (classic order, 6.2+ or backport). */
  readonly seqsOfNames: boolean;
  readonly numSyms: number;
  readonly numSymsAt: number;
  readonly namesAt: number;
  readonly namesEnd: number;
  readonly markersAt: number;
  readonly tokenTableAt: number;
  readonly tokenIndexAt: number;
  /** kallsyms_offsets, or kallsyms_addresses when addressing is 'absolute'. */
  readonly addressTableAt: number;
  readonly relativeBaseAt?: number;
  /** kallsyms_relative_base (0 for absolute tables): the runtime `_text` when relocated. */
  readonly relativeBase: bigint;
  /** Label alignment the tables show (names − num_syms): 4 or 8. */
  readonly align: 4 | 8;
}

export interface LocatedKallsyms {
  readonly location: KallsymsLocation;
  readonly names: DecodedNames;
  readonly addresses: BigUint64Array;
  /** Address of `_text` as decoded, when the table has it. */
  readonly text?: bigint;
  readonly anomalies: KallsymsAnomaly[];
}

export interface SearchOptions {
  /** Search only [from, to) of the bytes (default: all). */
  readonly from?: number;
  readonly to?: number;
  /** Stop after this many decoded tables (default 4). */
  readonly maxResults?: number;
  /** Give up after validating this many token_index candidates (default 256). */
  readonly maxCandidates?: number;
  /**
   * True when the bytes start at a 4-byte-aligned guest address (memory
   * windows): 2-mod-4 offsets cannot hold a table label and are not scanned.
   */
  readonly aligned?: boolean;
}

export interface SearchReport {
  readonly found: LocatedKallsyms[];
  /** token_index look-alikes examined. */
  readonly candidates: number;
  /** Why each rejected candidate failed (first few), for error messages. */
  readonly rejected: string[];
}

const MAX_ENTRY = 2 + MAX_NAME_LENGTH;
/** Farthest back from token_table that markers are looked for (seqs_of_names is 3 bytes per symbol). */
const MARKER_WINDOW = 3 * MAX_SYMBOLS + 64;

function u16(b: Uint8Array, p: number): number {
  return b[p]! | (b[p + 1]! << 8);
}

function u32(b: Uint8Array, p: number): number {
  return (b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16) | (b[p + 3]! << 24)) >>> 0;
}

function s32(b: Uint8Array, p: number): number {
  return b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16) | (b[p + 3]! << 24);
}

function u64(b: Uint8Array, p: number): bigint {
  return (BigInt(u32(b, p + 4)) << 32n) | BigInt(u32(b, p));
}

/** True when 256 u16 at p start at 0 and rise by 2..MAX_NAME_LENGTH each (a token_index). */
export function looksLikeTokenIndex(b: Uint8Array, p: number): boolean {
  if (p < 0 || p + 512 > b.length) return false;
  let prev = 0;
  if (u16(b, p) !== 0) return false;
  for (let i = 1; i < 256; i++) {
    const v = u16(b, p + 2 * i);
    const d = v - prev;
    if (d < 2 || d > MAX_NAME_LENGTH) return false;
    prev = v;
  }
  return true;
}

/**
 * Offsets of token_index look-alikes in [from, to), in increasing order, at
 * most `max`. Labels are at least 4-byte aligned, so the 'aligned' pass reads
 * one u32 per 4 bytes (u16[0] == 0, u16[1] in 2..64: the first token is
 * short); the 'unaligned' pass covers the 2-mod-4 offsets, for bytes that do
 * not start at an aligned address.
 */
export function findTokenIndexCandidates(b: Uint8Array, from = 0, to = b.length, max = 256, pass: 'aligned' | 'unaligned' = 'aligned'): number[] {
  const out: number[] = [];
  const end = Math.min(to, b.length) - 512;
  if (end < from) return out;
  const check = (p: number): boolean => {
    const v1 = b[p + 2]! | (b[p + 3]! << 8);
    const v2 = b[p + 4]! | (b[p + 5]! << 8);
    if (v2 <= v1 + 1 || v2 > v1 + MAX_NAME_LENGTH || !looksLikeTokenIndex(b, p)) return false;
    out.push(p);
    return out.length >= max;
  };
  if (pass === 'aligned') {
    // Word-aligned in memory, which is aligned in the guest when the bytes start at an aligned address.
    const first = from + ((4 - ((b.byteOffset + from) & 3)) & 3);
    if (end < first) return out;
    const words = new Uint32Array(b.buffer, b.byteOffset + first, ((end - first) >>> 2) + 1);
    for (let i = 0; i < words.length; i++) {
      const w = words[i]!;
      if ((w & 0xffff) !== 0 || ((w >>> 16) - 2) >>> 0 > 62) continue;
      if (check(first + 4 * i)) break;
    }
    return out;
  }
  for (let p = from + ((b.byteOffset + from) & 1); p <= end; p += 2) {
    if (((b.byteOffset + p) & 3) === 0) continue; // the aligned pass covers these
    if (b[p] !== 0 || b[p + 1] !== 0) continue;
    const v1 = b[p + 2]! | (b[p + 3]! << 8);
    if (v1 < 2 || v1 > 64) continue;
    if (check(p)) break;
  }
  return out;
}

/** Locates token_table just before a token_index at `ti`; returns its start and the parsed tokens. */
function tokenTableBefore(b: Uint8Array, ti: number): { at: number; tokens: Tokens } {
  const index = new Uint16Array(256);
  for (let i = 0; i < 256; i++) index[i] = u16(b, ti + 2 * i);
  // Skip alignment padding and the last token's NUL, then the last token's characters.
  let q = ti - 1;
  let zeros = 0;
  while (q >= 0 && b[q] === 0 && zeros < 16) {
    q--;
    zeros++;
  }
  if (zeros === 0 || zeros >= 16) throw new KallsymsError('kallsyms_token_table', ti, 'no NUL-terminated token right before token_index');
  let s = q;
  while (s > 0 && b[s - 1] !== 0 && q - s < MAX_NAME_LENGTH) s--;
  const at = s - index[255]!;
  if (at < 0) throw new KallsymsError('kallsyms_token_table', ti, 'would start before the searched bytes');
  const tokens = parseTokens(b.subarray(at, ti), index, { table: at, index: ti });
  if (at + tokenTableLength(tokens) > ti) throw new KallsymsError('kallsyms_token_table', at, 'overlaps token_index');
  return { at, tokens };
}

interface NamesFound {
  numSyms: number;
  numSymsAt: number;
  namesAt: number;
  namesEnd: number;
  markersAt: number;
  markers: Uint32Array;
  seqsOfNames: boolean;
  /** Label alignment: names starts right after num_syms (4) or after 4 bytes of padding (8). */
  align: 4 | 8;
}

/**
 * Work allowance for one token_index candidate (names entries walked, words
 * read), so hostile bytes built to look like many near-tables cannot make the
 * search run for long.
 */
export class Budget {
  left: number;
  constructor(units: number) {
    this.left = units;
  }
  spend(units: number): boolean {
    this.left -= units;
    return this.left >= 0;
  }
}

const BUDGET_PER_CANDIDATE = 64_000_000;
/** Allowance for one whole search (a few real candidates cost ~5M each). */
const BUDGET_PER_SEARCH = 96_000_000;

/** Reads the run of markers at p: u32 0, then rises by 2..MAX_ENTRY per 256 entries. */
function markerRun(b: Uint8Array, p: number, limit: number): number {
  let k = 1;
  let prev = 0;
  while (p + 4 * (k + 1) <= limit && k < (MAX_SYMBOLS >>> 8) + 1) {
    const v = u32(b, p + 4 * k);
    const d = v - prev;
    if (d < 2 * 256 || d > MAX_ENTRY * 256) break;
    prev = v;
    k++;
  }
  return k;
}

/**
 * Walks back from token_table over [seqs_of_names,] markers and names to
 * num_syms. Each candidate is confirmed by walking every names entry against
 * every marker.
 */
function namesBefore(b: Uint8Array, tokenTableAt: number, rejected: string[], total: Budget): NamesFound | undefined {
  const lowest = Math.max(0, tokenTableAt - MARKER_WINDOW);
  const allowance = Math.min(BUDGET_PER_CANDIDATE, Math.max(0, total.left));
  const budget = new Budget(allowance);
  try {
    return namesBeforeWithin(b, tokenTableAt, lowest, rejected, budget);
  } finally {
    total.spend(allowance - Math.max(0, budget.left));
  }
}

function namesBeforeWithin(b: Uint8Array, tokenTableAt: number, lowest: number, rejected: string[], budget: Budget): NamesFound | undefined {
  for (let p = tokenTableAt - 4; p >= lowest + 8; p -= 4) {
    if (!budget.spend(1)) break;
    if (u32(b, p) !== 0 || u32(b, p + 4) === 0) continue;
    // At least two markers: tables of 256 symbols or fewer are not searched for (real kernels hold 10^5).
    const run = markerRun(b, p, tokenTableAt);
    if (!budget.spend(run)) break;
    for (let m = run; m >= Math.max(2, run - 1); m--) {
      // The markers must end where token_table (no seqs_of_names) or seqs_of_names for 256(m-1)+1..256m symbols begins.
      const gap = tokenTableAt - (p + 4 * m);
      if (gap >= 16 && (gap < 3 * (256 * (m - 1) + 1) || gap >= 3 * 256 * m + 16)) continue;
      const found = namesForMarkers(b, p, m, tokenTableAt, budget);
      if (found) return found;
    }
  }
  rejected.push(
    budget.left < 0
      ? `token_table at 0x${tokenTableAt.toString(16)}: search budget spent before markers/names/num_syms were found`
      : `token_table at 0x${tokenTableAt.toString(16)}: no markers/names/num_syms behind it`,
  );
  return undefined;
}

function namesForMarkers(b: Uint8Array, markersAt: number, m: number, tokenTableAt: number, budget: Budget): NamesFound | undefined {
  const markers = new Uint32Array(m);
  for (let k = 0; k < m; k++) markers[k] = u32(b, markersAt + 4 * k);
  const last = markers[m - 1]!;
  const markersEnd = markersAt + 4 * m;
  // Names end in (markersAt - 8, markersAt]; the last group holds 1..256 entries of 2..MAX_ENTRY bytes.
  const hiS = markersAt - last - 2;
  const loS = Math.max(8, markersAt - last - 256 * MAX_ENTRY - 8);
  for (let s = hiS - ((hiS - markersAt) & 3); s >= loS; s -= 4) {
    if (!budget.spend(1)) return undefined;
    for (const back of [4, 8] as const) {
      const n = u32(b, s - back);
      if (n === 0 || n > MAX_SYMBOLS || Math.ceil(n / 256) !== m) continue;
      if (back === 8 && u32(b, s - 4) !== 0) continue;
      if (!budget.spend(n)) return undefined;
      const end = walkNames(b, s, markersAt, n, markers);
      if (end < 0 || markersAt - end >= 8) continue;
      // What lies between markers and token_table: nothing but padding, or seqs_of_names (3 bytes per symbol).
      const gap = tokenTableAt - markersEnd;
      const seqsOfNames = gap >= 3 * n && gap - 3 * n < 16;
      if (gap >= 16 && !seqsOfNames) continue;
      // The same alignment must explain the padding between names and markers.
      if (markersAt - end >= back) continue;
      return { numSyms: n, numSymsAt: s - back, namesAt: s, namesEnd: end, markersAt, markers, seqsOfNames, align: back };
    }
  }
  return undefined;
}

interface AddressCandidate {
  order: KallsymsOrder;
  addressing: KallsymsAddressing;
  tableAt: number;
  relativeBaseAt?: number;
  /** Alignment padding after the table: [start, end) must be zero (.balign fills with zeros). */
  padAt: number;
  padEnd: number;
}

function alignUp(x: number, a: number): number {
  return Math.ceil(x / a) * a;
}

/**
 * The places the address table can be. Each label is aligned, so a table of
 * `size` bytes at an aligned label is followed by the next label after
 * alignUp(size, align): the offsets' padding is 4 bytes when ALGN is 8 and
 * the symbol count is odd, else none.
 */
function addressCandidates(names: NamesFound, tokenIndexAt: number): AddressCandidate[] {
  const n = names.numSyms;
  const a = names.align;
  const offsetsSpan = alignUp(4 * n, a);
  const addressesSpan = alignUp(8 * n, a);
  const out: AddressCandidate[] = [];
  // classic: offsets, relative_base (u64), num_syms
  const rbClassic = names.numSymsAt - 8;
  const offClassic = rbClassic - offsetsSpan;
  for (const addressing of ['absolute-percpu', 'relative'] as const)
    out.push({ order: 'classic', addressing, tableAt: offClassic, relativeBaseAt: rbClassic, padAt: offClassic + 4 * n, padEnd: rbClassic });
  const absClassic = names.numSymsAt - addressesSpan;
  out.push({ order: 'classic', addressing: 'absolute', tableAt: absClassic, padAt: absClassic + 8 * n, padEnd: names.numSymsAt });
  // names-first: token_index (512 bytes), offsets, relative_base
  const at = tokenIndexAt + alignUp(512, a);
  for (const addressing of ['absolute-percpu', 'relative'] as const)
    out.push({ order: 'names-first', addressing, tableAt: at, relativeBaseAt: at + offsetsSpan, padAt: at + 4 * n, padEnd: at + offsetsSpan });
  out.push({ order: 'names-first', addressing: 'absolute', tableAt: at, padAt: at, padEnd: at });
  return out;
}

/**
 * Where a kernel image can be linked and relocated: page-aligned, in the top
 * 2^47 of the address space (x86-64 keeps the image above 0xffffffff80000000
 * even with 5-level paging; arm64 and riscv64 also place it there). A u64 read
 * 4 bytes off (padding + the low half of 0xffffffff81000000 gives
 * 0x8100000000000000) fails this.
 */
function plausibleImageAddress(a: bigint): boolean {
  return a >= 0xffff800000000000n && a <= 0xfffffffffffff000n && (a & 0xfffn) === 0n;
}

/** Checks one candidate address table against `_text` (or, without it, sortedness); returns addresses or a reason. */
function tryAddresses(b: Uint8Array, c: AddressCandidate, decoded: DecodedNames, textIndex: number): { addresses: BigUint64Array; base: bigint } | string {
  const n = decoded.count;
  const width = c.addressing === 'absolute' ? 8 : 4;
  if (c.tableAt < 0 || c.tableAt + width * n > b.length) return 'outside the bytes';
  if (c.padAt < 0 || c.padEnd > b.length) return 'padding outside the bytes';
  for (let p = c.padAt; p < c.padEnd; p++) if (b[p] !== 0) return `alignment padding at 0x${c.padAt.toString(16)} is not zero`;
  let base = 0n;
  if (c.relativeBaseAt !== undefined) {
    if (c.relativeBaseAt < 0 || c.relativeBaseAt + 8 > b.length) return 'relative_base outside the bytes';
    base = u64(b, c.relativeBaseAt);
    if (!plausibleImageAddress(base)) return `relative_base 0x${base.toString(16)} is not a kernel image address`;
  }
  if (textIndex >= 0) {
    const p = c.tableAt + width * textIndex;
    if (c.addressing === 'absolute-percpu' && s32(b, p) !== -1) return '_text offset is not -1';
    if (c.addressing === 'relative' && u32(b, p) !== 0) return '_text offset is not 0';
    if (c.addressing === 'absolute' && !plausibleImageAddress(u64(b, p))) return '_text is not a kernel image address';
  }
  const addresses = decodeAddresses(b.subarray(c.tableAt, c.tableAt + width * n), n, c.addressing, base);
  const inversions = countInversions(addresses);
  if (inversions > (textIndex >= 0 ? n >>> 10 : 0)) return `${inversions} address inversions`;
  if (textIndex < 0 && c.addressing === 'absolute' && !plausibleImageAddress(addresses[n - 1]! & ~0xfffn)) return 'no kernel addresses';
  return { addresses, base };
}

/** Full decode behind one token_index candidate, or a reason it is not kallsyms. */
export function decodeAtTokenIndex(b: Uint8Array, tokenIndexAt: number, rejected: string[] = [], budget = new Budget(BUDGET_PER_CANDIDATE)): LocatedKallsyms | undefined {
  let tt: { at: number; tokens: Tokens };
  try {
    tt = tokenTableBefore(b, tokenIndexAt);
  } catch (e) {
    if (e instanceof KallsymsError) {
      rejected.push(e.message);
      return undefined;
    }
    throw e;
  }
  const names = namesBefore(b, tt.at, rejected, budget);
  if (!names) return undefined;
  const decoded = decodeNames(b.subarray(0, names.namesEnd), names.namesAt, names.numSyms, tt.tokens, names.markers);
  if (decoded.count !== names.numSyms) {
    rejected.push(`kallsyms_names at 0x${names.namesAt.toString(16)}: ${decoded.anomalies[0]?.reason ?? 'short'}`);
    return undefined;
  }
  const textIndex = findName(decoded, '_text');
  const reasons: string[] = [];
  for (const c of addressCandidates(names, tokenIndexAt)) {
    const r = tryAddresses(b, c, decoded, textIndex);
    if (typeof r === 'string') {
      reasons.push(`${c.order}/${c.addressing}@0x${c.tableAt.toString(16)}: ${r}`);
      continue;
    }
    const anomalies: KallsymsAnomaly[] = [...decoded.anomalies];
    if (textIndex < 0) anomalies.push({ table: 'kallsyms_names', reason: 'no _text symbol: the address table was chosen by sortedness alone' });
    const inv = countInversions(r.addresses);
    if (inv > 0) anomalies.push({ table: c.addressing === 'absolute' ? 'kallsyms_addresses' : 'kallsyms_offsets', reason: `${inv} addresses out of order` });
    const location: KallsymsLocation = {
      order: c.order,
      addressing: c.addressing,
      seqsOfNames: names.seqsOfNames,
      numSyms: names.numSyms,
      numSymsAt: names.numSymsAt,
      namesAt: names.namesAt,
      namesEnd: names.namesEnd,
      markersAt: names.markersAt,
      tokenTableAt: tt.at,
      tokenIndexAt,
      addressTableAt: c.tableAt,
      ...(c.relativeBaseAt === undefined ? {} : { relativeBaseAt: c.relativeBaseAt }),
      relativeBase: r.base,
      align: names.align,
    };
    const found: LocatedKallsyms = { location, names: decoded, addresses: r.addresses, anomalies };
    return textIndex >= 0 ? { ...found, text: r.addresses[textIndex]! } : found;
  }
  rejected.push(`token_index at 0x${tokenIndexAt.toString(16)}: no address table fits (${reasons.slice(0, 3).join('; ')})`);
  return undefined;
}

/** Searches bytes for kallsyms tables and decodes every one found (bounded). */
export function searchKallsyms(b: Uint8Array, options: SearchOptions = {}): SearchReport {
  const from = Math.max(0, options.from ?? 0);
  const to = Math.min(b.length, options.to ?? b.length);
  const maxResults = options.maxResults ?? 4;
  const maxCandidates = options.maxCandidates ?? 256;
  const found: LocatedKallsyms[] = [];
  const rejected: string[] = [];
  let candidates = 0;
  const budget = new Budget(BUDGET_PER_SEARCH);
  // Unaligned offsets only when nothing aligned was found (bytes that start at an odd address).
  for (const pass of options.aligned ? (['aligned'] as const) : (['aligned', 'unaligned'] as const)) {
    if (found.length) break;
    let p = from;
    while (p < to && found.length < maxResults && candidates < maxCandidates) {
      if (budget.left <= 0) {
        rejected.push(`search stopped at 0x${p.toString(16)}: work budget spent on ${candidates} look-alikes`);
        break;
      }
      const next = findTokenIndexCandidates(b, p, to, 1, pass);
      if (!next.length) break;
      const ti = next[0]!;
      candidates++;
      const r = decodeAtTokenIndex(b, ti, rejected, budget);
      if (r) {
        found.push(r);
        p = ti + 512;
      } else p = ti + 2;
    }
  }
  return { found, candidates, rejected: rejected.slice(0, 8) };
}
