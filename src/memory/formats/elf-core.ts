/**
 * ELF64 core files as written by QEMU's `dump-guest-memory` (and kdump-style
 * tools): program headers, PN_XNUM, notes. Layout facts from the ELF gABI:
 * Elf64_Ehdr 64 bytes, Elf64_Phdr 56 bytes, Elf64_Shdr 64 bytes; when e_phnum is
 * 0xFFFF (PN_XNUM) the real count sits in section header 0's sh_info.
 *
 * `paging:false` dumps carry one PT_LOAD per RAM block with p_paddr = p_vaddr
 * = GPA. `paging:true` dumps carry one PT_LOAD per guest-virtual mapping
 * (~65k), p_vaddr virtual and p_paddr physical; many share a physical range
 * and a file offset. Either way the physical map is built from p_paddr and
 * the file-backed part (p_filesz): in paging dumps a PT_LOAD with p_filesz 0
 * is a mapping of something that is not RAM (MMIO), not zeroes.
 */
import { FormatError } from '../../core/errors.js';
import type { CpuState, PhysRange } from '../types.js';
import { type ByteSource, bytesAt, view } from './byte-source.js';
import type { Segment } from './segment-map.js';
import { gpa } from '../../core/address.js';

const PT_LOAD = 1;
const PT_NOTE = 4;
const PN_XNUM = 0xffff;
const ET_CORE = 4;
const EM_X86_64 = 62;
/** More than any real dump (QEMU paging dumps have ~65k); stops a hostile header from allocating gigabytes. */
const MAX_PHNUM = 1 << 22;
const MAX_NOTES_BYTES = 64 << 20;
const MAX_NOTES = 1 << 16;

export interface ElfLoad {
  readonly index: number;
  readonly offset: number;
  /** Guest-virtual address (bigint: kernel addresses exceed 2^53). */
  readonly vaddr: bigint;
  readonly paddr: number;
  readonly filesz: number;
  readonly memsz: number;
}

export interface ElfNote {
  readonly name: string;
  readonly type: number;
  /** Where the descriptor starts in the file. */
  readonly offset: number;
  readonly desc: Uint8Array;
}

/** Registers from one vCPU's NT_PRSTATUS note (x86-64 `struct elf_prstatus`). */
export interface PrStatus {
  readonly pid: number;
  readonly rip: bigint;
  readonly rsp: bigint;
}

export interface ElfCore {
  readonly machine: number;
  /** True when the dump was taken with paging (PT_LOADs carry guest-virtual addresses). */
  readonly paging: boolean;
  readonly programHeaderCount: number;
  readonly loads: readonly ElfLoad[];
  readonly notes: readonly ElfNote[];
  /** Physical segments from the PT_LOADs (not yet de-duplicated: see normalizeSegments). */
  readonly segments: readonly Segment[];
  readonly vmcoreinfo?: string;
  readonly cpus: readonly CpuState[];
  readonly prstatus: readonly PrStatus[];
  /** Things that did not hold together but did not stop the parse. */
  readonly anomalies: readonly string[];
  /** Guest-physical ranges whose data lies beyond the end of the file (a truncated dump); reads there fail. */
  readonly missing: readonly PhysRange[];
}

export function isElf(head: Uint8Array): boolean {
  return head.length >= 4 && head[0] === 0x7f && head[1] === 0x45 && head[2] === 0x4c && head[3] === 0x46;
}

