/**
 * The guest-physical RAM layout of a QEMU guest: which guest-physical ranges
 * are RAM of which RAM block, at which offset inside it. It comes from the
 * monitor (`info mtree -f`, the flat view of address space "memory"; `info
 * ramblock`), never from mapping sizes. With a memory-backend-file the
 * offset inside the block is the offset inside the file.
 *
 * q35 example (4 GiB): GPA [0,0xa0000) → mem@0, the vga-lowmem MMIO window
 * [0xa0000,0xc0000) is not RAM, [0xc0000,2G) → mem@0xc0000, and
 * [4G,6G) → mem@2G.
 */
import { FormatError } from '../core/errors.js';
import type { PhysRange, ReadFailure, ReadOp } from '../core/phys.js';
import { gpa } from '../core/address.js';

/** One line of a flat view: what the guest sees at [start, end). */
export interface FlatRange {
  readonly start: number;
  /** Exclusive. */
  readonly end: number;
  /** QEMU's region type text: 'ram', 'rom', 'i/o', 'romd', … */
  readonly kind: string;
  readonly priority: number;
  /** The memory region that answers, e.g. 'mem', 'vga.vram', 'pc.bios'. */
  readonly region: string;
  /** Offset of `start` inside that region. */
  readonly offset: number;
}

/** A RAM block as `info ramblock` lists it. */
export interface RamBlock {
  readonly name: string;
  readonly pageSize: number;
  /** Offset in QEMU's ram_addr_t space (not a file offset). */
  readonly ramAddr: number;
  readonly used: number;
  readonly total: number;
}

/** A guest-physical range backed by a RAM block. */
export interface RamRange extends PhysRange {
  readonly name: string;
  readonly block: string;
  /** Offset of `start` inside the block (= file offset for memory-backend-file). */
  readonly blockOffset: number;
}

/** x86-64 physical addresses have at most 52 bits; anything above is not guest RAM. */
const MAX_PHYS = 2 ** 52;
const MAX_LINES = 200_000;
const GIB4 = 0x1_0000_0000;

const RANGE_LINE = /^\s+([0-9a-f]{1,16})-([0-9a-f]{1,16}) \(prio (-?\d+), ([^)]*)\): (.*)$/;

/**
 * Parses `info mtree -f` and returns the flat view of `addressSpace`
 * ("memory" is the system address space the CPUs see outside SMM).
 */
export function parseFlatView(text: string, addressSpace = 'memory'): FlatRange[] {
  const lines = text.split(/\r?\n/);
  if (lines.length > MAX_LINES) throw new FormatError('info mtree -f', `output has ${lines.length} lines; refusing to parse more than ${MAX_LINES}`);
  let inView = false;
  let sawView = false;
  let found = false;
  const out: FlatRange[] = [];
  for (const line of lines) {
    if (line.startsWith('FlatView #')) {
      if (found) break;
      inView = false;
      sawView = true;
      continue;
    }
    const as = /^ AS "([^"]*)"/.exec(line);
    if (as) {
      if (as[1] === addressSpace) inView = found = true;
      continue;
    }
    if (!inView) continue;
    const m = RANGE_LINE.exec(line);
    if (!m) continue;
    const start = BigInt(`0x${m[1]}`);
    const last = BigInt(`0x${m[2]}`);
    if (last < start || last >= BigInt(MAX_PHYS)) continue;
    let rest = m[5]!.trim();
    // Trailing annotations such as " [ROM]", " [NV]", " [disabled]".
    while (/\s\[[^\]]*\]$/.test(rest)) rest = rest.replace(/\s\[[^\]]*\]$/, '');
    const at = / @([0-9a-f]{1,16})$/.exec(rest);
    const region = at ? rest.slice(0, at.index) : rest;
    const offset = at ? Number(BigInt(`0x${at[1]}`)) : 0;
    out.push({
      start: Number(start),
      end: Number(last) + 1,
      kind: m[4]!.trim(),
      priority: Number(m[3]),
      region,
      offset,
    });
  }
  if (!found) {
    throw new FormatError(
      'info mtree -f',
      sawView ? `no flat view for address space "${addressSpace}"` : 'not the output of `info mtree -f` (no FlatView)',
    );
  }
  out.sort((a, b) => a.start - b.start);
  return out;
}

