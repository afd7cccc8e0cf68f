/**
 * kdump-compressed memory images: makedumpfile's diskdump format, which QEMU's `dump-guest-memory` also
 * writes with `format: kdump-zlib | kdump-lzo | kdump-snappy`. Read straight from the file:
 *
 *   block 0                      disk_dump_header: "KDUMP   " (or "DISKDUMP"), header_version, utsname,
 *                                block_size, sub_hdr_size, bitmap_blocks, max_mapnr, nr_cpus
 *   blocks 1 .. sub_hdr_size     kdump_sub_header: phys_base, dump_level, VMCOREINFO and ELF-note offsets,
 *                                max_mapnr_64 (header version ≥ 6)
 *   bitmap_blocks blocks         two bitmaps, one bit per page frame (LSB first): the first says which
 *                                frames are RAM, the second which were dumped
 *   page descriptors             one per dumped frame, in frame order: u64 file offset, u32 size,
 *                                u32 flags (compression), u64 page flags
 *   page data                    each page raw (size = block_size, no flag) or compressed
 *
 * makedumpfile -F and QEMU before 8.2 (and later without `reassembled`) write the same image "flattened": a
 * 4 KiB header ("makedumpfile", type, version, big-endian) and then records {i64 offset, i64 size, data}
 * (big-endian) that place data in the image, ending with offset -1. FlatImageSource indexes the records
 * and reads the image through them without rebuilding it.
 *
 * Everything in the file is treated as hostile: lengths and offsets are validated, a page that does not
 * decompress to exactly one block is a failed read, never a crash. zlib comes from Node, Snappy from
 * snappyjs, zstd from fzstd (zstd-page.ts), LZO from the system's liblzo2 through koffi (native/lzo.ts;
 * loaded on the first LZO page, and a read of such a page says how to install it when it is missing).
 *
 * Longer than ~400 lines on purpose: the diskdump format (headers, sub-header, bitmaps, page descriptors, the flattened stream) whose parts only make sense read together.
 */
import { readDestination } from '../../qemu/layout.js';
import zlib from 'node:zlib';
import snappy from 'snappyjs';
import { lzoDecompress, lzoUnavailable } from '../native/lzo.js';
import { zstdDecompressPage } from './zstd-page.js';
import { FormatError } from '../../core/errors.js';
import type { CpuState, PhysicalMemory, PhysRange, ReadFailure, ReadOp, SourceHints, TechniqueInfo } from '../types.js';
import { type ByteSource, bytesAt, view } from './byte-source.js';
import { type ElfNote, parseNotes, parseQemuCpuState } from './elf-core.js';
import { gpa } from '../../core/address.js';

import { isFlattenedKdump, isKdump } from './kdump-magic.js';

// Re-exported: the magic checks live apart so that probing a file does not load the codecs.
export { isFlattenedKdump, isKdump };
const FLAT_HEADER = 4096;
/** Bounds the record index against a hostile file (QEMU writes about one record per page or buffer). */
const MAX_FLAT_RECORDS = 1 << 24;
const UTS_FIELD = 65;

/** Page-descriptor flags (makedumpfile's diskdump_mod.h). */
const COMPRESSED_ZLIB = 0x1;
const COMPRESSED_LZO = 0x2;
const COMPRESSED_SNAPPY = 0x4;
const COMPRESSED_ZSTD = 0x20;
/** Header status: the dump was cut short while it was written. */
const STATUS_INCOMPLETE = 0x8;

const DESC_SIZE = 24;
/** Descriptors are loaded in chunks of this many, on first use. */
const DESC_CHUNK = 4096;
/** Decoded compressed pages kept for re-reads (structure walks read one page many times). */
const PAGE_CACHE = 256;
/** Bounds against hostile headers: 2^34 frames of 4 KiB = 64 TiB; VMCOREINFO and notes of sane sizes. */
const MAX_FRAMES = 2 ** 34;
const MAX_VMCOREINFO = 1 << 20;
const MAX_NOTES = 64 << 20;

export type KdumpCompression = 'zlib' | 'lzo' | 'snappy' | 'zstd';

