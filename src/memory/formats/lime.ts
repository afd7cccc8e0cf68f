/**
 * LiME ("Linux Memory Extractor") images: a sequence of ranges, each a 32-byte
 * header followed by the range's bytes. Header (little-endian): u32 magic
 * 0x4C694D45 (bytes "EMiL"), u32 version (1), u64 start, u64 end (inclusive),
 * 8 reserved bytes.
 */
import { FormatError } from '../../core/errors.js';
import { type ByteSource, bytesAt, view } from './byte-source.js';
import type { Segment } from './segment-map.js';

export const LIME_MAGIC = 0x4c694d45;
const HEADER = 32;
/** Real images have a handful of ranges (one per System RAM entry); this bounds hostile files. */
const MAX_RANGES = 1 << 16;

export function isLime(head: Uint8Array): boolean {
  return head.length >= 4 && view(head).getUint32(0, true) === LIME_MAGIC;
}

export interface LimeImage {
  readonly segments: readonly Segment[];
}

export function parseLime(src: ByteSource): LimeImage {
  const segments: Segment[] = [];
  let off = 0;
  while (off < src.size) {
    if (segments.length >= MAX_RANGES) throw new FormatError(src.name, `more than ${MAX_RANGES} LiME ranges`, { offset: off });
    const h = view(bytesAt(src, off, HEADER, `LiME header #${segments.length}`));
    const magic = h.getUint32(0, true);
    if (magic !== LIME_MAGIC) {
      throw new FormatError(src.name, `bad LiME magic 0x${magic.toString(16)} in header #${segments.length} (expected 0x4c694d45)`, {
        offset: off,
      });
    }
    const version = h.getUint32(4, true);
    if (version !== 1) throw new FormatError(src.name, `unsupported LiME version ${version}`, { offset: off + 4 });
    const start = h.getBigUint64(8, true);
    const endIncl = h.getBigUint64(16, true);
    if (endIncl < start) throw new FormatError(src.name, `LiME range end 0x${endIncl.toString(16)} < start 0x${start.toString(16)}`, { offset: off + 8 });
    if (endIncl >= 1n << 52n) throw new FormatError(src.name, `LiME range end 0x${endIncl.toString(16)} beyond 52-bit physical space`, { offset: off + 16 });
    const len = Number(endIncl - start) + 1;
    const dataAt = off + HEADER;
    if (dataAt + len > src.size) {
      throw new FormatError(src.name, `LiME range #${segments.length} data (${len} bytes) extends beyond the end of the file; truncated?`, {
        offset: dataAt,
      });
    }
    segments.push({ start: Number(start), end: Number(start) + len, fileOffset: dataAt, name: `LiME range ${segments.length}` });
    off = dataAt + len;
  }
  if (segments.length === 0) throw new FormatError(src.name, 'empty LiME image', { offset: 0 });
  return { segments };
}
