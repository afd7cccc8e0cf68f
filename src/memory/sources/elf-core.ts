/**
 * files: ELF core dumps (QEMU `dump-guest-memory`, paging on or off). The
 * physical map comes from the PT_LOADs' p_paddr; the notes give VMCOREINFO
 * and per-vCPU control registers (QEMU's CPU-state note).
 */
import { FormatError } from '../../core/errors.js';
import { FileSource, sniffFile } from '../formats/byte-source.js';
import { isElf, parseElfCore } from '../formats/elf-core.js';
import { fileTechnique, ImageMemory } from '../formats/image-memory.js';
import type { PhysRange } from '../types.js';
import type { SourceFactory, SourceTarget } from '../source-factory.js';
import type { PhysicalMemory } from '../types.js';
import { ELF_CORE, described } from './catalog.js';

/** One line naming what a truncated dump lacks (reads there fail; the rest is analysed). */
export function truncationWarnings(file: string, missing: readonly PhysRange[]): string[] {
  if (!missing.length) return [];
  const bytes = missing.reduce((n, m) => n + (m.end - m.start), 0);
  const shown = missing.slice(0, 4).map((m) => `0x${m.start.toString(16)}-0x${(m.end - 1).toString(16)} (${m.name})`);
  const more = missing.length > shown.length ? ` and ${missing.length - shown.length} more` : '';
  return [`${file} is cut short: ${bytes} bytes of guest-physical memory are missing, ${shown.join(', ')}${more}; reads there fail`];
}

export const factory: SourceFactory = {
  ...described(ELF_CORE),
  async probe(target: SourceTarget) {
    if (!target.file) return { ok: false, rank: 0, reason: 'no file given' };
    const head = sniffFile(target.file);
    if (!head) return { ok: false, rank: 0, reason: `cannot read ${target.file}` };
    if (!isElf(head)) return { ok: false, rank: 0, reason: 'no ELF magic' };
    if (head.length >= 18 && head[16] !== 4) return { ok: false, rank: 0, reason: 'ELF file but not a core dump (e_type != ET_CORE)' };
    return { ok: true, rank: 5, reason: 'ELF core dump' };
  },
  async open(target: SourceTarget): Promise<PhysicalMemory> {
    const file = FileSource.open(target.file ?? '', 'elf-core');
    try {
      const core = parseElfCore(file);
      if (core.segments.length === 0) throw new FormatError(file.name, 'ELF core has no PT_LOAD with file data: not a memory image');
      const name = core.paging ? 'elf-core (paging)' : 'elf-core';
      const hints = { ...(core.vmcoreinfo !== undefined ? { vmcoreinfo: core.vmcoreinfo } : {}), cpus: core.cpus };
      return new ImageMemory(fileTechnique(name), target.file!, file, core.segments, hints, truncationWarnings(file.name, core.missing));
    } catch (err) {
      file.close();
      throw err;
    }
  },
};