export interface KdumpHeader {
  readonly signature: string;
  readonly version: number;
  readonly release: string;
  readonly machine: string;
  readonly blockSize: number;
  readonly subHeaderBlocks: number;
  readonly bitmapBlocks: number;
  /** Page frames the bitmaps cover. */
  readonly maxMapnr: number;
  readonly nrCpus: number;
  readonly status: number;
  readonly physBase?: bigint;
  readonly dumpLevel?: number;
}


interface FlatRecord {
  /** Offset in the image. */
  at: number;
  size: number;
  /** Where its data starts in the file. */
  pos: number;
  /** Write order: a later record overrides an earlier one. */
  seq: number;
}

/**
 * The image a flattened file describes, as a ByteSource: records indexed once (sorted, overlaps resolved
 * for the later write), each read answered from the records it covers; bytes no record wrote read as zero.
 */
export class FlatImageSource implements ByteSource {
  readonly name: string;
  readonly size: number;
  private readonly records: FlatRecord[];

  constructor(private readonly file: ByteSource & { close?(): void }) {
    this.name = file.name;
    const raw: FlatRecord[] = [];
    const hdr = new Uint8Array(16);
    let pos = FLAT_HEADER;
    for (;;) {
      if (raw.length >= MAX_FLAT_RECORDS) throw new FormatError(file.name, `more than ${MAX_FLAT_RECORDS} flattened records`, { offset: pos });
      if (file.readAt(hdr, pos) < 16) break; // cut short: keep what was indexed (reads past it fail)
      const v = view(hdr);
      const at = v.getBigInt64(0, false);
      const size = v.getBigInt64(8, false);
      if (at === -1n) break;
      if (at < 0n || size < 0n || at + size > BigInt(Number.MAX_SAFE_INTEGER) || size > BigInt(file.size)) {
        throw new FormatError(file.name, `corrupt flattened record (offset ${at}, size ${size})`, { offset: pos });
      }
      raw.push({ at: Number(at), size: Number(size), pos: pos + 16, seq: raw.length });
      pos += 16 + Number(size);
    }
    this.records = resolveOverlaps(raw);
    const last = this.records[this.records.length - 1];
    this.size = last ? last.at + last.size : 0;
  }

  readAt(dst: Uint8Array, offset: number): number {
    if (offset >= this.size) return 0;
    const end = Math.min(this.size, offset + dst.length);
    let lo = 0;
    let hi = this.records.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const r = this.records[mid]!;
      if (r.at + r.size <= offset) lo = mid + 1;
      else hi = mid;
    }
    let cur = offset;
    for (let i = lo; cur < end; i++) {
      const r = this.records[i];
      if (!r || r.at >= end) {
        dst.fill(0, cur - offset, end - offset);
        break;
      }
      if (r.at > cur) dst.fill(0, cur - offset, r.at - offset);
      cur = Math.max(cur, r.at);
      const stop = Math.min(end, r.at + r.size);
      const got = this.file.readAt(dst.subarray(cur - offset, stop - offset), r.pos + (cur - r.at));
      if (got < stop - cur) return cur - offset + got; // the file ends inside this record
      cur = stop;
    }
    return end - offset;
  }

  close(): void {
    this.file.close?.();
  }
}

/** Sorted, non-overlapping records; where two overlap the later write wins. */
function resolveOverlaps(raw: readonly FlatRecord[]): FlatRecord[] {
  const list: FlatRecord[] = [];
  for (const r of raw) {
    if (r.size === 0) continue;
    const last = list[list.length - 1];
    if (!last || last.at + last.size <= r.at) {
      list.push(r); // the usual case: records written in image order
      continue;
    }
    const end = r.at + r.size;
    let i = 0;
    let hi = list.length;
    while (i < hi) {
      const mid = (i + hi) >>> 1;
      if (list[mid]!.at + list[mid]!.size <= r.at) i = mid + 1;
      else hi = mid;
    }
    const before: FlatRecord[] = [];
    const after: FlatRecord[] = [];
    let j = i;
    for (; j < list.length && list[j]!.at < end; j++) {
      const e = list[j]!;
      if (e.at < r.at) before.push({ ...e, size: r.at - e.at });
      if (e.at + e.size > end) after.push({ at: end, size: e.at + e.size - end, pos: e.pos + (end - e.at), seq: e.seq });
    }
    list.splice(i, j - i, ...before, r, ...after);
  }
  return list;
}

