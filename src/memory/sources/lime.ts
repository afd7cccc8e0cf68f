/** files: LiME images (a list of physical ranges, each with its own header). */
import { FileSource, sniffFile } from '../formats/byte-source.js';
import { fileTechnique, ImageMemory } from '../formats/image-memory.js';
import { isLime, parseLime } from '../formats/lime.js';
import type { SourceFactory, SourceTarget } from '../source-factory.js';
import type { PhysicalMemory } from '../types.js';
import { LIME, described } from './catalog.js';

export const factory: SourceFactory = {
  ...described(LIME),
  async probe(target: SourceTarget) {
    if (!target.file) return { ok: false, rank: 0, reason: 'no file given' };
    const head = sniffFile(target.file);
    if (!head) return { ok: false, rank: 0, reason: `cannot read ${target.file}` };
    return isLime(head) ? { ok: true, rank: 5, reason: 'LiME image' } : { ok: false, rank: 0, reason: 'no LiME magic' };
  },
  async open(target: SourceTarget): Promise<PhysicalMemory> {
    const file = FileSource.open(target.file ?? '', 'lime');
    try {
      return new ImageMemory(fileTechnique('lime'), target.file!, file, parseLime(file).segments);
    } catch (err) {
      file.close();
      throw err;
    }
  },
};
