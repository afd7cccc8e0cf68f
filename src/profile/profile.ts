/**
 * Builds the kernel profile (symbols + types + the facts that tie them to
 * memory) from the guest itself, in named steps that each say what they
 * tried: cache → kallsyms → BTF, or a user-supplied ISF / BTF / System.map.
 * The result is cached on disk by build-id; a cached entry is checked against
 * the live kernel before it is used.
 */
import { startProgress, type Progress } from '../core/progress.js';
import { existsSync, readFileSync } from 'node:fs';
import { FaultError, MissingFileError, ProfileError } from '../core/errors.js';
import type { PhysicalMemory } from '../memory/types.js';
import { parseBtf } from './btf.js';
import { btfFromFileBytes, btfFromKernelSymbols } from './btf/sources.js';
import { defaultCacheDir, profileKey, readCachedProfile, writeCachedProfile, CACHE_FORMAT, type CachedProfile } from './cache.js';
import { checkIsfMatches, importIsf, readIsfFile } from './isf.js';
import { firstThatReads, kernelImageReader, type KernelVirtualReader, loadKallsyms, readIntoFrom } from './kallsyms.js';
import { bannerAtSymbol, scanBanner, type Banner, type KernelSpace } from './kernel-space.js';
import { SymbolTable, SymbolTableBuilder } from './symbols.js';
import { loadSystemMap, looksLikeSystemMap } from './system-map.js';
import { TypeDb } from './types.js';
import { gva } from '../core/address.js';
import { monotonicMs } from '../core/clock.js';

/** What the profile says about the kernel, and where each fact came from. */
export interface KernelProfile {
  readonly release: string;
  readonly banner: string;
  readonly buildId?: string;
  readonly kaslr: { readonly virtualShift: bigint; readonly physBase: bigint };
  readonly pagingLevels: 4 | 5;
  readonly symbols: SymbolTable;
  readonly types: TypeDb;
  /** e.g. { vmcoreinfo: 'memory @0x18e2018', symbols: 'kallsyms:memory', types: 'btf:memory' }. */
  readonly sources: Readonly<Record<string, string>>;
}

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
  /** The kernel banner, when the bootstrap did not find it (it was read at linux_banner or scanned here). */
  readonly banner?: Banner;
}

/** Link-time KASLR shift: runtime address = link-time address + virtualShift. */
function shiftOf(ks: KernelSpace): bigint {
  return ks.kaslr?.virtualShift ?? 0n;
}

/** Reads `len` bytes at a kernel VA, or undefined when unmapped. */
function tryRead(ks: KernelSpace, va: bigint, len: number): Uint8Array | undefined {
  try {
    return ks.space.read(gva(va), len);
  } catch (e) {
    if (e instanceof FaultError) return undefined;
    throw e;
  }
}

/**
 * vmcoreinfo SYMBOL() keys that hold the symbol's own address (some, like
 * mem_section, hold the value of a pointer variable instead): spot checks.
 */
const SPOT_SYMBOLS = ['init_uts_ns', 'init_top_pgt', 'swapper_pg_dir', '_stext', 'node_online_map', 'prb', 'kallsyms_names', 'kallsyms_token_table', 'kallsyms_num_syms'];

/**
 * Checks that symbols fit the live kernel: `linux_banner` holds the banner,
 * `__start_BTF` holds BTF magic, and the symbols vmcoreinfo names
 * (init_uts_ns, init_top_pgt, …) sit where vmcoreinfo says. Returns why not,
 * or undefined when they fit.
 */
export function symbolsMismatch(ks: KernelSpace, symbols: SymbolTable, banner: string): string | undefined {
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
  for (const name of SPOT_SYMBOLS) {
    const va = ks.vmcoreinfo?.symbols.get(name);
    const mine = va === undefined ? undefined : symbols.tryAddress(name);
    if (va !== undefined && mine !== undefined && mine !== va) return `${name} is at 0x${mine.toString(16)}, vmcoreinfo says 0x${va.toString(16)}`;
  }
  return undefined;
}

/**
 * Checks a cache entry against the live kernel behind `ks` and returns its
 * symbols with this boot's KASLR shift, and the banner read at their
 * linux_banner (unless `banner` was known already). Returns why not, as a
 * phrase ("is for …", "does not match this kernel (…)").
 */
