/**
 * The kernel address space bootstrap: from raw guest-physical memory to a
 * verified kernel AddressSpace, with no symbol file.
 *
 *   hints (ELF note, vCPU CR3/CR4) → vmcoreinfo copies → for each complete copy:
 *   DTB = init_top_pgt − __START_KERNEL_map + phys_base, paging levels from
 *   NUMBER(pgtable_l5_enabled) or CR4.LA57 → verify (the tables map init_top_pgt
 *   onto the DTB; init_uts_ns read through them holds OSRELEASE) → cross-check
 *   CR3 → kernel banner → direct map.
 *
 * A copy the page tables do not confirm (a stale kernel's leftovers) is
 * rejected with its reason; every fact records where it came from.
 *
 * Longer than ~400 lines on purpose: the attach bootstrap is one explained
 * pipeline (hints, vmcoreinfo, DTB, verify, CR3, banner, direct map); each
 * step reports into the same record.
 */
import { ProfileError } from '../core/errors.js';
import type { CpuState, PhysicalMemory, SourceHints } from '../memory/types.js';
import { AddressSpace } from '../arch/address-space.js';
import { dtbFromCr3, type PagingMode, pagingMode, TableReader } from '../arch/x86-64/paging.js';
import {
  findVmcoreinfo,
  outOfBandCopy,
  vmcoreinfoCopyAt,
  type VmcoreInfo,
  type VmcoreinfoCopy,
  type VmcoreinfoSearch,
} from './vmcoreinfo.js';
import { gpa, gva } from '../core/address.js';
import { monotonicMs } from '../core/clock.js';

/** __START_KERNEL_map: where x86-64 maps the kernel image (virt − this + phys_base = phys). */
export const START_KERNEL_MAP = 0xffff_ffff_8000_0000n;
/** Default _text when vmcoreinfo lacks SYMBOL(_stext): __START_KERNEL_map + CONFIG_PHYSICAL_START. */
const DEFAULT_TEXT = 0xffff_ffff_8100_0000n;
const CR4_LA57 = 1n << 12n;
/** Bytes of the kernel image searched for the banner (images are ~30–60 MiB). */
const IMAGE_WINDOW = 96 << 20;
/** new_utsname: six 65-byte fields; release is the third. */
const UTS_LEN = 65;

export interface KaslrFacts {
  /** KERNELOFFSET: runtime _text − link-time _text. */
  readonly virtualShift: bigint;
  /** NUMBER(phys_base), signed. */
  readonly physBase: bigint;
  /** Runtime virtual _text. */
  readonly kernelVirtStart: bigint;
  /** Guest-physical _text ("Kernel code" in /proc/iomem). */
  readonly kernelPhysStart: number;
}

export interface UtsName {
  readonly va: bigint;
  /** Offset of new_utsname.release from init_uts_ns, found by search. */
  readonly releaseOffset: number;
  readonly sysname: string;
  readonly release: string;
  readonly version: string;
  readonly machine: string;
}

export interface BannerCandidate {
  readonly pa: number;
  readonly text: string;
  readonly accepted: boolean;
  readonly reason: string;
}

export interface Banner {
  readonly text: string;
  readonly pa: number;
  readonly va: bigint;
  readonly candidates: readonly BannerCandidate[];
  readonly reason: string;
}

export interface Cr3Check {
  readonly cpu: number;
  readonly cr3: bigint;
  readonly agrees: boolean;
  readonly detail: string;
}

export interface RejectedCopy {
  readonly source: string;
  readonly release?: string;
  readonly reason: string;
}

export interface KernelSpace {
  /** The vmcoreinfo the page tables confirmed (undefined only in the CR3-only fallback). */
  readonly vmcoreinfo: VmcoreInfo | undefined;
  readonly vmcoreinfoCopy: VmcoreinfoCopy | undefined;
  /** The memory search, when one ran. */
  readonly search: VmcoreinfoSearch | undefined;
  /** Guest-physical address of init_top_pgt (the kernel DTB). */
  readonly dtb: number;
  readonly levels: 4 | 5;
  readonly mode: PagingMode;
  readonly kaslr: KaslrFacts | undefined;
  readonly space: AddressSpace;
  readonly release: string | undefined;
  readonly uts: UtsName | undefined;
  readonly banner: Banner | undefined;
  /** page_offset_base, found from the page tables. */
  readonly directMapBase: bigint | undefined;
  readonly cr3Checks: readonly Cr3Check[];
  /** Copies tried before the chosen one, with why they were refused. */
  readonly rejected: readonly RejectedCopy[];
  /** Where each fact came from. */
  readonly sources: Readonly<Record<'vmcoreinfo' | 'dtb' | 'levels' | 'kaslr' | 'banner' | 'directMap', string>>;
  /** Milliseconds per step. */
  readonly timings: Readonly<Record<string, number>>;
  /** Anomalies and choices worth telling a person. */
  readonly notes: readonly string[];
}