/** Parses an ELF64 little-endian core file. Throws FormatError for anything truncated or absurd. */
export function parseElfCore(src: ByteSource): ElfCore {
  const eh = bytesAt(src, 0, 64, 'ELF header');
  if (!isElf(eh)) throw new FormatError(src.name, 'not an ELF file (bad magic)', { offset: 0 });
  if (eh[4] !== 2) throw new FormatError(src.name, `ELF class ${eh[4]} is not ELF64`, { offset: 4 });
  if (eh[5] !== 1) throw new FormatError(src.name, 'ELF file is not little-endian', { offset: 5 });
  const h = view(eh);
  const type = h.getUint16(16, true);
  if (type !== ET_CORE) throw new FormatError(src.name, `ELF type ${type} is not a core file (ET_CORE)`, { offset: 16 });
  const machine = h.getUint16(18, true);
  const phoff = num(h.getBigUint64(32, true), src, 32, 'e_phoff');
  const shoff = num(h.getBigUint64(40, true), src, 40, 'e_shoff');
  const phentsize = h.getUint16(54, true);
  let phnum = h.getUint16(56, true);
  const shentsize = h.getUint16(58, true);
  if (phentsize !== 56) throw new FormatError(src.name, `e_phentsize ${phentsize} is not 56`, { offset: 54 });
  if (phnum === PN_XNUM) {
    if (shoff === 0) throw new FormatError(src.name, 'e_phnum is PN_XNUM but there is no section header 0', { offset: 56 });
    if (shentsize !== 64) throw new FormatError(src.name, `e_shentsize ${shentsize} is not 64`, { offset: 58 });
    phnum = view(bytesAt(src, shoff, 64, 'section header 0 (PN_XNUM)')).getUint32(44, true);
  }
  if (phnum > MAX_PHNUM) throw new FormatError(src.name, `absurd program header count ${phnum}`, { offset: 56 });
  const ph = bytesAt(src, phoff, phnum * 56, `${phnum} program headers`);
  const pv = view(ph);

  const loads: ElfLoad[] = [];
  const missing: PhysRange[] = [];
  const noteHeaders: { offset: number; size: number; index: number }[] = [];
  let paging = false;
  for (let i = 0; i < phnum; i++) {
    const b = i * 56;
    const ptype = pv.getUint32(b, true);
    if (ptype !== PT_LOAD && ptype !== PT_NOTE) continue;
    const at = phoff + b;
    const offset = num(pv.getBigUint64(b + 8, true), src, at + 8, `p_offset of program header #${i}`);
    const filesz = num(pv.getBigUint64(b + 32, true), src, at + 32, `p_filesz of program header #${i}`);
    const cut = offset + filesz > src.size;
    if (cut && ptype === PT_NOTE) {
      throw new FormatError(
        src.name,
        `program header #${i} data [0x${offset.toString(16)}, +0x${filesz.toString(16)}) extends beyond the end of the file (${src.size} bytes); truncated?`,
        { offset: at },
      );
    }
    if (ptype === PT_NOTE) {
      noteHeaders.push({ offset, size: filesz, index: i });
      continue;
    }
    const vaddr = pv.getBigUint64(b + 16, true);
    const paddr = num(pv.getBigUint64(b + 24, true), src, at + 24, `p_paddr of PT_LOAD #${i}`);
    const memsz = num(pv.getBigUint64(b + 40, true), src, at + 40, `p_memsz of PT_LOAD #${i}`);
    if (filesz > memsz) throw new FormatError(src.name, `PT_LOAD #${i} has p_filesz > p_memsz`, { offset: at });
    if (vaddr !== BigInt(paddr)) paging = true;
    loads.push({ index: i, offset, vaddr, paddr, filesz, memsz });
    // A dump cut short: what is in the file is still evidence; the rest is reported and fails when read.
    if (cut) {
      const kept = Math.max(0, src.size - offset);
      missing.push({ start: gpa(paddr + kept), end: gpa(paddr + filesz), name: `PT_LOAD #${i}` });
    }
  }

  const anomalies: string[] = [];
  const notes: ElfNote[] = [];
  for (const nh of noteHeaders) parseNotes(src, nh.offset, nh.size, notes, anomalies);

  const segments: Segment[] = loads
    .filter((l) => l.filesz > 0)
    .map((l) => ({ start: l.paddr, end: l.paddr + l.filesz, fileOffset: l.offset, name: `PT_LOAD #${l.index}` }));

  const vmcoreNote = notes.find((n) => n.name === 'VMCOREINFO');
  const vmcoreinfo = vmcoreNote ? Buffer.from(vmcoreNote.desc).toString('latin1').replace(/\0+$/, '') : undefined;
  const cpus: CpuState[] = [];
  const prstatus: PrStatus[] = [];
  for (const n of notes) {
    if (n.name === 'QEMU' && machine === EM_X86_64) {
      const cpu = parseQemuCpuState(n.desc, cpus.length);
      if (cpu) cpus.push(cpu);
      else anomalies.push(`QEMU CPU-state note at file offset 0x${n.offset.toString(16)} has an unknown version or size`);
    } else if (n.name === 'CORE' && n.type === 1 && machine === EM_X86_64) {
      const pr = parsePrStatus(n.desc);
      if (pr) prstatus.push(pr);
    }
  }
  const core: ElfCore = {
    machine,
    paging,
    programHeaderCount: phnum,
    loads,
    notes,
    segments,
    cpus,
    prstatus,
    anomalies,
    missing,
    ...(vmcoreinfo !== undefined ? { vmcoreinfo } : {}),
  };
  return core;
}