const SIZE_UNITS: Record<string, number> = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 };

/** Parses `info ramblock`. */
export function parseRamBlocks(text: string): RamBlock[] {
  const out: RamBlock[] = [];
  const lines = text.split(/\r?\n/);
  if (lines.length > MAX_LINES) throw new FormatError('info ramblock', `output has ${lines.length} lines`);
  for (const line of lines) {
    const m = /^\s*(.+?)\s+(\d+) (B|KiB|MiB|GiB)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s*$/.exec(line);
    if (!m) continue;
    out.push({
      name: m[1]!,
      pageSize: Number(m[2]) * SIZE_UNITS[m[3]!]!,
      ramAddr: Number(BigInt(`0x${m[4]}`)),
      used: Number(BigInt(`0x${m[5]}`)),
      total: Number(BigInt(`0x${m[6]}`)),
    });
  }
  if (!out.length && !/Block Name/.test(text)) throw new FormatError('info ramblock', 'not the output of `info ramblock`');
  return out;
}

function isMemoryKind(kind: string): boolean {
  return /\b(ram|rom)\b/.test(kind);
}

/** The region that backs most RAM bytes in the view: the guest's main RAM (e.g. 'mem', 'pc.ram'). */
export function mainRamRegion(flat: readonly FlatRange[]): string | undefined {
  const bytes = new Map<string, number>();
  for (const r of flat) if (isMemoryKind(r.kind)) bytes.set(r.region, (bytes.get(r.region) ?? 0) + (r.end - r.start));
  let best: string | undefined;
  for (const [name, n] of bytes) if (best === undefined || n > bytes.get(best)!) best = name;
  return best;
}

function rangeName(start: number, end: number, block: string): string {
  if (end <= GIB4) return 'ram-below-4g';
  if (start >= GIB4) return 'ram-above-4g';
  return block;
}

/**
 * The guest-physical ranges backed by RAM block `block` (default: the main
 * RAM region), merged where both the guest addresses and the block offsets
 * are contiguous. MMIO windows (vga-lowmem), other RAM blocks (vga.vram) and
 * firmware (pc.bios) are left out.
 */
export function guestRam(flat: readonly FlatRange[], block = mainRamRegion(flat)): RamRange[] {
  if (block === undefined) return [];
  const out: RamRange[] = [];
  for (const r of flat) {
    if (r.region !== block || !isMemoryKind(r.kind)) continue;
    const prev = out[out.length - 1];
    if (prev && prev.end === r.start && prev.blockOffset + (prev.end - prev.start) === r.offset) {
      out[out.length - 1] = { ...prev, end: gpa(r.end), name: rangeName(prev.start, r.end, block) };
    } else {
      out.push({ start: gpa(r.start), end: gpa(r.end), block, blockOffset: r.offset, name: rangeName(r.start, r.end, block) });
    }
  }
  return out;
}

/** Where q35 splits RAM when it is at least this large: 2 GiB below 4 GiB, the rest above. */
const Q35_LOWMEM_LIMIT = 0xb000_0000;
const VGA_START = 0xa_0000;
const VGA_END = 0xc_0000;

/**
 * The layout q35 gives a RAM block of `size` bytes when nothing better is
 * known (a shm file without QMP): below 2.75 GiB it is flat from GPA 0;
 * otherwise the first 2 GiB sit at GPA 0 and the rest at 4 GiB. The VGA
 * window is excluded either way.
 */
export function q35Layout(size: number, block = 'mem'): RamRange[] {
  if (!Number.isSafeInteger(size) || size <= 0) return [];
  const below = size >= Q35_LOWMEM_LIMIT ? 0x8000_0000 : size;
  const out: RamRange[] = [];
  const push = (start: number, end: number, blockOffset: number) => {
    if (end > start) out.push({ start: gpa(start), end: gpa(end), block, blockOffset, name: rangeName(start, end, block) });
  };
  push(0, Math.min(below, VGA_START), 0);
  push(VGA_END, below, VGA_END);
  if (size > below) push(GIB4, GIB4 + size - below, below);
  return out;
}