export interface BootstrapOptions {
  /** Where to look for banners: the kernel image window (default), all RAM, or nowhere. */
  readonly bannerScan?: 'image' | 'all' | 'none';
  /** Also scan memory when an out-of-band vmcoreinfo validates (to report every copy). */
  readonly alwaysScan?: boolean;
  /** How to search memory for vmcoreinfo (default 'auto': page-aligned probes, then every byte if needed). */
  readonly vmcoreinfoStrategy?: 'aligned' | 'full' | 'auto';
  /** Hints already fetched by the caller (else mem.hints() is asked). */
  readonly hints?: SourceHints;
  /**
   * Ask a live source for its hints (a QMP round trip for the vCPU
   * registers) only when memory alone does not do: no vmcoreinfo copy is
   * confirmed (CR3 fallback) or it does not say the paging levels. The CR3
   * cross-check is then skipped. Sources that are not live (files) are
   * always asked: their hints cost nothing and carry the ELF note.
   */
  readonly lazyHints?: boolean;
  /** Guest-physical addresses where vmcoreinfo was seen before: probed (and verified) before any scan. */
  readonly vmcoreinfoAt?: readonly number[];
  /**
   * Accept only a copy whose kernel the vCPUs run (a CR3 that is its DTB or shares its kernel half). After
   * a guest reset the old kernel's memory, vmcoreinfo and page tables included, survives until overwritten
   * and verifies like the new one: this tells them apart. Implies asking the source for its registers.
   */
  readonly requireRunning?: boolean;
}

/** Physical address of a kernel-image virtual address. */
export function kernelImagePhys(va: bigint, physBase: bigint): number {
  return Number(va - START_KERNEL_MAP + physBase);
}

interface Verified {
  copy: VmcoreinfoCopy;
  info: VmcoreInfo;
  dtb: number;
  levels: 4 | 5;
  levelsSource: string;
  space: AddressSpace;
  uts: UtsName;
}

function levelsFrom(info: VmcoreInfo | undefined, cpus: readonly CpuState[]): { levels: 4 | 5; source: string } {
  if (info?.l5Enabled !== undefined) {
    return { levels: info.l5Enabled ? 5 : 4, source: `vmcoreinfo NUMBER(pgtable_l5_enabled)=${info.l5Enabled ? 1 : 0}` };
  }
  const cpu = cpus.find((c) => c.cr4 !== undefined);
  if (cpu) {
    const la57 = (cpu.cr4! & CR4_LA57) !== 0n;
    return { levels: la57 ? 5 : 4, source: `CR4.LA57=${la57 ? 1 : 0} of vCPU ${cpu.index}` };
  }
  return { levels: 4, source: 'default (no pgtable_l5_enabled in vmcoreinfo, no CR4 from the source)' };
}

/** Reads init_uts_ns through `space` and finds new_utsname by its release string. */
export function readUtsName(space: AddressSpace, va: bigint, release: string): UtsName | string {
  let bytes: Uint8Array;
  try {
    bytes = space.read(gva(va), 512);
  } catch (e) {
    return `init_uts_ns at 0x${va.toString(16)} is unreadable through the page tables (${(e as Error).message})`;
  }
  const want = Buffer.from(release + '\0', 'latin1');
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = buf.indexOf(want); i >= 0; i = buf.indexOf(want, i + 1)) {
    if (i < 2 * UTS_LEN || i + 3 * UTS_LEN > buf.length) continue;
    const field = (off: number): string => {
      const f = buf.subarray(off, off + UTS_LEN);
      const nul = f.indexOf(0);
      return f.subarray(0, nul < 0 ? UTS_LEN : nul).toString('latin1');
    };
    const sysname = field(i - 2 * UTS_LEN);
    if (sysname !== 'Linux') continue;
    return { va, releaseOffset: i, sysname, release, version: field(i + UTS_LEN), machine: field(i + 2 * UTS_LEN) };
  }
  return `init_uts_ns at 0x${va.toString(16)} does not hold "Linux" and release ${release} (wrong DTB, phys_base or a stale vmcoreinfo copy)`;
}

