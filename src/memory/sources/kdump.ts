/**
 * files: kdump-compressed images (makedumpfile's diskdump format; QEMU `dump-guest-memory` with
 * `format: kdump-zlib | kdump-lzo | kdump-snappy`). Pages are decoded on read; VMCOREINFO and the per-vCPU
 * QEMU notes come from the sub-header.
 */
import { FileSource, sniffFile } from '../formats/byte-source.js';
import { isFlattenedKdump, isKdump } from '../formats/kdump-magic.js';
import type { SourceFactory, SourceTarget } from '../source-factory.js';
import type { PhysicalMemory } from '../types.js';
import { KDUMP, described } from './catalog.js';

export const factory: SourceFactory = {
  ...described(KDUMP),
  async probe(target: SourceTarget) {
    if (!target.file) return { ok: false, rank: 0, reason: 'no file given' };
    const head = sniffFile(target.file);
    if (!head) return { ok: false, rank: 0, reason: `cannot read ${target.file}` };
    if (isFlattenedKdump(head)) return { ok: true, rank: 5, reason: 'kdump-compressed image, flattened (makedumpfile -F, QEMU)' };
    return isKdump(head) ? { ok: true, rank: 5, reason: 'kdump-compressed image' } : { ok: false, rank: 0, reason: 'no KDUMP signature' };
  },
  async open(target: SourceTarget): Promise<PhysicalMemory> {
    // The reader and its codecs load only for a kdump image (catalog.ts).
    const { FlatImageSource, KdumpMemory, parseKdump } = await import('../formats/kdump.js');
    const file = FileSource.open(target.file ?? '', 'kdump');
    try {
      const head = sniffFile(target.file!) ?? new Uint8Array(0);
      const image = isFlattenedKdump(head) ? new FlatImageSource(file) : file;
      return new KdumpMemory(target.file!, image, parseKdump(image));
    } catch (err) {
      file.close();
      throw err;
    }
  },
};
