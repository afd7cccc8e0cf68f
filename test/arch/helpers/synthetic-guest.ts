/**
 * A synthetic Linux guest's physical memory, built in code: a KASLR-shifted
 * kernel image mapped by 4- or 5-level tables, init_uts_ns, linux_banner, a
 * direct map, and vmcoreinfo copies (ELF note + data page) with optional
 * decoys (format string, stale copy of another kernel, stale banner).
 */
import type { CpuState } from '../../../src/memory/types.js';
import { PageTableBuilder } from './page-tables.js';

const MiB = 1 << 20;
export const START_KERNEL_MAP = 0xffff_ffff_8000_0000n;

export interface VmcoreinfoFacts {
  release: string;
  kernelOffset: bigint;
  physBase: bigint;
  initTopPgt: bigint;
  initUtsNs: bigint;
  stext: bigint;
  l5: boolean;
  utsNameOffset?: number;
  kallsyms?: boolean;
  extraLines?: string[];
}

export function vmcoreinfoText(f: VmcoreinfoFacts): string {
  const h = (v: bigint) => v.toString(16);
  const lines = [
    `OSRELEASE=${f.release}`,
    'BUILD-ID=eb4fbcd037e7253717950bf2b93bd5566f47c56f',
    'PAGESIZE=4096',
    `SYMBOL(init_uts_ns)=${h(f.initUtsNs)}`,
    `OFFSET(uts_namespace.name)=${f.utsNameOffset ?? 0}`,
    `SYMBOL(swapper_pg_dir)=${h(f.initTopPgt)}`,
    `SYMBOL(_stext)=${h(f.stext)}`,
    'SYMBOL(mem_section)=ffff89ee4ffd7000',
    'LENGTH(mem_section)=4096',
    'SIZE(page)=64',
    'OFFSET(page.flags)=0',
    'OFFSET(pglist_data.node_zones)=0',
    'LENGTH(zone.free_area)=11',
    'NUMBER(PG_lru)=4',
    'NUMBER(PAGE_BUDDY_MAPCOUNT_VALUE)=-129',
    ...(f.kallsyms
      ? [
          `SYMBOL(kallsyms_names)=${h(f.stext + 0x11bdac0n)}`,
          `SYMBOL(kallsyms_num_syms)=${h(f.stext + 0x11bdab8n)}`,
          `SYMBOL(kallsyms_token_table)=${h(f.stext + 0x132ddd8n)}`,
          `SYMBOL(kallsyms_token_index)=${h(f.stext + 0x132e170n)}`,
          `SYMBOL(kallsyms_offsets)=${h(f.stext + 0x11619c8n)}`,
          `SYMBOL(kallsyms_relative_base)=${h(f.stext + 0x11bdab0n)}`,
        ]
      : []),
    `NUMBER(phys_base)=${f.physBase}`,
    `SYMBOL(init_top_pgt)=${h(f.initTopPgt)}`,
    `NUMBER(pgtable_l5_enabled)=${f.l5 ? 1 : 0}`,
    'SYMBOL(node_data)=ffffffffa2a393a0',
    'LENGTH(node_data)=1024',
    `KERNELOFFSET=${h(f.kernelOffset)}`,
    'NUMBER(KERNEL_IMAGE_SIZE)=1073741824',
    'NUMBER(sme_mask)=0',
    ...(f.extraLines ?? []),
  ];
  return lines.join('\n') + '\n';
}

/** Writes an ELF note "VMCOREINFO" at `pa` (page start); the text lands at pa + 0x18. */
export function writeNote(ram: Uint8Array, pa: number, text: string): number {
  const dv = new DataView(ram.buffer, ram.byteOffset);
  dv.setUint32(pa, 11, true);
  dv.setUint32(pa + 4, text.length, true);
  dv.setUint32(pa + 8, 0, true);
  ram.set(Buffer.from('VMCOREINFO\0\0', 'latin1'), pa + 12);
  ram.set(Buffer.from(text + '\0', 'latin1'), pa + 0x18);
  return pa + 0x18;
}

export interface SyntheticGuestOptions {
  levels?: 4 | 5;
  release?: string;
  ramMiB?: number;
  /** Offset of new_utsname inside init_uts_ns (0 from 5.11, 4 before: kref first). */
  utsNameOffset?: number;
  /** Add a complete vmcoreinfo of another kernel (stale), at a lower address, as an ELF note. */
  staleCopy?: boolean;
  /** Add stale banners of another kernel, outside the image. */
  staleBanner?: boolean;
  /** Leave vmcoreinfo out entirely. */
  noVmcoreinfo?: boolean;
  /** Cut the data-page copy short (no final newline, essentials missing). */
  truncatedDataCopy?: boolean;
}

export interface SyntheticGuest {
  ram: Uint8Array;
  tables: PageTableBuilder;
  levels: 4 | 5;
  release: string;
  version: string;
  banner: string;
  kernelOffset: bigint;
  physBase: bigint;
  textVa: bigint;
  textPa: number;
  dtb: number;
  bannerVa: bigint;
  bannerPa: number;
  utsVa: bigint;
  directMapBase: bigint;
  noteTextPa: number | undefined;
  dataPa: number | undefined;
  stalePa: number | undefined;
  vmcoreinfo: string;
  /** A process PGD sharing the kernel half (what a vCPU CR3 often holds). */
  processPgd: number;
  cpus(): CpuState[];
}

