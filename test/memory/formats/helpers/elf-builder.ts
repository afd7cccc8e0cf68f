/** Builds small ELF64 core files in memory for the parser tests. */
export interface LoadSpec {
  vaddr: bigint;
  paddr: number;
  data?: Uint8Array;
  /** File offset to reuse (paging dumps share data between mappings). */
  shareWith?: number;
  filesz?: number;
  memsz?: number;
}

export function note(name: string, type: number, desc: Uint8Array): Uint8Array {
  const nameBytes = Buffer.from(name + '\0', 'latin1');
  const pad = (n: number) => (n + 3) & ~3;
  const out = new Uint8Array(12 + pad(nameBytes.length) + pad(desc.length));
  const dv = new DataView(out.buffer);
  dv.setUint32(0, nameBytes.length, true);
  dv.setUint32(4, desc.length, true);
  dv.setUint32(8, type, true);
  out.set(nameBytes, 12);
  out.set(desc, 12 + pad(nameBytes.length));
  return out;
}

/** A QEMU x86-64 CPU-state note descriptor with the given control registers. */
export function qemuCpuNote(cr0: bigint, cr3: bigint, cr4: bigint): Uint8Array {
  const d = new Uint8Array(440);
  const dv = new DataView(d.buffer);
  dv.setUint32(0, 1, true);
  dv.setUint32(4, 440, true);
  dv.setBigUint64(392, cr0, true);
  dv.setBigUint64(416, cr3, true);
  dv.setBigUint64(424, cr4, true);
  return d;
}

export function prstatusNote(pid: number, rip: bigint): Uint8Array {
  const d = new Uint8Array(336);
  const dv = new DataView(d.buffer);
  dv.setUint32(32, pid, true);
  dv.setBigUint64(112 + 16 * 8, rip, true);
  return d;
}

/** Lays out: ehdr, [shdr0], phdrs, notes, data. Uses PN_XNUM when more than 0xfffe headers. */
export function buildElfCore(loads: LoadSpec[], notes: Uint8Array[]): Uint8Array {
  const phnum = loads.length + (notes.length ? 1 : 0);
  const xnum = phnum >= 0xffff;
  const shoff = xnum ? 64 : 0;
  const phoff = 64 + (xnum ? 64 : 0);
  const notesAt = phoff + phnum * 56;
  const notesLen = notes.reduce((a, n) => a + n.length, 0);
  let dataAt = notesAt + notesLen;
  const offsets: number[] = [];
  for (const l of loads) {
    if (l.shareWith !== undefined) offsets.push(offsets[l.shareWith]!);
    else {
      offsets.push(dataAt);
      dataAt += l.data?.length ?? 0;
    }
  }
  const out = new Uint8Array(dataAt);
  const dv = new DataView(out.buffer);
  out.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
  dv.setUint16(16, 4, true); // ET_CORE
  dv.setUint16(18, 62, true); // EM_X86_64
  dv.setUint32(20, 1, true);
  dv.setBigUint64(32, BigInt(phoff), true);
  dv.setBigUint64(40, BigInt(shoff), true);
  dv.setUint16(52, 64, true);
  dv.setUint16(54, 56, true);
  dv.setUint16(56, xnum ? 0xffff : phnum, true);
  dv.setUint16(58, 64, true);
  dv.setUint16(60, xnum ? 1 : 0, true);
  if (xnum) dv.setUint32(shoff + 44, phnum, true);
  let p = phoff;
  if (notes.length) {
    dv.setUint32(p, 4, true);
    dv.setBigUint64(p + 8, BigInt(notesAt), true);
    dv.setBigUint64(p + 32, BigInt(notesLen), true);
    dv.setBigUint64(p + 40, BigInt(notesLen), true);
    p += 56;
    let q = notesAt;
    for (const n of notes) {
      out.set(n, q);
      q += n.length;
    }
  }
  loads.forEach((l, i) => {
    const len = l.filesz ?? l.data?.length ?? loads[l.shareWith!]?.data?.length ?? 0;
    dv.setUint32(p, 1, true);
    dv.setBigUint64(p + 8, BigInt(offsets[i]!), true);
    dv.setBigUint64(p + 16, l.vaddr, true);
    dv.setBigUint64(p + 24, BigInt(l.paddr), true);
    dv.setBigUint64(p + 32, BigInt(len), true);
    dv.setBigUint64(p + 40, BigInt(l.memsz ?? len), true);
    if (l.data && l.shareWith === undefined) out.set(l.data, offsets[i]!);
    p += 56;
  });
  return out;
}
