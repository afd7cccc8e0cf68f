/**
 * `vmsight info <source>`: which technique reads the target and why, its RAM
 * layout, and the kernel found in it (banner, vmcoreinfo summary, KASLR,
 * paging mode, DTB), with the time each step took.
 *
 * Also exports the small helpers the read/translate commands share: opening a
 * source with --technique (always closed), and parsing addresses.
 */
import { hex, MissingFileError, UsageError } from '../../core/errors.js';
import type { PhysicalMemory } from '../../memory/types.js';
import { loadKallsyms } from '../../profile/kallsyms.js';
import { existsSync } from 'node:fs';
import { importIsf, readIsfFile } from '../../profile/isf.js';
import { profileFileKind } from '../../profile/profile.js';
import { loadSystemMap } from '../../profile/system-map.js';
import { bootstrapKernelSpace, type KernelSpace } from '../../profile/kernel-space.js';
import type { Command } from '../command.js';
import { requireSource, sourceOptions, withSource } from './common.js';

/** Parses 0x-hex or decimal into a bigint; undefined when it is not a number. */
export function parseNumber(text: string): bigint | undefined {
  const t = text.trim().replace(/_/g, '');
  if (/^0x[0-9a-f]{1,16}$/i.test(t)) return BigInt(t);
  if (/^[0-9]{1,20}$/.test(t)) return BigInt(t);
  return undefined;
}

/** A guest-physical address option (below 2^52). */
export function parsePhysical(text: string, what: string): number {
  const v = parseNumber(text);
  if (v === undefined || v >= 1n << 52n) throw new UsageError(`${what} ${JSON.stringify(text)}: expected a physical address (0x-hex or decimal, below 2^52)`);
  return Number(v);
}

/**
 * A guest-virtual address: a number, or a kernel symbol (from the --profile
 * file when one is given; else vmcoreinfo's, then the guest's kallsyms,
 * decoded on demand), optionally +offset.
 */
export function parseVirtual(text: string, ks?: KernelSpace, mem?: PhysicalMemory, profileFile?: string): bigint {
  const direct = parseNumber(text);
  if (direct !== undefined) {
    if (direct >= 1n << 64n) throw new UsageError(`address ${text} is wider than 64 bits`);
    return direct;
  }
  const m = /^([A-Za-z_][A-Za-z0-9_.]*)(?:\+(0x[0-9a-f]+|[0-9]+))?$/i.exec(text.trim());
  if (m) {
    const sym = resolveSymbol(m[1]!, ks, mem, profileFile);
    if (sym !== undefined) return sym + (m[2] ? BigInt(m[2]) : 0n);
  }
  throw new UsageError(`address ${JSON.stringify(text)}: expected 0x-hex, decimal or a kernel symbol[+offset]`, {
    hint: ks?.vmcoreinfo ? 'symbols come from vmcoreinfo and the guest kallsyms' : 'no kernel profile: give a numeric address',
  });
}

function resolveSymbol(name: string, ks: KernelSpace | undefined, mem: PhysicalMemory | undefined, profileFile?: string): bigint | undefined {
  if (profileFile !== undefined) {
    const fromFile = symbolFromProfileFile(profileFile, name, ks?.kaslr?.virtualShift ?? 0n);
    if (fromFile !== 'no symbols') return fromFile;
  }
  const fromVmcoreinfo = ks?.vmcoreinfo?.symbols.get(name);
  if (fromVmcoreinfo !== undefined || !ks || !mem) return fromVmcoreinfo;
  try {
    const k = loadKallsyms({ space: ks.space, mem, ...(ks.vmcoreinfo ? { vmcoreinfo: ks.vmcoreinfo } : {}), target: mem.target });
    return k.table.tryAddress(name);
  } catch {
    return undefined; // reported as an unknown symbol by the caller
  }
}

/**
 * A symbol from a --profile file at this boot's address: System.map and ISF
 * carry link-time addresses; BTF files and kernel images carry no symbols.
 */
function symbolFromProfileFile(file: string, name: string, shift: bigint): bigint | undefined | 'no symbols' {
  if (!existsSync(file)) throw new MissingFileError('--profile', file);
  const kind = profileFileKind(file);
  if (kind === 'isf') {
    const at = importIsf(readIsfFile(file), `isf:${file}`).symbols.address(name);
    return at === undefined ? undefined : BigInt.asUintN(64, at + shift);
  }
  if (kind === 'system.map') return loadSystemMap(file, { shift }).table.tryAddress(name);
  return 'no symbols';
}