/** Index of the range containing `addr`, or -1 (ranges sorted, non-overlapping). */
export function findRange(ranges: readonly PhysRange[], addr: number): number {
  let lo = 0;
  let hi = ranges.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const r = ranges[mid]!;
    if (addr < r.start) hi = mid - 1;
    else if (addr >= r.end) lo = mid + 1;
    else return mid;
  }
  return -1;
}

/** Largest single read accepted (a bigger request is almost surely a corrupt length from guest data). */
export const MAX_READ = 1 << 30;

/** Why a read request cannot be served at all, or undefined when it is well-formed. */
export function invalidRead(addr: number, len: number, dst: Uint8Array | undefined): string | undefined {
  if (!Number.isSafeInteger(addr) || addr < 0 || addr >= MAX_PHYS) return `address ${addr} is not a guest-physical address`;
  if (!Number.isSafeInteger(len) || len < 0 || len > MAX_READ) return `length ${len} is not between 0 and ${MAX_READ}`;
  if (dst && dst.length < len) return `destination holds ${dst.length} bytes, ${len} requested`;
  return undefined;
}

/**
 * Splits the guest-physical read [addr, addr+len) into backed pieces and
 * holes, in address order. `backed(range, blockOffset, dstOffset, n)` and
 * `hole(addr, dstOffset, n)` are called for each piece.
 */
export function splitRead<R extends RamRange>(
  ranges: readonly R[],
  addr: number,
  len: number,
  backed: (range: R, blockOffset: number, dstOffset: number, n: number) => void,
  hole: (addr: number, dstOffset: number, n: number) => void,
): void {
  let pos = addr;
  const end = addr + len;
  let i = findRange(ranges, pos);
  if (i < 0) {
    // First range after pos.
    i = 0;
    while (i < ranges.length && ranges[i]!.end <= pos) i++;
  }
  while (pos < end) {
    const r = ranges[i];
    if (!r || r.start >= end) {
      hole(pos, pos - addr, end - pos);
      return;
    }
    if (r.start > pos) {
      hole(pos, pos - addr, r.start - pos);
      pos = r.start;
    }
    const n = Math.min(end, r.end) - pos;
    backed(r, r.blockOffset + (pos - r.start), pos - addr, n);
    pos += n;
    i++;
  }
}

/**
 * The buffer a read op fills, allocated when the caller gave none; undefined
 * when the op is malformed (its failure recorded, its dst set empty).
 */
export function readDestination(op: ReadOp, failures: ReadFailure[]): Uint8Array | undefined {
  const bad = invalidRead(op.addr, op.len, op.dst);
  if (bad) {
    failures.push({ addr: op.addr, len: op.len, reason: bad });
    op.dst ??= new Uint8Array(0);
    return undefined;
  }
  return (op.dst ??= new Uint8Array(op.len));
}

/**
 * splitRead into `dst`: holes are zero-filled and recorded as failures,
 * `backed` fills the RAM pieces.
 */
export function splitReadFillingHoles<R extends RamRange>(
  ranges: readonly R[],
  addr: number,
  len: number,
  dst: Uint8Array,
  failures: ReadFailure[],
  backed: (range: R, blockOffset: number, dstOffset: number, n: number) => void,
): void {
  splitRead(ranges, addr, len, backed, (at, dstOffset, n) => {
    dst.fill(0, dstOffset, dstOffset + n);
    failures.push({ addr: gpa(at), len: n, reason: holeReason(at) });
  });
}

/** The failure reason for guest-physical bytes no RAM block backs. */
export function holeReason(addr: number): string {
  return `not guest RAM (no RAM block backs guest-physical 0x${addr.toString(16)})`;
}

/** One line per range, for `vmsight info` and errors. */
export function describeLayout(ranges: readonly RamRange[]): string[] {
  return ranges.map(
    (r) => `0x${r.start.toString(16)}-0x${(r.end - 1).toString(16)} ${r.block}@0x${r.blockOffset.toString(16)} (${r.name})`,
  );
}