/** Checks one vmcoreinfo copy against the page tables it describes. */
function verifyCopy(
  mem: PhysicalMemory,
  tables: TableReader,
  copy: VmcoreinfoCopy,
  cpus: readonly CpuState[],
): Verified | string {
  const info = copy.info;
  if (!info) return copy.problems.join('; ') || 'not parsed';
  const top = info.symbols.get('init_top_pgt') ?? info.symbols.get('swapper_pg_dir');
  if (top === undefined) return 'no SYMBOL(init_top_pgt) or SYMBOL(swapper_pg_dir)';
  const physBase = info.physBase ?? 0n;
  const dtbBig = top - START_KERNEL_MAP + physBase;
  if (dtbBig < 0n || dtbBig >= BigInt(mem.size) || dtbBig % 4096n !== 0n) {
    return `init_top_pgt 0x${top.toString(16)} with phys_base ${physBase} gives DTB 0x${dtbBig.toString(16)}, outside RAM or unaligned`;
  }
  const dtb = Number(dtbBig);
  const { levels, source } = levelsFrom(info, cpus);
  const space = new AddressSpace(tables, dtb, pagingMode(levels), { name: 'kernel' });
  const self = space.tryTranslate(gva(top));
  if (self?.pa !== dtb) {
    return `the tables at 0x${dtb.toString(16)} do not map init_top_pgt onto themselves (${self ? `got 0x${self.pa.toString(16)}` : 'not mapped'})`;
  }
  const utsVa = info.symbols.get('init_uts_ns');
  if (utsVa === undefined) return 'no SYMBOL(init_uts_ns) to verify the release';
  const uts = readUtsName(space, utsVa, info.release);
  if (typeof uts === 'string') return uts;
  return { copy, info, dtb, levels, levelsSource: source, space, uts };
}

/** Compares a vCPU's CR3 with the kernel DTB: equal, or the same kernel half (a process PGD). */
export function checkCr3(tables: TableReader, dtb: number, cpu: CpuState): Cr3Check | undefined {
  if (cpu.cr3 === undefined) return undefined;
  const pgd = dtbFromCr3(cpu.cr3);
  const base = { cpu: cpu.index, cr3: cpu.cr3 };
  if (pgd === dtb) return { ...base, agrees: true, detail: 'CR3 is init_top_pgt' };
  let kernel: Uint32Array;
  try {
    kernel = tables.table(dtb);
  } catch {
    return { ...base, agrees: false, detail: 'the kernel top table is unreadable' };
  }
  // With PTI the user half of a PGD pair sits at +4 KiB; compare the kernel copy.
  for (const candidate of [pgd, pgd & ~0x1000]) {
    let other: Uint32Array;
    try {
      other = tables.table(candidate);
    } catch {
      continue;
    }
    let same = true;
    let present = 0;
    for (let i = 512; i < 1024; i += 2) {
      if (kernel[i] !== other[i] || kernel[i + 1] !== other[i + 1]) same = false;
      if (kernel[i]! & 1) present++;
    }
    if (same && present > 0) {
      const pti = candidate !== pgd ? ' (PTI user PGD; kernel PGD at -4 KiB)' : '';
      return { ...base, agrees: true, detail: `CR3 is a process PGD at 0x${candidate.toString(16)} with the same kernel half${pti}` };
    }
  }
  return { ...base, agrees: false, detail: `CR3 PGD 0x${pgd.toString(16)} has a different kernel half than init_top_pgt 0x${dtb.toString(16)}` };
}

const BANNER_NEEDLE = Buffer.from('Linux version ', 'latin1');

