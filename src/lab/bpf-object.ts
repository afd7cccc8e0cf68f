/**
 * A minimal eBPF object file (ELF64 relocatable, EM_BPF) for the lab's eBPF
 * scenario: one socket-filter program and a GPL license section, the shape
 * libbpf (and so `bpftool prog load`) expects, written here so the lab needs
 * no BPF compiler. The program returns a constant; its instructions vary
 * with `marker`, so each object gets its own kernel tag.
 */

/** BPF instructions as 8-byte words: opcode, dst/src registers, offset, immediate. */
function insn(code: number, dst: number, src: number, off: number, imm: number): Buffer {
  const b = Buffer.alloc(8);
  b[0] = code;
  b[1] = (src << 4) | dst;
  b.writeInt16LE(off, 2);
  b.writeInt32LE(imm, 4);
  return b;
}

const BPF_MOV64_IMM = 0xb7;
const BPF_EXIT = 0x95;
const EM_BPF = 247;

export interface BpfObjectOptions {
  /** Program (function symbol) name; the kernel keeps its first 15 bytes. */
  name?: string;
  /** libbpf section name: it gives the program type ('socket' is a socket filter). */
  section?: string;
  /** A constant loaded before the return, so different markers give different tags. */
  marker?: number;
}

/** The program's instructions: `r0 = marker; r0 = 0; exit`. */
export function bpfProgramInsns(marker: number): Buffer {
  return Buffer.concat([insn(BPF_MOV64_IMM, 0, 0, 0, marker | 0), insn(BPF_MOV64_IMM, 0, 0, 0, 0), insn(BPF_EXIT, 0, 0, 0, 0)]);
}

/** The bytes of the object file. */
export function bpfObject(opts: BpfObjectOptions = {}): Buffer {
  const name = opts.name ?? 'vmi_prog';
  const section = opts.section ?? 'socket';
  const text = bpfProgramInsns(opts.marker ?? 0x766d69);
  const license = Buffer.from('GPL\0');
  // String tables.
  const shstr = new StringTable();
  const str = new StringTable();
  const nSec = shstr.add(section);
  const nLic = shstr.add('license');
  const nSym = shstr.add('.symtab');
  const nStr = shstr.add('.strtab');
  const nShs = shstr.add('.shstrtab');
  const sProg = str.add(name);
  const sLic = str.add('_license');
  // Symbols: null, then the global program function and the license object.
  const sym = (nameOff: number, info: number, shndx: number, size: number) => {
    const b = Buffer.alloc(24);
    b.writeUInt32LE(nameOff, 0);
    b[4] = info;
    b[5] = 0; // default visibility
    b.writeUInt16LE(shndx, 6);
    b.writeBigUInt64LE(0n, 8);
    b.writeBigUInt64LE(BigInt(size), 16);
    return b;
  };
  const STB_GLOBAL = 1;
  const STT_OBJECT = 1;
  const STT_FUNC = 2;
  const symtab = Buffer.concat([Buffer.alloc(24), sym(sProg, (STB_GLOBAL << 4) | STT_FUNC, 1, text.length), sym(sLic, (STB_GLOBAL << 4) | STT_OBJECT, 2, license.length)]);
  const strtab = str.bytes();
  const shstrtab = shstr.bytes();
  // Layout: ELF header, then each section's contents 8-aligned, then the section headers.
  const parts: Buffer[] = [Buffer.alloc(64)];
  let at = 64;
  const place = (b: Buffer): number => {
    const pad = (8 - (at % 8)) % 8;
    if (pad) parts.push(Buffer.alloc(pad));
    at += pad;
    const off = at;
    parts.push(b);
    at += b.length;
    return off;
  };
  const oText = place(text);
  const oLic = place(license);
  const oSym = place(symtab);
  const oStr = place(strtab);
  const oShs = place(shstrtab);
  const pad = (8 - (at % 8)) % 8;
  if (pad) parts.push(Buffer.alloc(pad));
  at += pad;
  const shoff = at;
  const SHT_PROGBITS = 1;
  const SHT_SYMTAB = 2;
  const SHT_STRTAB = 3;
  const SHF_WRITE = 1;
  const SHF_ALLOC = 2;
  const SHF_EXECINSTR = 4;
  const sh = (nm: number, type: number, flags: number, off: number, size: number, link: number, info: number, align: number, entsize: number) => {
    const b = Buffer.alloc(64);
    b.writeUInt32LE(nm, 0);
    b.writeUInt32LE(type, 4);
    b.writeBigUInt64LE(BigInt(flags), 8);
    b.writeBigUInt64LE(0n, 16);
    b.writeBigUInt64LE(BigInt(off), 24);
    b.writeBigUInt64LE(BigInt(size), 32);
    b.writeUInt32LE(link, 40);
    b.writeUInt32LE(info, 44);
    b.writeBigUInt64LE(BigInt(align), 48);
    b.writeBigUInt64LE(BigInt(entsize), 56);
    return b;
  };
  parts.push(
    Buffer.alloc(64),
    sh(nSec, SHT_PROGBITS, SHF_ALLOC | SHF_EXECINSTR, oText, text.length, 0, 0, 8, 0),
    sh(nLic, SHT_PROGBITS, SHF_ALLOC | SHF_WRITE, oLic, license.length, 0, 0, 1, 0),
    sh(nSym, SHT_SYMTAB, 0, oSym, symtab.length, 4, 1, 8, 24), // info: index of the first global symbol
    sh(nStr, SHT_STRTAB, 0, oStr, strtab.length, 0, 0, 1, 0),
    sh(nShs, SHT_STRTAB, 0, oShs, shstrtab.length, 0, 0, 1, 0),
  );
  const out = Buffer.concat(parts);
  // ELF header: 64-bit, little-endian, ET_REL for EM_BPF, six section headers, .shstrtab last.
  out.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1], 0);
  out.writeUInt16LE(1, 16); // ET_REL
  out.writeUInt16LE(EM_BPF, 18);
  out.writeUInt32LE(1, 20);
  out.writeBigUInt64LE(BigInt(shoff), 40);
  out.writeUInt16LE(64, 52); // e_ehsize
  out.writeUInt16LE(64, 58); // e_shentsize
  out.writeUInt16LE(6, 60); // e_shnum
  out.writeUInt16LE(5, 62); // e_shstrndx
  return out;
}

class StringTable {
  private readonly parts: Buffer[] = [Buffer.from([0])];
  private size = 1;
  add(s: string): number {
    const off = this.size;
    const b = Buffer.from(`${s}\0`);
    this.parts.push(b);
    this.size += b.length;
    return off;
  }
  bytes(): Buffer {
    return Buffer.concat(this.parts);
  }
}
