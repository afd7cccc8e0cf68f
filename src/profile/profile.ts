/**
 * Builds the kernel profile (symbols + types + the facts that tie them to
 * memory) from the guest itself, in named steps that each say what they
 * tried: cache → kallsyms → BTF, or a user-supplied ISF / BTF / System.map.
 * The result is cached on disk by build-id; a cached entry is checked against
 * the live kernel before it is used.
 */
import { existsSync, readFileSync } from 'node:fs';
import { FaultError, ProfileError } from '../core/errors.js';
import type { KernelProfile } from '../linux/kernel.js';
import type { PhysicalMemory } from '../memory/types.js';
import { parseBtf } from './btf.js';
import { btfFromFileBytes, btfFromKernelSymbols } from './btf/sources.js';
import { defaultCacheDir, profileKey, readCachedProfile, writeCachedProfile, CACHE_FORMAT } from './cache.js';
import { checkIsfMatches, importIsf, readIsfFile } from './isf.js';
import { loadKallsyms } from './kallsyms.js';
import type { KernelSpace } from './kernel-space.js';
import { SymbolTable, SymbolTableBuilder } from './symbols.js';
import { loadSystemMap, looksLikeSystemMap } from './system-map.js';
import { TypeDb } from './types.js';

export interface ProfileOptions {
  /** A user-supplied profile: ISF (.json, .json.xz), BTF (raw, vmlinux ELF, vmlinuz) or System.map. */
  readonly profileFile?: string;
  /** Cache directory, or false to neither read nor write the cache. */
  readonly cache?: string | false;
}

export interface ProfileStep {
  readonly step: string;
  readonly ms: number;
  readonly detail: string;
}

export interface LoadedProfile {
  readonly profile: KernelProfile;
  readonly steps: readonly ProfileStep[];
  readonly cacheHit: boolean;
}

/** Link-time KASLR shift: runtime address = link-time address + virtualShift. */
function shiftOf(ks: KernelSpace): bigint {
  return ks.kaslr?.virtualShift ?? 0n;
}

function bannerOf(ks: KernelSpace): string {
  return ks.banner?.text ?? '';
}

/** Reads `len` bytes at a kernel VA, or undefined when unmapped. */
function tryRead(ks: KernelSpace, va: bigint, len: number): Uint8Array | undefined {
  try {
    return ks.space.read(va, len);
  } catch (e) {
    if (e instanceof FaultError) return undefined;
    throw e;
  }
}

/**
 * Checks that symbols fit the live kernel: `linux_banner` holds the banner and
 * `__start_BTF` holds BTF magic. Returns why not, or undefined when they fit.
 */
function symbolsMismatch(ks: KernelSpace, symbols: SymbolTable): string | undefined {
  const banner = bannerOf(ks);
  const lb = symbols.tryAddress('linux_banner');
  if (lb === undefined) return 'no linux_banner symbol';
  if (banner) {
    const bytes = tryRead(ks, lb, Math.min(banner.length, 200));
    if (!bytes || Buffer.from(bytes).toString('latin1') !== banner.slice(0, bytes.length)) return `linux_banner at 0x${lb.toString(16)} does not hold the kernel banner`;
  }
  const sb = symbols.tryAddress('__start_BTF');
  if (sb !== undefined) {
    const magic = tryRead(ks, sb, 2);
    if (!magic || magic[0] !== 0x9f || magic[1] !== 0xeb) return `__start_BTF at 0x${sb.toString(16)} holds no BTF`;
  }
  return undefined;
}

function typesFromFile(path: string): TypeDb {
  const bytes = readFileSync(path);
  const { btf } = btfFromFileBytes(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length), { source: `btf:${path}` });
  return new TypeDb(btf);
}

function isIsf(path: string): boolean {
  return /\.json(\.xz)?$/i.test(path);
}

function isSystemMap(path: string): boolean {
  if (/system\.map/i.test(path)) return true;
  return looksLikeSystemMap(readFileSync(path).subarray(0, 4096));
}