/** "Linux version " hits in [start, end) in address order, with their text up to the newline/NUL (≤ 512 bytes). */
function* bannerHits(mem: PhysicalMemory, start: number, end: number): Generator<{ pa: number; text: string; standalone: boolean }> {
  let count = 0;
  const chunk = 1 << 20;
  const overlap = 512;
  const regions = mem.mapped?.();
  let scratch: Uint8Array | undefined;
  // linux_banner is a string of its own, "Linux version …\n\0"; copies inside the kernel log
  // (printk records, __log_buf) carry the same text without that ending.
  const textAt = (bytes: Uint8Array, i: number): { text: string; standalone: boolean } => {
    const tail = bytes.subarray(i, Math.min(bytes.length, i + overlap));
    let e = 0;
    while (e < tail.length && tail[e] !== 0 && tail[e] !== 0x0a) e++;
    return { text: Buffer.from(tail.buffer, tail.byteOffset, e).toString('latin1'), standalone: tail[e] === 0x0a && tail[e + 1] === 0 };
  };
  for (let a = start; a < end && count < 64; a += chunk) {
    const len = Math.min(chunk + overlap, end - a, mem.size - a);
    if (len <= 0) break;
    let bytes: Uint8Array | undefined;
    const r = regions?.find((x) => a >= x.start && a + len <= x.start + x.bytes.length);
    if (r) bytes = r.bytes.subarray(a - r.start, a - r.start + len);
    else {
      scratch ??= new Uint8Array(chunk + overlap);
      const dst = scratch.subarray(0, len);
      const failures = mem.readv([{ addr: gpa(a), len, dst }]);
      if (failures.length === 1 && failures[0]!.len === len) continue;
      bytes = dst;
    }
    const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let i = buf.indexOf(BANNER_NEEDLE); i >= 0 && i < chunk; i = buf.indexOf(BANNER_NEEDLE, i + 1)) {
      yield { pa: a + i, ...textAt(bytes, i) };
      if (++count >= 64) break;
    }
  }
}

/**
 * Physical start of the kernel's read-only data: the first no-execute,
 * read-only page of the image mapping after the text (the kernel maps .text
 * RX and .rodata NX+RO, both 2 MiB aligned). Falls back to the image start.
 */
function rodataPhys(space: AddressSpace, kaslr: KaslrFacts): number {
  for (const m of space.mappings({ start: kaslr.kernelVirtStart, end: kaslr.kernelVirtStart + (1n << 30n), limit: 64 })) {
    if (m.nx && (m.flags & 2) === 0) {
      const pa = m.pa + Number(m.va < kaslr.kernelVirtStart ? kaslr.kernelVirtStart - m.va : 0n);
      return pa >= kaslr.kernelPhysStart ? pa : kaslr.kernelPhysStart;
    }
  }
  return kaslr.kernelPhysStart;
}

function findBanner(
  mem: PhysicalMemory,
  space: AddressSpace,
  kaslr: KaslrFacts,
  release: string,
  uts: UtsName | undefined,
  scope: 'image' | 'all',
): Banner | undefined {
  // 'image' stops at the first banner that passes, searching .rodata (where linux_banner is)
  // before .text; 'all' lists every copy in RAM.
  const imageEnd = Math.min(mem.size, kaslr.kernelPhysStart + IMAGE_WINDOW);
  const rodata = rodataPhys(space, kaslr);
  const hits =
    scope === 'all'
      ? (function* () {
          for (const r of mem.ranges()) yield* bannerHits(mem, r.start, r.end);
        })()
      : (function* () {
          yield* bannerHits(mem, rodata, imageEnd);
          if (rodata > kaslr.kernelPhysStart) yield* bannerHits(mem, kaslr.kernelPhysStart, rodata);
        })();
  const candidates: BannerCandidate[] = [];
  let chosen: { pa: number; text: string; va: bigint } | undefined;
  for (const h of hits) {
    const va = BigInt(h.pa) - kaslr.physBase + START_KERNEL_MAP;
    let reason: string;
    let accepted = false;
    if (!h.text.startsWith(`Linux version ${release} `)) reason = `release differs from vmcoreinfo's ${release}`;
    else if (uts && uts.version && !h.text.endsWith(uts.version)) reason = `does not end with init_uts_ns version "${uts.version}"`;
    else if (!h.standalone) reason = 'a copy inside other text (the kernel log), not a "…\\n\\0" string like linux_banner';
    else if (space.tryTranslate(gva(va))?.pa !== h.pa) reason = 'outside the kernel image mapped by the page tables';
    else {
      accepted = chosen === undefined;
      reason = accepted
        ? 'release and version match vmcoreinfo and init_uts_ns; mapped by the kernel page tables'
        : `another copy of the accepted banner (printk log or boot data)`;
      if (accepted) chosen = { ...h, va };
    }
    candidates.push({ pa: h.pa, text: h.text, accepted, reason });
    if (accepted && scope === 'image') break; // do not scan on for the next hit
  }
  if (!chosen) return undefined;
  const stale = candidates.filter((c) => !c.accepted).length;
  const reason =
    candidates.length === 1
      ? 'the only banner found'
      : `chose the banner at 0x${chosen.pa.toString(16)}: ${stale} other(s) refused (${[...new Set(candidates.filter((c) => !c.accepted).map((c) => c.reason))].join('; ')})`;
  return { ...chosen, candidates, reason };
}