function cString(bytes: Uint8Array): string {
  const nul = bytes.indexOf(0);
  return Buffer.from(nul < 0 ? bytes : bytes.subarray(0, nul)).toString('latin1');
}

/** Popcount of every byte value. */
const POPCOUNT = new Uint8Array(256).map((_, i) => {
  let n = 0;
  for (let v = i; v; v >>= 1) n += v & 1;
  return n;
});

/**
 * A bitmap with rank queries: `rank(i)` counts the set bits below `i` in O(1) (a count per 64-byte chunk,
 * then bytes), which turns a frame number into its page-descriptor index.
 */
class RankedBitmap {
  private readonly chunkRank: Uint32Array;
  readonly ones: number;

  constructor(
    private readonly bits: Uint8Array,
    readonly length: number,
  ) {
    const chunks = Math.ceil(bits.length / 64);
    this.chunkRank = new Uint32Array(chunks + 1);
    let total = 0;
    for (let c = 0; c < chunks; c++) {
      this.chunkRank[c] = total;
      const end = Math.min(bits.length, (c + 1) * 64);
      for (let b = c * 64; b < end; b++) total += POPCOUNT[bits[b]!]!;
    }
    this.chunkRank[chunks] = total;
    this.ones = total;
  }

  has(i: number): boolean {
    return i >= 0 && i < this.length && (this.bits[i >>> 3]! & (1 << (i & 7))) !== 0;
  }

  rank(i: number): number {
    const byte = Math.floor(i / 8);
    const chunk = Math.floor(byte / 64);
    let r = this.chunkRank[chunk]!;
    for (let b = chunk * 64; b < byte; b++) r += POPCOUNT[this.bits[b]!]!;
    return r + POPCOUNT[this.bits[byte]! & ((1 << (i & 7)) - 1)]!;
  }

  /** Runs of set bits as [first, end) frame numbers. */
  *runs(): Generator<[number, number]> {
    let i = 0;
    while (i < this.length) {
      const byte = this.bits[i >>> 3]!;
      if ((i & 7) === 0 && byte === 0) {
        i += 8;
        continue;
      }
      if (!this.has(i)) {
        i++;
        continue;
      }
      const start = i;
      while (i < this.length && ((i & 7) !== 0 || this.bits[i >>> 3] !== 0xff) && this.has(i)) i++;
      while (i + 8 <= this.length && (i & 7) === 0 && this.bits[i >>> 3] === 0xff) i += 8;
      while (i < this.length && this.has(i)) i++;
      yield [start, i];
    }
  }
}

export interface KdumpImage {
  readonly header: KdumpHeader;
  readonly vmcoreinfo?: string;
  readonly notes: readonly ElfNote[];
  readonly cpus: readonly CpuState[];
  /** Compressions the first descriptors use (a sample: the whole file is not scanned up front). */
  readonly compressions: readonly KdumpCompression[];
  readonly anomalies: readonly string[];
  /** RAM frames in the first bitmap. */
  readonly ram: RankedBitmap;
  /** Dumped frames in the second bitmap. */
  readonly dumped: RankedBitmap;
  readonly descriptorsAt: number;
}

