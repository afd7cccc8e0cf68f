/**
 * files: ELF core dumps (QEMU `dump-guest-memory`, paging on or off). The
 * physical map comes from the PT_LOADs' p_paddr; the notes give VMCOREINFO
 * and per-vCPU control registers (QEMU's CPU-state note).
 */
import { FormatError } from '../../core/errors.js';
import { FileSource, sniffFile } from '../formats/byte-source.js';
import { isElf, parseElfCore } from '../formats/elf-core.js';
import { fileTechnique, ImageMemory } from '../formats/image-memory.js';
import type { SourceFactory, SourceTarget } from '../source-factory.js';
import type { PhysicalMemory } from '../types.js';

export const factory: SourceFactory = {
  name: 'elf-core',
  class: 'file',
  summary: 'ELF core dump (QEMU dump-guest-memory paging:false/true, kdump ELF)',
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
      return new ImageMemory(fileTechnique(name), target.file!, file, core.segments, {
        ...(core.vmcoreinfo !== undefined ? { vmcoreinfo: core.vmcoreinfo } : {}),
        cpus: core.cpus,
      });
    } catch (err) {
      file.close();
      throw err;
    }
  },
};