/**
 * The banner at `va` (linux_banner from a symbol table), judged like a
 * scanned one: it must say vmcoreinfo's release, end with init_uts_ns's
 * version and sit in the kernel image the page tables map. Returns why not.
 */
export function bannerAtSymbol(ks: KernelSpace, va: bigint, how: string): Banner | string {
  const release = ks.release;
  if (!ks.kaslr || !release) return 'no confirmed vmcoreinfo to judge a banner by';
  const t = ks.space.tryTranslate(gva(va));
  if (!t) return `linux_banner 0x${va.toString(16)} is not mapped`;
  if (BigInt(t.pa) !== va - START_KERNEL_MAP + ks.kaslr.physBase) return `linux_banner 0x${va.toString(16)} is outside the kernel image map`;
  let bytes: Uint8Array;
  try {
    bytes = ks.space.read(gva(va), 512);
  } catch {
    try {
      bytes = ks.space.read(gva(va), 4096 - Number(va & 0xfffn));
    } catch (e) {
      return `linux_banner 0x${va.toString(16)} is unreadable (${(e as Error).message})`;
    }
  }
  let e = 0;
  while (e < bytes.length && bytes[e] !== 0 && bytes[e] !== 0x0a) e++;
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, e).toString('latin1');
  if (!text.startsWith(`Linux version ${release} `)) return `linux_banner 0x${va.toString(16)} does not hold "Linux version ${release} …"`;
  if (ks.uts?.version && !text.endsWith(ks.uts.version)) return `the banner at linux_banner does not end with init_uts_ns version "${ks.uts.version}"`;
  const reason = `read at linux_banner (${how}); release and version match vmcoreinfo and init_uts_ns; mapped by the kernel page tables`;
  return { text, pa: t.pa, va, candidates: [{ pa: t.pa, text, accepted: true, reason }], reason };
}

/** Searches the kernel image (or all RAM) for the banner of the kernel behind `ks` (what bootstrap does unless bannerScan is 'none'). */
export function scanBanner(mem: PhysicalMemory, ks: KernelSpace, scope: 'image' | 'all' = 'image'): Banner | undefined {
  if (!ks.kaslr || !ks.release) return undefined;
  return findBanner(mem, ks.space, ks.kaslr, ks.release, ks.uts, scope);
}

function time<T>(timings: Record<string, number>, step: string, fn: () => T): T {
  const t0 = monotonicMs();
  try {
    return fn();
  } finally {
    timings[step] = (timings[step] ?? 0) + monotonicMs() - t0;
  }
}

/**
 * Builds and verifies the kernel address space of the guest in `mem`.
 * Throws ProfileError when no vmcoreinfo copy is confirmed by the page tables
 * and the source offers no CR3 to fall back on.
 */
