/**
 * files: kdump-compressed images (makedumpfile's diskdump format; QEMU `dump-guest-memory` with
 * `format: kdump-zlib | kdump-lzo | kdump-snappy`). Pages are decoded on read; VMCOREINFO and the per-vCPU
 * QEMU notes come from the sub-header.
 */
import { FileSource, sniffFile } from '../formats/byte-source.js';
import { FlatImageSource, isFlattenedKdump, isKdump, KdumpMemory, parseKdump } from '../formats/kdump.js';
import type { SourceFactory, SourceTarget } from '../source-factory.js';
import type { PhysicalMemory } from '../types.js';

export const factory: SourceFactory = {
  name: 'kdump',
  class: 'file',
  summary: 'kdump-compressed image (makedumpfile, QEMU dump-guest-memory kdump-zlib/-snappy; LZO reported as unsupported)',
  async probe(target: SourceTarget) {
    if (!target.file) return { ok: false, rank: 0, reason: 'no file given' };
    const head = sniffFile(target.file);
    if (!head) return { ok: false, rank: 0, reason: `cannot read ${target.file}` };
    if (isFlattenedKdump(head)) return { ok: true, rank: 5, reason: 'kdump-compressed image, flattened (makedumpfile -F, QEMU)' };
    return isKdump(head) ? { ok: true, rank: 5, reason: 'kdump-compressed image' } : { ok: false, rank: 0, reason: 'no KDUMP signature' };
  },
  async open(target: SourceTarget): Promise<PhysicalMemory> {
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
