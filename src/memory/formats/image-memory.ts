/**
 * A PhysicalMemory over a memory image on disk: a SegmentMap (GPA → file
 * offset) read with positioned reads. Shared by the raw, ELF and LiME
 * sources; the file never changes, so the generation stays 0.
 */
import type { PhysicalMemory, PhysRange, ReadFailure, ReadOp, SourceHints, TechniqueInfo } from '../types.js';
import type { FileSource } from './byte-source.js';
import { type Segment, SegmentMap } from './segment-map.js';

/**
 * A memory image costs one pread per read, whatever its size up to a few pages (README "Cold start": a
 * pagecache walk spent a quarter of its time in 16-byte preads of list nodes): inside a pass the arch layer
 * reads it in blocks of this size (PhysicalMemory.passBlockBytes).
 */
export const IMAGE_PASS_BLOCK = 16384;

export class ImageMemory implements PhysicalMemory {
  readonly generation = 0;
  readonly passBlockBytes = IMAGE_PASS_BLOCK;
  readonly size: number;
  private readonly map: SegmentMap;

  constructor(
    readonly technique: TechniqueInfo,
    readonly target: string,
    private readonly file: FileSource,
    segments: readonly Segment[],
    private readonly extra: SourceHints = {},
    readonly warnings: readonly string[] = [],
  ) {
    this.map = new SegmentMap(file, segments);
    this.size = this.map.size;
  }

  ranges(): readonly PhysRange[] {
    return this.map.ranges;
  }

  readv(ops: ReadOp[]): ReadFailure[] {
    return this.map.readv(ops);
  }

  async hints(): Promise<SourceHints> {
    return this.extra;
  }

  async close(): Promise<void> {
    this.file.close();
  }
}

export function fileTechnique(name: string): TechniqueInfo {
  return { class: 'file', name, live: false, haltsGuest: false, zeroCopy: false };
}