export async function bootstrapKernelSpace(mem: PhysicalMemory, options: BootstrapOptions = {}): Promise<KernelSpace> {
  const t0 = monotonicMs();
  const timings: Record<string, number> = {};
  const notes: string[] = [];
  let hints: SourceHints = options.hints ?? {};
  let asked = options.hints !== undefined || !mem.hints;
  const askHints = async (): Promise<void> => {
    if (asked) return;
    asked = true;
    const th = monotonicMs();
    try {
      hints = await mem.hints!();
    } catch (e) {
      notes.push(`the source's hints failed: ${(e as Error).message}`);
    }
    timings['hints'] = monotonicMs() - th;
    cpus = hints.cpus ?? [];
  };
  let cpus: readonly CpuState[] = hints.cpus ?? [];
  if (!options.lazyHints || options.requireRunning || !mem.technique.live) await askHints();
  const tables = new TableReader(mem);
  const rejected: RejectedCopy[] = [];
  let verified: Verified | undefined;
  /** The page-table check of one complete copy; remembers the first that passes. */
  const check = (copy: VmcoreinfoCopy): boolean => {
    if (verified) return false;
    if (rejected.length >= 16) return false;
    const t = monotonicMs();
    let v = verifyCopy(mem, tables, copy, cpus);
    if (typeof v !== 'string' && options.requireRunning) {
      const checks = cpus.map((c) => checkCr3(tables, (v as Verified).dtb, c)).filter((c): c is Cr3Check => c !== undefined);
      if (checks.length && !checks.some((c) => c.agrees)) v = 'the vCPUs do not run this kernel (a copy left from before a reset?)';
    }
    verifyMs += monotonicMs() - t;
    if (typeof v === 'string') {
      rejected.push({ source: copy.source, release: copy.info?.release, reason: v });
      return false;
    }
    verified = v;
    return true;
  };
  let verifyMs = 0;
  /** Times a vmcoreinfo step without the page-table checks made inside it (those count as 'verify'). */
  const vmcoreinfoStep = <T>(fn: () => T): T => {
    const t = monotonicMs();
    const v0 = verifyMs;
    try {
      return fn();
    } finally {
      timings['vmcoreinfo'] = (timings['vmcoreinfo'] ?? 0) + Math.max(0, monotonicMs() - t - (verifyMs - v0));
    }
  };
  if (hints.vmcoreinfo) {
    const oob = vmcoreinfoStep(() => outOfBandCopy(hints.vmcoreinfo!, 'ELF VMCOREINFO note'));
    if (!oob.complete) rejected.push({ source: oob.source, release: oob.info?.release, reason: oob.problems.join('; ') });
    else check(oob);
  }
  if (!verified && !options.alwaysScan && options.vmcoreinfoAt?.length) {
    const before = rejected.length;
    vmcoreinfoStep(() => {
      for (const pa of options.vmcoreinfoAt!.slice(0, 8)) {
        const copy = Number.isSafeInteger(pa) && pa >= 0 && pa < mem.size ? vmcoreinfoCopyAt(mem, pa) : undefined;
        if (copy?.complete && check(copy)) break;
      }
    });
    // A remembered address that no longer holds a confirmed copy is not worth reporting: the scan follows.
    if (!verified) rejected.length = before;
  }
  let search: VmcoreinfoSearch | undefined;
  if (!verified || options.alwaysScan) {
    // Without alwaysScan the scan stops at the first copy the page tables confirm.
    const strategy = options.vmcoreinfoStrategy ?? 'auto';
    search = vmcoreinfoStep(() =>
      findVmcoreinfo(mem, options.alwaysScan ? { strategy } : { strategy, accept: check }),
    );
    if (options.alwaysScan) for (const c of search.copies) if (c.complete && !verified) check(c);
  }
  // Lazy hints: ask now if memory alone was not enough (no confirmed copy, or no paging levels in it).
  if (!asked && (!verified || verified.info.l5Enabled === undefined)) {
    await askHints();
    if (!verified && hints.vmcoreinfo) {
      const oob = outOfBandCopy(hints.vmcoreinfo, 'ELF VMCOREINFO note');
      if (oob.complete) check(oob);
    }
    // Re-derive the paging levels with CR4 now at hand.
    if (verified && verified.info.l5Enabled === undefined && cpus.length) {
      const again = verifyCopy(mem, tables, verified.copy, cpus);
      if (typeof again !== 'string') verified = again;
    }
  }
  timings['verify'] = verifyMs;

  const sources: Record<'vmcoreinfo' | 'dtb' | 'levels' | 'kaslr' | 'banner' | 'directMap', string> = {
    vmcoreinfo: 'none',
    dtb: 'none',
    levels: 'none',
    kaslr: 'none',
    banner: 'none',
    directMap: 'none',
  };
  if (search) {
    // The search's own favourite was refused by the page tables, or it saw disagreeing copies: tell.
    if (search.chosen !== verified?.copy || /DISAGREE/.test(search.reason)) notes.push(`vmcoreinfo search (${search.strategy}): ${search.reason}`);
  }
  for (const r of rejected) notes.push(`refused vmcoreinfo ${r.source}${r.release ? ` (${r.release})` : ''}: ${r.reason}`);

  let space: AddressSpace;
  let dtb: number;
  let levels: 4 | 5;
  let kaslr: KaslrFacts | undefined;
  let info: VmcoreInfo | undefined;
  if (verified) {
    ({ space, dtb, levels, info } = verified);
    sources.vmcoreinfo = verified.copy.source;
    sources.dtb = `vmcoreinfo: SYMBOL(init_top_pgt) − 0x${START_KERNEL_MAP.toString(16)} + NUMBER(phys_base); verified: maps itself and init_uts_ns holds ${info.release}`;
    sources.levels = verified.levelsSource;
    const physBase = info.physBase ?? 0n;
    const virtualShift = info.kernelOffset ?? 0n;
    const kernelVirtStart = info.symbols.get('_stext') ?? DEFAULT_TEXT + virtualShift;
    const textPhys = kernelImagePhys(kernelVirtStart, physBase);
    kaslr = {
      virtualShift,
      physBase,
      kernelVirtStart,
      // The image is 2 MiB aligned (CONFIG_PHYSICAL_ALIGN); _stext may sit just after _text.
      kernelPhysStart: textPhys - (textPhys % 0x200000),
    };
    sources.kaslr = `vmcoreinfo KERNELOFFSET${info.physBase === undefined ? '' : ', NUMBER(phys_base)'}${info.symbols.has('_stext') ? ', SYMBOL(_stext)' : ''}`;
  } else {
    const cpu = cpus.find((c) => c.cr3 !== undefined);
    if (!cpu) {
      const why = rejected.length
        ? `refused ${rejected
            .slice(0, 2)
            .map((r) => `${r.source}${r.release ? ` (${r.release})` : ''}: ${r.reason}`)
            .join('; ')}`
        : (search?.reason ?? 'no copy');
      throw new ProfileError(`no vmcoreinfo confirmed by the page tables in ${mem.target} (${why})`, {
        tried: [
          ...(hints.vmcoreinfo ? ['ELF VMCOREINFO note'] : []),
          ...(search ? [`${search.strategy} memory scan of ${Math.round(search.scannedBytes / 1048576)} MiB`] : []),
          ...rejected.map((r) => r.source),
        ],
        hint: 'a source with vCPU registers (QMP, ELF core) gives CR3 as a fallback',
      });
    }
    const l = levelsFrom(undefined, cpus);
    levels = l.levels;
    dtb = dtbFromCr3(cpu.cr3!);
    space = new AddressSpace(tables, dtb, pagingMode(levels), { name: 'kernel' });
    sources.dtb = `CR3 of vCPU ${cpu.index} (no confirmed vmcoreinfo; may be a process PGD, only its kernel half is meaningful)`;
    sources.levels = l.source;
    notes.push('no vmcoreinfo confirmed: KASLR facts and the release are unknown');
  }

  const cr3Checks = time(timings, 'cr3', () =>
    cpus.map((c) => checkCr3(tables, dtb, c)).filter((c): c is Cr3Check => c !== undefined),
  );
  for (const c of cr3Checks) if (!c.agrees) notes.push(`vCPU ${c.cpu}: ${c.detail}`);
  if (!asked) notes.push('vCPU registers not asked (vmcoreinfo confirmed by the page tables): no CR3 cross-check');

  let banner: Banner | undefined;
  const scope = options.bannerScan ?? 'image';
  if (kaslr && info && scope !== 'none') {
    banner = time(timings, 'banner', () => findBanner(mem, space, kaslr!, info!.release, verified?.uts, scope));
    if (banner) sources.banner = `physical 0x${banner.pa.toString(16)}: ${banner.reason}`;
    else notes.push(`no "Linux version ${info.release}" banner found in the ${scope === 'all' ? 'whole memory' : 'kernel image'}`);
  }

  const directMapBase = time(timings, 'directMap', () => space.findDirectMap());
  if (directMapBase !== undefined) sources.directMap = 'page tables: lowest 1 GiB-aligned kernel VA mapping physical 0 linearly';
  else notes.push('the direct map (page_offset_base) was not found in the page tables');

  timings['total'] = monotonicMs() - t0;
  return {
    vmcoreinfo: info,
    vmcoreinfoCopy: verified?.copy,
    search,
    dtb,
    levels,
    mode: space.mode,
    kaslr,
    space,
    release: info?.release,
    uts: verified?.uts,
    banner,
    directMapBase,
    cr3Checks,
    rejected,
    sources,
    timings,
    notes,
  };
}