export function syntheticGuest(options: SyntheticGuestOptions = {}): SyntheticGuest {
  const levels = options.levels ?? 4;
  const release = options.release ?? '6.1.0-56-amd64';
  const version = '#1 SMP PREEMPT_DYNAMIC Debian 6.1.192-2 (2026-11-16)';
  const ram = new Uint8Array((options.ramMiB ?? 48) * MiB);
  const textPa = 16 * MiB;
  const kernelOffset = 0x2e40_0000n;
  const textVa = 0xffff_ffff_8100_0000n + kernelOffset;
  const physBase = BigInt(textPa) - 0x100_0000n - kernelOffset; // negative, as on the lab guests
  const dtb = textPa + 0x20_0000;
  const tables = new PageTableBuilder(ram, levels, 1 * MiB, dtb);
  // Kernel image: 8 MiB with 2 MiB pages (text RX, data NX).
  tables.mapRange(textVa, textPa, 4 * MiB, 2 * MiB, { writable: false });
  tables.mapRange(textVa + 0x40_0000n, textPa + 4 * MiB, 4 * MiB, 2 * MiB, { nx: true });
  // Direct map, KASLR-shifted by whole GiBs.
  const directMapBase = levels === 4 ? 0xffff_8880_0000_0000n + (5n << 30n) : 0xff11_0000_0000_0000n + (2n << 30n);
  tables.mapRange(directMapBase, 0, ram.length, 2 * MiB, { nx: true });

  const img = (va: bigint) => textPa + Number(va - textVa);
  const utsVa = textVa + 0x30_0000n;
  const uts = img(utsVa) + (options.utsNameOffset ?? 0);
  const put = (pa: number, s: string) => ram.set(Buffer.from(s, 'latin1'), pa);
  if (options.utsNameOffset) new DataView(ram.buffer).setUint32(img(utsVa), 3, true); // kref
  put(uts, 'Linux\0');
  put(uts + 65, '(none)\0');
  put(uts + 130, release + '\0');
  put(uts + 195, version + '\0');
  put(uts + 260, 'x86_64\0');
  put(uts + 325, '(none)\0');
  const banner = `Linux version ${release} (debian-kernel@lists.debian.org) (gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40) ${version}`;
  const bannerVa = textVa + 0x28_0000n;
  const bannerPa = img(bannerVa);
  // A look-alike in the image first (like the one Debian's 6.1 carries without the build number),
  // then the exact banner text inside a kernel-log record (no "\n\0" after it), before the real one.
  put(img(textVa + 0x27_0000n), banner.replace('#1 SMP', '# SMP') + '\n\0');
  put(img(textVa + 0x27_8000n), banner + '\0\0\0\0Command line: console=ttyS0\0');
  put(bannerPa, banner + '\n\0');
  // The format-string decoy: vmcoreinfo's own printf formats live in the image.
  put(img(textVa + 0x29_0000n), 'OSRELEASE=%s\n\0BUILD-ID=%20phN\n\0');

  const facts: VmcoreinfoFacts = {
    release,
    kernelOffset,
    physBase,
    initTopPgt: textVa + BigInt(dtb - textPa), // the kernel-image VA of the DTB
    initUtsNs: utsVa,
    stext: textVa,
    l5: levels === 5,
    utsNameOffset: options.utsNameOffset ?? 0,
    kallsyms: true,
  };
  const text = vmcoreinfoText(facts);
  let noteTextPa: number | undefined;
  let dataPa: number | undefined;
  let stalePa: number | undefined;
  if (!options.noVmcoreinfo) {
    noteTextPa = writeNote(ram, 8 * MiB, text);
    dataPa = 9 * MiB;
    const dataText = options.truncatedDataCopy ? text.slice(0, 60) : text;
    put(dataPa, dataText + (options.truncatedDataCopy ? '' : '\0'));
    if (options.truncatedDataCopy) ram[dataPa + dataText.length] = 0;
  }
  if (options.staleCopy) {
    const stale = vmcoreinfoText({
      ...facts,
      release: '5.10.0-32-amd64',
      kernelOffset: 0x1000_0000n,
      physBase: -0x1000_0000n, // its DTB lands on zeroed kernel data: the tables cannot confirm it
      initTopPgt: 0xffff_ffff_9140_a000n,
      extraLines: ['NUMBER(stale_marker)=1'],
    });
    stalePa = writeNote(ram, 6 * MiB, stale);
  }
  if (options.staleBanner) {
    put(3 * MiB + 0x123, 'Linux version 5.10.0-32-amd64 (debian-kernel@lists.debian.org) #1 SMP Debian 5.10.223-1\n\0');
    put(5 * MiB + 0x77, banner + '\n\0'); // a copy outside the image (page cache, printk buffer)
  }
  // A process PGD: empty user half, kernel half copied from init_top_pgt.
  const processPgd = tables.alloc();
  ram.copyWithin(processPgd + 2048, dtb + 2048, dtb + 4096);
  return {
    ram,
    tables,
    levels,
    release,
    version,
    banner,
    kernelOffset,
    physBase,
    textVa,
    textPa,
    dtb,
    bannerVa,
    bannerPa,
    utsVa,
    directMapBase,
    noteTextPa,
    dataPa,
    stalePa,
    vmcoreinfo: text,
    processPgd,
    cpus: () => [{ index: 0, cr3: BigInt(processPgd) | 0x8000_0000_0000_0001n, cr4: levels === 5 ? 0x1000n | 0x20n : 0x20n }],
  };
}