function num(v: bigint, src: ByteSource, offset: number, what: string): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new FormatError(src.name, `absurd ${what} 0x${v.toString(16)}`, { offset });
  return Number(v);
}

const align4 = (n: number) => (n + 3) & ~3;

/**
 * Walks the ELF notes in [offset, offset + size) of `src`: namesz, descsz, type, name, desc (both 4-byte
 * padded). ELF cores keep them in PT_NOTE segments; kdump-compressed images carry the same notes.
 */
export function parseNotes(src: ByteSource, offset: number, size: number, out: ElfNote[], anomalies: string[]): void {
  if (size > MAX_NOTES_BYTES) throw new FormatError(src.name, `PT_NOTE of ${size} bytes is absurd`, { offset });
  const bytes = bytesAt(src, offset, size, 'PT_NOTE segment');
  const v = view(bytes);
  let p = 0;
  while (p + 12 <= size && out.length < MAX_NOTES) {
    const namesz = v.getUint32(p, true);
    const descsz = v.getUint32(p + 4, true);
    const type = v.getUint32(p + 8, true);
    const nameAt = p + 12;
    const descAt = nameAt + align4(namesz);
    if (namesz > size || descsz > size || descAt + descsz > size) {
      anomalies.push(`note at file offset 0x${(offset + p).toString(16)} overruns its PT_NOTE segment`);
      return;
    }
    const name = Buffer.from(bytes.subarray(nameAt, nameAt + namesz)).toString('latin1').replace(/\0+$/, '');
    out.push({ name, type, offset: offset + descAt, desc: bytes.subarray(descAt, descAt + descsz) });
    p = descAt + align4(descsz);
  }
}

/**
 * QEMU's x86-64 "QEMU" note (QEMUCPUState, version 1): u32 version, u32 size,
 * 16 GPRs + rip + rflags (u64), 10 segment caches (cs ds es fs gs ss ldt tr gdt
 * idt; each u32 selector, limit, flags, pad, u64 base = 24 bytes), cr[0..4]
 * (u64), kernel_gs_base (u64). So cr0 sits at 8 + 18*8 + 10*24 = 392.
 */
export function parseQemuCpuState(desc: Uint8Array, index: number): CpuState | undefined {
  if (desc.length < 432) return undefined;
  const v = view(desc);
  const version = v.getUint32(0, true);
  const size = v.getUint32(4, true);
  if (version !== 1 || size < 432 || size > desc.length) return undefined;
  const CR = 392;
  return { index, cr0: v.getBigUint64(CR, true), cr3: v.getBigUint64(CR + 24, true), cr4: v.getBigUint64(CR + 32, true) };
}

/** x86-64 `struct elf_prstatus` (336 bytes): pr_pid at 32, pr_reg (27 u64 in user_regs_struct order) at 112. */
export function parsePrStatus(desc: Uint8Array): PrStatus | undefined {
  if (desc.length < 112 + 27 * 8) return undefined;
  const v = view(desc);
  const reg = (i: number) => v.getBigUint64(112 + i * 8, true);
  return { pid: v.getUint32(32, true), rip: reg(16), rsp: reg(19) };
}