export function formatSize(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${Number.isInteger(v) ? v : v.toFixed(1)} ${units[u]}`;
}

function signedHex(v: bigint): string {
  return v < 0n ? `-0x${(-v).toString(16)}` : `0x${v.toString(16)}`;
}

function ms(v: number | undefined): string | undefined {
  return v === undefined ? undefined : `${v.toFixed(1)} ms`;
}

function rangesOf(mem: PhysicalMemory): { start: number; end: number; name?: string }[] {
  return mem.ranges().map((r) => ({ start: r.start, end: r.end, ...(r.name ? { name: r.name } : {}) }));
}

const USAGE = 'info <source> [--technique CLASS|NAME] [--halting] [--scan-all] [--json]';

export const command: Command = {
  name: 'info',
  summary: 'technique, RAM layout, kernel banner, vmcoreinfo summary, KASLR, paging mode, time per step',
  usage: '<source> [--technique CLASS|NAME] [--halting] [--scan-all]   (--scan-all: list every vmcoreinfo and banner copy in RAM)',
  options: { ...sourceOptions, 'scan-all': { type: 'boolean' } },
  async run(args, ctx) {
    const spec = requireSource(args, USAGE);
    const scanAll = args.values['scan-all'] === true;
    return withSource(args, spec, async ({ memory, chosen, candidates }, openMs) => {
      const ks = await bootstrapKernelSpace(memory, {
        bannerScan: scanAll ? 'all' : 'image',
        ...(scanAll ? { alwaysScan: true, vmcoreinfoStrategy: 'full' as const } : {}),
      });
      const v = ks.vmcoreinfo;
      const ranges = rangesOf(memory);
      const ramBytes = ranges.reduce((n, r) => n + (r.end - r.start), 0);
      const timings: Record<string, string | undefined> = { open: ms(openMs) };
      for (const [k, t] of Object.entries(ks.timings)) timings[k] = ms(t);
      if (ctx.out.format === 'json' || ctx.out.format === 'jsonl') {
        ctx.out.record({
          source: memory.target,
          technique: { ...chosen, name: memory.technique.name, live: memory.technique.live, zeroCopy: memory.technique.zeroCopy },
          candidates,
          size: memory.size,
          ram: ramBytes,
          ranges: ranges.map((r) => ({ ...r, start: BigInt(r.start), end: BigInt(r.end) })),
          banner: ks.banner?.text,
          bannerPa: ks.banner ? BigInt(ks.banner.pa) : undefined,
          bannerCandidates: ks.banner?.candidates,
          release: ks.release,
          buildId: v?.buildId,
          kaslr: ks.kaslr && { ...ks.kaslr, kernelPhysStart: BigInt(ks.kaslr.kernelPhysStart) },
          pagingLevels: ks.levels,
          dtb: BigInt(ks.dtb),
          directMapBase: ks.directMapBase,
          uts: ks.uts,
          vmcoreinfo: v && {
            copy: ks.vmcoreinfoCopy?.source,
            reason: ks.search?.reason,
            copies: ks.search?.copies.map((c) => ({ source: c.source, kind: c.kind, complete: c.complete, problems: c.problems, release: c.info?.release })),
            keys: v.keyCount,
            symbols: v.symbols.size,
            kallsyms: v.kallsyms,
            crashTime: v.crashTime,
          },
          cr3: ks.cr3Checks,
          rejected: ks.rejected,
          sources: ks.sources,
          notes: ks.notes,
          timingsMs: { open: openMs, ...ks.timings },
        });
        return;
      }
      const facts: Record<string, unknown> = {
        source: memory.target,
        technique: `${chosen.class} (${chosen.factory}${memory.technique.zeroCopy ? ', zero-copy' : ''})`,
        'chosen because': chosen.reason,
        size: `${formatSize(memory.size)} address space, ${formatSize(ramBytes)} backed`,
        'RAM layout': ranges.map((r) => `${hex(r.start)}-${hex(r.end - 1)}${r.name ? ` (${r.name})` : ''}`).join(', '),
        banner: ks.banner?.text ?? '(not found)',
        release: ks.release ?? '(unknown)',
        'build-id': v?.buildId,
        'KASLR offset': ks.kaslr ? hex(ks.kaslr.virtualShift) : undefined,
        phys_base: ks.kaslr ? `${signedHex(ks.kaslr.physBase)} (${ks.kaslr.physBase})` : undefined,
        'kernel _text': ks.kaslr ? `${hex(ks.kaslr.kernelVirtStart)} at physical ${hex(ks.kaslr.kernelPhysStart)}` : undefined,
        paging: `${ks.levels}-level (${ks.sources.levels})`,
        DTB: `${hex(ks.dtb)} (${ks.sources.dtb})`,
        'direct map': ks.directMapBase !== undefined ? hex(ks.directMapBase) : '(not found)',
        vmcoreinfo: v
          ? ks.search && ks.search.chosen === ks.vmcoreinfoCopy
            ? `${ks.search.reason} (${ks.search.strategy} scan of ${formatSize(ks.search.scannedBytes)})`
            : `${ks.sources.vmcoreinfo}, ${v.keyCount} keys`
          : '(none confirmed)',
        kallsyms: v?.kallsyms ? `tables at ${hex(v.kallsyms.names)} (names) per vmcoreinfo` : 'no kallsyms keys in vmcoreinfo',
        CR3: ks.cr3Checks.length ? ks.cr3Checks.map((c) => `vCPU ${c.cpu} ${hex(c.cr3)}: ${c.detail}`).join('; ') : undefined,
      };
      if (ks.banner && ks.banner.candidates.length > 1) facts['banner choice'] = ks.banner.reason;
      facts['time'] = Object.entries(timings)
        .filter(([, t]) => t !== undefined)
        .map(([k, t]) => `${k} ${t}`)
        .join(', ');
      ctx.out.record(facts);
      for (const n of ks.notes) ctx.out.text(`note: ${n}`);
    });
  },
};