/** Parses the headers, bitmaps and notes of a kdump-compressed image. Throws FormatError for what cannot be read. */
export function parseKdump(src: ByteSource): KdumpImage {
  const head = bytesAt(src, 0, 464, 'kdump header');
  if (!isKdump(head)) throw new FormatError(src.name, 'no KDUMP signature', { offset: 0 });
  const h = view(head);
  const version = h.getUint32(8, true);
  const uts = head.subarray(12, 12 + 6 * UTS_FIELD);
  const release = cString(uts.subarray(2 * UTS_FIELD, 3 * UTS_FIELD));
  const machine = cString(uts.subarray(4 * UTS_FIELD, 5 * UTS_FIELD));
  const status = h.getUint32(424, true);
  const blockSize = h.getInt32(428, true);
  const subHeaderBlocks = h.getInt32(432, true);
  const bitmapBlocks = h.getUint32(436, true);
  let maxMapnr = h.getUint32(440, true);
  const nrCpus = h.getInt32(460, true);
  if (blockSize < 4096 || blockSize > 65536 || (blockSize & (blockSize - 1)) !== 0) {
    throw new FormatError(src.name, `kdump block size ${blockSize} is not a power of two between 4 KiB and 64 KiB`, { offset: 428 });
  }
  if (subHeaderBlocks < 0 || subHeaderBlocks > 1024) throw new FormatError(src.name, `absurd kdump sub-header size of ${subHeaderBlocks} blocks`, { offset: 432 });
  const anomalies: string[] = [];
  if (status & STATUS_INCOMPLETE) anomalies.push('the header says the dump is incomplete (it was cut short while written)');

  // The sub-header: phys_base, dump level, where VMCOREINFO and the ELF notes are; 64-bit frame count (v6+).
  let physBase: bigint | undefined;
  let dumpLevel: number | undefined;
  let vmcoreinfo: string | undefined;
  const notes: ElfNote[] = [];
  if (subHeaderBlocks > 0) {
    const sub = view(bytesAt(src, blockSize, 104, 'kdump sub-header'));
    physBase = sub.getBigInt64(0, true);
    dumpLevel = sub.getUint32(8, true);
    const viAt = Number(sub.getBigUint64(32, true));
    const viSize = Number(sub.getBigUint64(40, true));
    const noteAt = Number(sub.getBigUint64(48, true));
    const noteSize = Number(sub.getBigUint64(56, true));
    if (version >= 6) {
      const mapnr64 = sub.getBigUint64(96, true);
      if (mapnr64 > BigInt(MAX_FRAMES)) throw new FormatError(src.name, `absurd max_mapnr_64 ${mapnr64}`, { offset: blockSize + 96 });
      if (mapnr64 > 0n) maxMapnr = Number(mapnr64);
    }
    if (viSize > 0 && viSize <= MAX_VMCOREINFO && viAt > 0 && viAt + viSize <= src.size) {
      vmcoreinfo = Buffer.from(bytesAt(src, viAt, viSize, 'VMCOREINFO')).toString('latin1').replace(/\0+$/, '');
    } else if (viSize > 0) anomalies.push(`VMCOREINFO at 0x${viAt.toString(16)} (+${viSize}) lies outside the file`);
    if (noteSize > 0 && noteSize <= MAX_NOTES && noteAt > 0 && noteAt + noteSize <= src.size) parseNotes(src, noteAt, noteSize, notes, anomalies);
    else if (noteSize > 0) anomalies.push(`ELF notes at 0x${noteAt.toString(16)} (+${noteSize}) lie outside the file`);
  }
  vmcoreinfo ??= (() => {
    const n = notes.find((x) => x.name === 'VMCOREINFO');
    return n ? Buffer.from(n.desc).toString('latin1').replace(/\0+$/, '') : undefined;
  })();
  const cpus: CpuState[] = [];
  for (const n of notes) {
    if (n.name !== 'QEMU') continue;
    const cpu = parseQemuCpuState(n.desc, cpus.length);
    if (cpu) cpus.push(cpu);
  }

  // The two bitmaps, each half of bitmap_blocks.
  const bitmapAt = (1 + subHeaderBlocks) * blockSize;
  const bitmapBytes = bitmapBlocks * blockSize;
  if (bitmapBlocks % 2 !== 0 || bitmapBytes / 2 < Math.ceil(maxMapnr / 8) || bitmapBytes > 2 * Math.ceil(MAX_FRAMES / 8)) {
    throw new FormatError(src.name, `kdump bitmaps (${bitmapBlocks} blocks) do not cover max_mapnr ${maxMapnr} frames twice`, { offset: 436 });
  }
  const half = bitmapBytes / 2;
  const bits = bytesAt(src, bitmapAt, bitmapBytes, 'kdump bitmaps');
  const ram = new RankedBitmap(bits.subarray(0, half), maxMapnr);
  const dumped = new RankedBitmap(bits.subarray(half), maxMapnr);
  const descriptorsAt = bitmapAt + bitmapBytes;
  if (descriptorsAt + dumped.ones * DESC_SIZE > src.size) {
    anomalies.push(`the file ends inside the page descriptors (${dumped.ones} dumped pages): truncated`);
  }
  const header: KdumpHeader = {
    signature: Buffer.from(head.subarray(0, 8)).toString('latin1'),
    version,
    release,
    machine,
    blockSize,
    subHeaderBlocks,
    bitmapBlocks,
    maxMapnr,
    nrCpus,
    status,
    ...(physBase !== undefined ? { physBase } : {}),
    ...(dumpLevel !== undefined ? { dumpLevel } : {}),
  };
  const image: KdumpImage = {
    header,
    ...(vmcoreinfo !== undefined ? { vmcoreinfo } : {}),
    notes,
    cpus,
    compressions: [],
    anomalies,
    ram,
    dumped,
    descriptorsAt,
  };
  return { ...image, compressions: sampleCompressions(src, image) };
}