/** Loads the profile of the kernel behind `ks`, from the cache, the guest, or a given file. */
export function loadProfile(mem: PhysicalMemory, ks: KernelSpace, options: ProfileOptions = {}): LoadedProfile {
  const steps: ProfileStep[] = [];
  const step = <T>(name: string, fn: () => { value: T; detail: string }): T => {
    const t0 = performance.now();
    const { value, detail } = fn();
    steps.push({ step: name, ms: performance.now() - t0, detail });
    return value;
  };
  const release = ks.release ?? ks.vmcoreinfo?.release ?? 'unknown';
  const banner = bannerOf(ks);
  const buildId = ks.vmcoreinfo?.buildId;
  const shift = shiftOf(ks);
  const base = {
    release,
    banner,
    ...(buildId ? { buildId } : {}),
    kaslr: { virtualShift: shift, physBase: ks.kaslr?.physBase ?? 0n },
    pagingLevels: ks.levels,
  };

  // A user-supplied profile file replaces the guest's own symbols or types.
  let fileSymbols: SymbolTable | undefined;
  let fileTypes: TypeDb | undefined;
  const file = options.profileFile;
  if (file) {
    if (!existsSync(file)) throw new ProfileError(`profile file ${file} does not exist`, { hint: 'give --profile an ISF (.json/.json.xz), a BTF file, a vmlinux/vmlinuz or a System.map' });
    if (isIsf(file)) {
      step('isf', () => {
        const json = readIsfFile(file);
        if (banner) checkIsfMatches(json, banner);
        const isf = importIsf(json, `isf:${file}`);
        const b = new SymbolTableBuilder();
        for (const [name, sym] of isf.symbols.byName) b.add(name, BigInt.asUintN(64, sym.address + shift), 'T');
        const table = b.build(`isf:${file} (KASLR shift applied)`);
        fileSymbols = table;
        fileTypes = isf.db;
        return { value: undefined, detail: `${table.count} symbols and types from ${file}` };
      });
    } else if (isSystemMap(file)) {
      step('system.map', () => {
        const map = loadSystemMap(file, { shift, source: `System.map:${file}` });
        fileSymbols = map.table;
        return { value: undefined, detail: `${map.table.count} symbols from ${file} (${map.skipped} lines skipped)` };
      });
    } else {
      step('btf-file', () => {
        fileTypes = typesFromFile(file);
        return { value: undefined, detail: `types from ${file}` };
      });
    }
  }

  const cacheDir = options.cache === false ? undefined : (options.cache ?? defaultCacheDir());
  const key = profileKey(buildId, banner || release);
  if (cacheDir && !file) {
    const hit = step('cache', () => {
      const entry = readCachedProfile(cacheDir, key);
      if (!entry) return { value: undefined, detail: `no entry ${key}` };
      if (entry.meta.release !== release || (banner && entry.meta.banner !== banner))
        return { value: undefined, detail: `entry ${key} is for ${entry.meta.release}, not ${release}: ignored` };
      const symbols = entry.symbols.shifted(shift, `${entry.meta.symbolsSource} (cached, KASLR shift applied)`);
      const why = symbolsMismatch(ks, symbols);
      if (why) return { value: undefined, detail: `entry ${key} does not match this kernel (${why}): ignored` };
      const types = new TypeDb(parseBtf(entry.btf, { source: `${entry.meta.typesSource} (cached)` }));
      return { value: { symbols, types }, detail: `entry ${key} verified against the live kernel` };
    });
    if (hit) {
      return {
        profile: { ...base, symbols: hit.symbols, types: hit.types, sources: { ...ks.sources, symbols: hit.symbols.source, types: hit.types.source, cache: key } },
        steps,
        cacheHit: true,
      };
    }
  }

  const symbols =
    fileSymbols ??
    step('kallsyms', () => {
      const r = loadKallsyms({ space: ks.space, mem, ...(ks.vmcoreinfo ? { vmcoreinfo: ks.vmcoreinfo } : {}), target: mem.target });
      return { value: r.table, detail: `${r.table.count} symbols by ${r.method} (${r.layout.order}, ${r.layout.addressing})${r.complete ? '' : ', INCOMPLETE'}` };
    });
  let btfBytes: Uint8Array | undefined;
  const types =
    fileTypes ??
    step('btf', () => {
      if (!symbols.has('__start_BTF'))
        throw new ProfileError('this kernel has no BTF (no __start_BTF symbol)', {
          symbol: '__start_BTF',
          tried: [symbols.source],
          hint: 'give an ISF for this kernel with --profile FILE.json(.xz)',
        });
      const btf = btfFromKernelSymbols(ks.space, symbols);
      btfBytes = btf.raw;
      return { value: new TypeDb(btf), detail: `${btf.count} types, ${btf.raw.length} bytes from guest memory` };
    });

  if (cacheDir && !file && btfBytes) {
    step('cache-write', () => {
      const linkTime = symbols.shifted(-shift, symbols.source);
      writeCachedProfile(cacheDir, {
        meta: {
          format: CACHE_FORMAT,
          key,
          release,
          banner,
          ...(buildId ? { buildId } : {}),
          symbolsSource: symbols.source,
          typesSource: types.source,
          symbolCount: linkTime.count,
          btfBytes: btfBytes!.length,
          created: new Date().toISOString(),
        },
        symbols: linkTime,
        btf: btfBytes!,
      });
      return { value: undefined, detail: `saved ${key} in ${cacheDir}` };
    });
  }
  return {
    profile: { ...base, symbols, types, sources: { ...ks.sources, symbols: symbols.source, types: types.source } },
    steps,
    cacheHit: false,
  };
}