export function verifyCachedProfile(ks: KernelSpace, entry: CachedProfile, banner?: Banner): { symbols: SymbolTable; banner: Banner | undefined } | string {
  const release = ks.release ?? ks.vmcoreinfo?.release ?? 'unknown';
  if (entry.meta.release !== release) return `is for ${entry.meta.release}, not ${release}`;
  if (banner && entry.meta.banner !== banner.text) return `was made for the banner "${entry.meta.banner}", the kernel's is "${banner.text}"`;
  const symbols = entry.symbols.shifted(shiftOf(ks), `profile cache ${entry.meta.key} (KASLR shift applied; first decoded from ${entry.meta.symbolsSource})`);
  let found = banner;
  if (!found && ks.kaslr && ks.release) {
    const lb = symbols.tryAddress('linux_banner');
    const b = lb === undefined ? 'no linux_banner symbol' : bannerAtSymbol(ks, lb, 'cached symbols');
    if (typeof b === 'string') return `does not match this kernel (${b})`;
    if (b.text !== entry.meta.banner) return `was made for the banner "${entry.meta.banner}", the kernel's is "${b.text}"`;
    found = b;
  }
  const why = symbolsMismatch(ks, symbols, found?.text ?? entry.meta.banner);
  if (why) return `does not match this kernel (${why})`;
  return { symbols, banner: found };
}

function typesFromFile(path: string): TypeDb {
  const bytes = readFileSync(path);
  const { btf } = btfFromFileBytes(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length), { source: `btf:${path}` });
  return new TypeDb(btf);
}

/** What a --profile file holds: an ISF (symbols + types), a System.map (symbols) or BTF/a kernel image (types). */
export function profileFileKind(path: string): 'isf' | 'system.map' | 'btf' {
  if (/\.json(\.xz)?$/i.test(path)) return 'isf';
  if (/system\.map/i.test(path) || looksLikeSystemMap(readFileSync(path).subarray(0, 4096))) return 'system.map';
  return 'btf';
}

/** Loads the profile of the kernel behind `ks`, from the cache, the guest, or a given file. */
export function loadProfile(mem: PhysicalMemory, ks: KernelSpace, options: ProfileOptions = {}): LoadedProfile {
  // Over a slow technique (debugger stub, monitor reads) the kallsyms and BTF steps take seconds: say which runs.
  const progress = startProgress('profile', 'steps');
  try {
    return loadProfileSteps(mem, ks, options, progress);
  } finally {
    progress.end();
  }
}

