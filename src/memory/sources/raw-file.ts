/**
 * files: a raw image of guest-physical memory (file offset = GPA), e.g. a
 * `pmemsave` of all RAM or a copy of QEMU's memory-backend-file. The whole
 * file is one range. Any file can be read this way, so the probe accepts
 * anything without a known header, with a low rank, and says so.
 */
import { statSync } from 'node:fs';
import { isElf } from '../formats/elf-core.js';
import { FileSource, sniffFile } from '../formats/byte-source.js';
import { fileTechnique, ImageMemory } from '../formats/image-memory.js';
import { isFlattenedKdump, isKdump } from '../formats/kdump-magic.js';
import { isLime } from '../formats/lime.js';
import { isMigrationStream } from '../formats/migration-stream.js';
import type { SourceFactory, SourceTarget } from '../source-factory.js';
import type { PhysicalMemory } from '../types.js';
import { RAW_FILE, described } from './catalog.js';

/** Smallest file accepted as a raw image. */
export const MIN_RAW_IMAGE = 1 << 20;

export const factory: SourceFactory = {
  ...described(RAW_FILE),
  async probe(target: SourceTarget) {
    if (!target.file) return { ok: false, rank: 0, reason: 'no file given' };
    const head = sniffFile(target.file);
    if (!head) return { ok: false, rank: 0, reason: `cannot read ${target.file}` };
    if (isElf(head)) return { ok: false, rank: 0, reason: 'file is an ELF file (use elf-core)' };
    if (isLime(head)) return { ok: false, rank: 0, reason: 'file is a LiME image (use lime)' };
    if (isKdump(head) || isFlattenedKdump(head)) return { ok: false, rank: 0, reason: 'file is a kdump-compressed image (use kdump)' };
    if (isMigrationStream(head)) return { ok: false, rank: 0, reason: 'file is a QEMU migration stream (use live-snapshot)' };
    // Raw RAM images are whole pages, and no Linux guest runs in less than 1 MiB.
    const size = statSync(target.file).size;
    if (size < MIN_RAW_IMAGE || size % 4096 !== 0)
      return { ok: false, rank: 0, reason: `not a memory image: ${size} bytes is not a whole number of 4 KiB pages of at least 1 MiB, and no ELF, LiME or migration header` };
    return { ok: true, rank: 1, reason: 'no known header: read as a raw image (file offset = guest-physical address)' };
  },
  async open(target: SourceTarget): Promise<PhysicalMemory> {
    const file = FileSource.open(target.file ?? '', 'raw-file');
    return new ImageMemory(fileTechnique('raw-file'), target.file!, file, [
      { start: 0, end: file.size, fileOffset: 0, name: 'raw image' },
    ]);
  },
};