interface PageDesc {
  offset: number;
  size: number;
  flags: number;
}

function readDescriptors(src: ByteSource, at: number, count: number): PageDesc[] {
  const bytes = new Uint8Array(count * DESC_SIZE);
  const got = src.readAt(bytes, at);
  const v = view(bytes);
  const out: PageDesc[] = [];
  for (let i = 0; i < Math.floor(got / DESC_SIZE); i++) {
    const off = v.getBigInt64(i * DESC_SIZE, true);
    out.push({ offset: off < 0n || off > BigInt(Number.MAX_SAFE_INTEGER) ? -1 : Number(off), size: v.getUint32(i * DESC_SIZE + 8, true), flags: v.getUint32(i * DESC_SIZE + 12, true) });
  }
  return out;
}

function compressionOf(flags: number): KdumpCompression | undefined {
  if (flags & COMPRESSED_ZLIB) return 'zlib';
  if (flags & COMPRESSED_LZO) return 'lzo';
  if (flags & COMPRESSED_SNAPPY) return 'snappy';
  if (flags & COMPRESSED_ZSTD) return 'zstd';
  return undefined;
}

function sampleCompressions(src: ByteSource, image: KdumpImage): KdumpCompression[] {
  const seen = new Set<KdumpCompression>();
  for (const d of readDescriptors(src, image.descriptorsAt, Math.min(image.dumped.ones, 1024))) {
    const c = compressionOf(d.flags);
    if (c) seen.add(c);
  }
  return [...seen];
}

/** Every page compression makedumpfile and QEMU write; LZO needs the system's liblzo2 (see native/lzo.ts). */
export const SUPPORTED_COMPRESSIONS: ReadonlySet<KdumpCompression> = new Set(['zlib', 'snappy', 'zstd', 'lzo']);

/** Why pages of this compression cannot be read here, or undefined when they can. */
export function unsupportedCompression(c: KdumpCompression): string | undefined {
  if (!SUPPORTED_COMPRESSIONS.has(c)) return `${c} pages are not supported`;
  return c === 'lzo' ? lzoUnavailable() : undefined;
}

/** One page of `compression`, which must expand to exactly `size` bytes (throws saying why not). */
function decompressPage(compression: KdumpCompression, packed: Uint8Array, size: number): Uint8Array {
  switch (compression) {
    case 'zlib':
      return zlib.inflateSync(packed, { maxOutputLength: size });
    case 'snappy':
      return snappy.uncompress(packed, size);
    case 'zstd':
      return zstdDecompressPage(packed, size);
    case 'lzo':
      return lzoDecompress(packed, size);
  }
}

const TECHNIQUE: TechniqueInfo = { class: 'file', name: 'kdump', live: false, haltsGuest: false, zeroCopy: false };

/** A PhysicalMemory over a kdump-compressed image: pages located through the bitmaps, decoded on read. */
export class KdumpMemory implements PhysicalMemory {
  readonly technique = TECHNIQUE;
  readonly generation = 0;
  readonly size: number;
  readonly warnings: readonly string[];
  private readonly ranges_: PhysRange[] = [];
  private readonly chunks = new Map<number, PageDesc[]>();
  private readonly pages = new Map<number, Uint8Array>();

  constructor(
    readonly target: string,
    private readonly src: ByteSource & { close?(): void },
    readonly image: KdumpImage,
  ) {
    const bs = image.header.blockSize;
    for (const [a, b] of image.dumped.runs()) this.ranges_.push({ start: gpa(a * bs), end: gpa(b * bs), name: 'kdump pages' });
    this.size = this.ranges_.length ? this.ranges_[this.ranges_.length - 1]!.end : 0;
    const warnings = [...image.anomalies];
    for (const c of image.compressions) {
      const why = unsupportedCompression(c);
      if (why) warnings.push(`${target}: ${why}; reads of those pages fail`);
    }
    this.warnings = warnings.map((w) => (w.startsWith(target) ? w : `${target}: ${w}`));
  }