function loadProfileSteps(mem: PhysicalMemory, ks: KernelSpace, options: ProfileOptions, progress: Progress): LoadedProfile {
  const steps: ProfileStep[] = [];
  const step = <T>(name: string, fn: () => { value: T; detail: string }): T => {
    progress.step(name);
    const t0 = monotonicMs();
    const { value, detail } = fn();
    steps.push({ step: name, ms: monotonicMs() - t0, detail });
    return value;
  };
  const release = ks.release ?? ks.vmcoreinfo?.release ?? 'unknown';
  const buildId = ks.vmcoreinfo?.buildId;
  const shift = shiftOf(ks);
  const file = options.profileFile;

  // The banner: from the bootstrap, else read at linux_banner once symbols are known (cheap), else by scanning.
  let banner: Banner | undefined = ks.banner;
  let bannerHow = ks.sources.banner;
  const canJudge = ks.kaslr !== undefined && ks.release !== undefined;
  const scan = (why: string): void => {
    if (banner || !canJudge) return;
    banner = step('banner', () => {
      const b = scanBanner(mem, ks);
      return { value: b, detail: b ? `scanned the kernel image (${why}): ${b.reason}` : `no banner in the kernel image (${why})` };
    });
    if (banner) bannerHow = `physical 0x${banner.pa.toString(16)}: ${banner.reason}`;
  };
  const fromSymbols = (symbols: SymbolTable, how: string): Banner | string => {
    const lb = symbols.tryAddress('linux_banner');
    return lb === undefined ? 'no linux_banner symbol' : bannerAtSymbol(ks, lb, how);
  };
  // An ISF is checked against the banner, and a kernel without build-id is cached by its banner: both need it first.
  if (file || !buildId) scan(file ? 'to check the given profile' : 'no build-id: the banner keys the cache');

  // A user-supplied profile file replaces the guest's own symbols or types.
  let fileSymbols: SymbolTable | undefined;
  let fileTypes: TypeDb | undefined;
  if (file) {
    if (!existsSync(file)) throw new MissingFileError('profile file', file, { hint: 'give --profile an ISF (.json/.json.xz), a BTF file, a vmlinux/vmlinuz or a System.map' });
    const bannerText = (banner as Banner | undefined)?.text ?? '';
    const kind = profileFileKind(file);
    if (kind === 'isf') {
      step('isf', () => {
        const json = readIsfFile(file);
        if (bannerText) checkIsfMatches(json, bannerText);
        const isf = importIsf(json, `isf:${file}`);
        const b = new SymbolTableBuilder();
        for (const [name, sym] of isf.symbols.byName) b.add(name, BigInt.asUintN(64, sym.address + shift), 'T');
        const table = b.build(`isf:${file} (KASLR shift applied)`);
        fileSymbols = table;
        fileTypes = isf.db;
        return { value: undefined, detail: `${table.count} symbols and types from ${file}` };
      });
    } else if (kind === 'system.map') {
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

  const finish = (symbols: SymbolTable, types: TypeDb, extra: Record<string, string>, cacheHit: boolean): LoadedProfile => {
    if (!banner) {
      const b = fromSymbols(symbols, symbols.source);
      if (typeof b !== 'string') {
        banner = b;
        bannerHow = `physical 0x${b.pa.toString(16)}: ${b.reason}`;
      } else scan(b);
    }
    const text = (banner as Banner | undefined)?.text ?? '';
    const profile: KernelProfile = {
      release,
      banner: text,
      ...(buildId ? { buildId } : {}),
      kaslr: { virtualShift: shift, physBase: ks.kaslr?.physBase ?? 0n },
      pagingLevels: ks.levels,
      symbols,
      types,
      sources: { ...ks.sources, banner: bannerHow, symbols: symbols.source, types: types.source, ...extra },
    };
    return { profile, steps, cacheHit, ...(banner ? { banner } : {}) };
  };

  const cacheDir = options.cache === false ? undefined : (options.cache ?? defaultCacheDir());
  const keyBanner = (banner as Banner | undefined)?.text ?? '';
  const key = profileKey(buildId, keyBanner || release);
  if (cacheDir && !file) {
    const hit = step('cache', () => {
      const entry = readCachedProfile(cacheDir, key);
      if (!entry) return { value: undefined, detail: `no entry ${key}` };
      const checked = verifyCachedProfile(ks, entry, banner);
      if (typeof checked === 'string') return { value: undefined, detail: `entry ${key} ${checked}: ignored` };
      const types = new TypeDb(
        parseBtf(entry.btf, { source: `profile cache ${entry.meta.key} (first read from ${entry.meta.typesSource})`, ...(entry.btfOffsets ? { recordOffsets: entry.btfOffsets } : {}) }),
      );
      return { value: { ...checked, types }, detail: `entry ${key} verified against the live kernel (banner, __start_BTF, vmcoreinfo symbols)` };
    });
    if (hit) {
      if (!banner && hit.banner) {
        banner = hit.banner;
        bannerHow = `physical 0x${hit.banner.pa.toString(16)}: ${hit.banner.reason}`;
      }
      return finish(hit.symbols, hit.types, { cache: key }, true);
    }
  }

  const symbols =
    fileSymbols ??
    step('kallsyms', () => {
      const r = loadKallsyms({ space: ks.space, mem, ...(ks.vmcoreinfo ? { vmcoreinfo: ks.vmcoreinfo } : {}), target: mem.target });
      return { value: r.table, detail: `${r.table.count} symbols by ${r.method} (${r.layout.order}, ${r.layout.addressing})${r.complete ? '' : ', INCOMPLETE'}` };
    });
  let btfBytes: Uint8Array | undefined;
  let btfOffsets: Uint32Array | undefined;
  const types =
    fileTypes ??
    step('btf', () => {
      if (!symbols.has('__start_BTF'))
        throw new ProfileError('this kernel has no BTF (no __start_BTF symbol)', {
          symbol: '__start_BTF',
          tried: [symbols.source],
          hint: 'give an ISF for this kernel with --profile FILE.json(.xz)',
        });
      // The blob lies in the kernel image: one linear read through phys_base (which the page tables
      // confirmed with vmcoreinfo; zero-copy on a mapped source) instead of a page walk per 4 KiB.
      // The page tables still answer where that faults.
      // The types keep the blob: copy it out of a mapped source (a view would die with the mapping at close).
      const physBase = ks.vmcoreinfo?.physBase;
      const linear = physBase !== undefined ? firstThatReads(kernelImageReader(mem, physBase), ks.space) : ks.space;
      const reader: KernelVirtualReader = mem.mapped ? { read: (va, len) => linear.read(va, len).slice(), readInto: (va, dst) => readIntoFrom(linear, va, dst) } : linear;
      const btf = btfFromKernelSymbols(reader, symbols);
      btfBytes = btf.raw;
      btfOffsets = btf.recordOffsets();
      return { value: new TypeDb(btf), detail: `${btf.count} types, ${btf.raw.length} bytes from guest memory` };
    });

  const loaded = finish(symbols, types, {}, false);
  if (cacheDir && !file && btfBytes) {
    step('cache-write', () => {
      const linkTime = symbols.shifted(-shift, symbols.source);
      writeCachedProfile(cacheDir, {
        meta: {
          format: CACHE_FORMAT,
          key,
          release,
          banner: loaded.profile.banner,
          ...(buildId ? { buildId } : {}),
          symbolsSource: symbols.source,
          typesSource: types.source,
          symbolCount: linkTime.count,
          btfBytes: btfBytes!.length,
          created: new Date().toISOString(),
        },
        symbols: linkTime,
        btf: btfBytes!,
        ...(btfOffsets ? { btfOffsets } : {}),
      });
      return { value: undefined, detail: `saved ${key} in ${cacheDir}` };
    });
  }
  return loaded;
}
