/**
 * A guest-physical → file-offset map: what every image format boils down to
 * (ELF PT_LOADs, LiME ranges, migration-stream pages). Built once, sorted and
 * de-duplicated; reads binary-search it and `pread` straight into the
 * caller's buffer.
 */
import { readDestination } from '../../qemu/layout.js';
import type { PhysRange, ReadFailure, ReadOp } from '../types.js';
import type { ByteSource } from './byte-source.js';
import { gpa } from '../../core/address.js';

/** One run of guest-physical memory. `fill` ≥ 0 means "every byte is `fill`" (no file data). */
export interface Segment {
  start: number;
  end: number;
  fileOffset: number;
  fill?: number;
  /** Where it came from ('PT_LOAD #3', 'LiME range 0', block name). */
  name?: string;
}

/**
 * Sorts segments by start, drops the parts of later segments that overlap an
 * earlier one (first writer wins: ELF paging dumps map the same physical page
 * many times), and joins neighbours whose bytes continue in the file.
 */
export function normalizeSegments(input: readonly Segment[]): Segment[] {
  const sorted = input.filter((s) => s.end > s.start).sort((a, b) => a.start - b.start || a.end - b.end);
  const out: Segment[] = [];
  for (const s of sorted) {
    const last = out[out.length - 1];
    let seg = s;
    if (last && seg.start < last.end) {
      if (seg.end <= last.end) continue; // fully covered
      const cut = last.end - seg.start;
      seg = { ...seg, start: last.end, fileOffset: seg.fill === undefined ? seg.fileOffset + cut : seg.fileOffset };
    }
    if (last && seg.start === last.end && continues(last, seg)) {
      last.end = seg.end;
      continue;
    }
    out.push({ ...seg });
  }
  return out;
}

function continues(a: Segment, b: Segment): boolean {
  if (a.fill !== undefined || b.fill !== undefined) return a.fill === b.fill;
  return a.fileOffset + (a.end - a.start) === b.fileOffset;
}

/** Merges segments into the contiguous backed ranges a PhysicalMemory reports. */
export function rangesOf(segments: readonly Segment[]): PhysRange[] {
  const out: { start: number; end: number; name?: string }[] = [];
  for (const s of segments) {
    const last = out[out.length - 1];
    if (last && last.end === s.start) last.end = s.end;
    else out.push(s.name === undefined ? { start: s.start, end: s.end } : { start: s.start, end: s.end, name: s.name });
  }
  // Segment bounds are guest-physical addresses.
  return out as PhysRange[];
}

export class SegmentMap {
  private readonly starts: Float64Array;
  private readonly ends: Float64Array;
  private readonly offsets: Float64Array;
  /** -1 for file-backed segments, else the fill byte. */
  private readonly fills: Int16Array;
  readonly ranges: readonly PhysRange[];
  readonly size: number;

  constructor(
    private readonly src: ByteSource,
    segments: readonly Segment[],
  ) {
    const segs = normalizeSegments(segments);
    const n = segs.length;
    this.starts = new Float64Array(n);
    this.ends = new Float64Array(n);
    this.offsets = new Float64Array(n);
    this.fills = new Int16Array(n);
    segs.forEach((s, i) => {
      this.starts[i] = s.start;
      this.ends[i] = s.end;
      this.offsets[i] = s.fileOffset;
      this.fills[i] = s.fill ?? -1;
    });
    this.ranges = rangesOf(segs);
    this.size = n ? segs[n - 1]!.end : 0;
  }

  get segmentCount(): number {
    return this.starts.length;
  }

  /** Index of the segment holding `addr`, or of the first one after it (may be `length`). */
  private locate(addr: number): number {
    let lo = 0;
    let hi = this.starts.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.ends[mid]! <= addr) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Reads one op into `dst` (zero-filling holes); pushes the holes to `failures`. */
  readInto(addr: number, dst: Uint8Array, failures: ReadFailure[]): void {
    const len = dst.length;
    const end = addr + len;
    let i = this.locate(addr);
    let cur = addr;
    const n = this.starts.length;
    while (cur < end) {
      if (i >= n || this.starts[i]! >= end) {
        dst.fill(0, cur - addr);
        failures.push({ addr: gpa(cur), len: end - cur, reason: 'not backed by this image' });
        return;
      }
      const s = this.starts[i]!;
      if (s > cur) {
        dst.fill(0, cur - addr, s - addr);
        failures.push({ addr: gpa(cur), len: s - cur, reason: 'not backed by this image' });
        cur = s;
      }
      const stop = Math.min(end, this.ends[i]!);
      const part = dst.subarray(cur - addr, stop - addr);
      const fill = this.fills[i]!;
      if (fill >= 0) part.fill(fill);
      else {
        const got = this.src.readAt(part, this.offsets[i]! + (cur - s));
        if (got < part.length) {
          part.fill(0, got);
          failures.push({ addr: gpa(cur + got), len: part.length - got, reason: `image file ${this.src.name} ends early (truncated?)` });
        }
      }
      cur = stop;
      i++;
    }
  }

  readv(ops: ReadOp[]): ReadFailure[] {
    const failures: ReadFailure[] = [];
    for (const op of ops) {
      // The one check every source makes of an op (address, length bounds, destination size).
      const dst = readDestination(op, failures);
      if (!dst) continue;
      this.readInto(op.addr, dst.length === op.len ? dst : dst.subarray(0, op.len), failures);
    }
    return failures;
  }
}