  ranges(): readonly PhysRange[] {
    return this.ranges_;
  }

  async hints(): Promise<SourceHints> {
    return { ...(this.image.vmcoreinfo !== undefined ? { vmcoreinfo: this.image.vmcoreinfo } : {}), cpus: this.image.cpus };
  }

  readv(ops: ReadOp[]): ReadFailure[] {
    const failures: ReadFailure[] = [];
    const bs = this.image.header.blockSize;
    for (const op of ops) {
      // The one check every source makes of an op (address, length bounds, destination size).
      const dst = readDestination(op, failures);
      if (!dst) continue;
      let at: number = op.addr;
      const end = op.addr + op.len;
      while (at < end) {
        const pfn = Math.floor(at / bs);
        const inPage = at - pfn * bs;
        const n = Math.min(end - at, bs - inPage);
        const part = dst.subarray(at - op.addr, at - op.addr + n);
        const reason = this.readPage(pfn, inPage, part);
        if (reason) {
          part.fill(0);
          const last = failures[failures.length - 1];
          if (last && last.addr + last.len === at && last.reason === reason) (last as { len: number }).len += n;
          else failures.push({ addr: gpa(at), len: n, reason });
        }
        at += n;
      }
    }
    return failures;
  }

  /** Copies [inPage, inPage + dst.length) of frame `pfn` into dst; returns why not, when it cannot. */
  private readPage(pfn: number, inPage: number, dst: Uint8Array): string | undefined {
    const img = this.image;
    if (!img.dumped.has(pfn)) {
      if (img.ram.has(pfn)) return `page excluded from the dump (makedumpfile dump level ${img.header.dumpLevel ?? '?'})`;
      return 'not backed by this image';
    }
    const cached = this.pages.get(pfn);
    if (cached) {
      dst.set(cached.subarray(inPage, inPage + dst.length));
      return undefined;
    }
    const desc = this.descriptor(img.dumped.rank(pfn));
    if (!desc) return 'page descriptor beyond the end of the file (truncated image)';
    const bs = img.header.blockSize;
    if (desc.offset < 0 || desc.size === 0 || desc.size > bs) return `corrupt page descriptor (offset ${desc.offset}, size ${desc.size})`;
    if (desc.offset + desc.size > this.src.size) return `image file ${this.src.name} ends early (truncated?)`;
    const compression = compressionOf(desc.flags);
    if (!compression) {
      if (desc.size !== bs) return `raw page of ${desc.size} bytes, not one block`;
      const got = this.src.readAt(dst, desc.offset + inPage);
      return got < dst.length ? `image file ${this.src.name} ends early (truncated?)` : undefined;
    }
    const why = unsupportedCompression(compression);
    if (why) return why;
    const packed = new Uint8Array(desc.size);
    if (this.src.readAt(packed, desc.offset) !== desc.size) return `image file ${this.src.name} ends early (truncated?)`;
    let page: Uint8Array;
    try {
      page = decompressPage(compression, packed, bs);
    } catch (e) {
      return `${compression} page does not decompress: ${(e as Error).message}`;
    }
    if (page.length !== bs) return `${compression} page decompresses to ${page.length} bytes, not ${bs}`;
    if (this.pages.size >= PAGE_CACHE) this.pages.delete(this.pages.keys().next().value!);
    this.pages.set(pfn, page);
    dst.set(page.subarray(inPage, inPage + dst.length));
    return undefined;
  }

  private descriptor(index: number): PageDesc | undefined {
    const chunk = Math.floor(index / DESC_CHUNK);
    let descs = this.chunks.get(chunk);
    if (!descs) {
      const first = chunk * DESC_CHUNK;
      descs = readDescriptors(this.src, this.image.descriptorsAt + first * DESC_SIZE, Math.min(DESC_CHUNK, this.image.dumped.ones - first));
      this.chunks.set(chunk, descs);
    }
    return descs[index % DESC_CHUNK];
  }

  async close(): Promise<void> {
    this.src.close?.();
  }
}
