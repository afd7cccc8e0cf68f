/**
 * Where vmlinux BTF comes from: guest memory (`__start_BTF`…`__stop_BTF`,
 * found through kallsyms), a `/sys/kernel/btf/vmlinux` copy, a vmlinux ELF's
 * `.BTF` section, or a vmlinuz (bzImage) whose payload we decompress.
 */
import { readFileSync } from 'node:fs';
import { FormatError, ProfileError, SourceError, VmsightError } from '../../core/errors.js';
import { BTF_HEADER_MIN, BTF_MAGIC, btfBuffer, BtfTypes, parseBtfHeader, type BtfParseOptions } from '../btf.js';
import { lookupSymbol, type SymbolLookup } from '../globals.js';
import type { ObjValue, Typed } from '../typed.js';
import { elfSection, extractVmlinux, isBzImage, isElf } from '../vmlinux.js';

/** A kernel virtual address space (AddressSpace satisfies it). Throws FaultError. */
export interface KernelMemory {
  read(va: bigint, len: number): Uint8Array;
  /** The same bytes into the caller's buffer (the BTF blob goes into one its indexing pass uses in place). */
  readInto?(va: bigint, dst: Uint8Array): void;
}


/** Largest BTF blob we accept from memory: kernels carry 3–5 MiB. */
export const MAX_BTF_BYTES = 64 << 20;

/**
 * Reads vmlinux BTF from guest memory between `start` and `stop` (the
 * `__start_BTF`/`__stop_BTF` symbols). Checks the magic, hdr_len 24 and that
 * the header's sections fill exactly the span between the symbols.
 */
export function btfFromMemory(mem: KernelMemory, start: bigint, stop: bigint, opts: BtfParseOptions = {}): BtfTypes {
  const source = opts.source ?? 'btf:memory';
  const span = stop - start;
  if (span < BigInt(BTF_HEADER_MIN) || span > BigInt(MAX_BTF_BYTES)) {
    throw new ProfileError(`__stop_BTF - __start_BTF = ${span} bytes is not a plausible BTF size`, {
      symbol: '__start_BTF',
      tried: [source],
    });
  }
  const head = mem.read(start, BTF_HEADER_MIN);
  const dv = new DataView(head.buffer, head.byteOffset, head.byteLength);
  if (dv.getUint16(0, true) !== BTF_MAGIC) {
    throw new FormatError(source, `no BTF magic at __start_BTF 0x${start.toString(16)} (found 0x${dv.getUint16(0, true).toString(16)})`, { offset: 0 });
  }
  if (dv.getUint32(4, true) !== BTF_HEADER_MIN) {
    throw new FormatError(source, `vmlinux BTF at 0x${start.toString(16)} has hdr_len ${dv.getUint32(4, true)}, expected 24`, { offset: 4 });
  }
  const bytes = readBlob(mem, start, Number(span));
  const h = parseBtfHeader(bytes, source);
  if (h.totalLen !== bytes.length) {
    throw new FormatError(source, `BTF header describes ${h.totalLen} bytes but __start_BTF..__stop_BTF spans ${bytes.length}`, { offset: 8 });
  }
  return new BtfTypes(bytes, { ...opts, source });
}

/** `len` bytes at `start`, into a buffer the BTF indexing pass can use in place when the memory reads into one. */
function readBlob(mem: KernelMemory, start: bigint, len: number): Uint8Array {
  if (!mem.readInto) return mem.read(start, len);
  const dst = btfBuffer(len);
  mem.readInto(start, dst);
  return dst;
}

/** vmlinux BTF from guest memory, located through the kernel symbol table. */
export function btfFromKernelSymbols(mem: KernelMemory, symbols: SymbolLookup, opts: BtfParseOptions = {}): BtfTypes {
  const start = lookupSymbol(symbols, '__start_BTF');
  const stop = lookupSymbol(symbols, '__stop_BTF');
  if (start === undefined || stop === undefined) {
    throw new ProfileError('the kernel has no __start_BTF/__stop_BTF symbols (built without CONFIG_DEBUG_INFO_BTF)', {
      symbol: start === undefined ? '__start_BTF' : '__stop_BTF',
      tried: ['kallsyms'],
      hint: 'give a Volatility ISF for this kernel with --profile FILE',
    });
  }
  return btfFromMemory(mem, start, stop, opts);
}

/** Largest module BTF we accept (real ones are a few KiB to a few hundred KiB). */
export const MAX_MODULE_BTF_BYTES = 16 << 20;
/** Bound on the btf_modules walk. */
export const MAX_MODULES = 4096;

export interface ModuleBtf {
  /** Module name (struct btf.name). */
  readonly name: string;
  readonly btf: BtfTypes;
}

export interface ModuleBtfs {
  readonly modules: readonly ModuleBtf[];
  /** Modules whose BTF could not be read or parsed, and walk problems (cycle, limit). */
  readonly anomalies: readonly string[];
}

/**
 * Split BTF of every loaded module, from guest memory, parsed over the
 * vmlinux BTF. The module loader clears `struct module.btf_data` once a
 * module's init has run (its .BTF section is not kept), so we read the
 * kernel's own copies: the `btf_modules` list (kernel/bpf/btf.c) of
 * `struct btf_module`, each pointing to a `struct btf` whose `data` /
 * `data_size` hold the blob. Since Linux kernel commit 36e68442d1af ("bpf:
 * Load and verify kernel module BTFs") (in v5.11); on older kernels or
 * without CONFIG_DEBUG_INFO_BTF_MODULES this throws ProfileError naming
 * the missing symbol or type. A module whose blob is unreadable or corrupt
 * is reported in `anomalies`, the others are still returned.
 */
export function moduleBtfsFromMemory(typed: Typed, symbols: SymbolLookup, base: BtfTypes): ModuleBtfs {
  const head = lookupSymbol(symbols, 'btf_modules');
  if (head === undefined) {
    throw new ProfileError('the kernel keeps no module BTF (no btf_modules symbol: before v5.11 or CONFIG_DEBUG_INFO_BTF_MODULES off)', {
      symbol: 'btf_modules',
      tried: ['kallsyms'],
    });
  }
  if (!typed.has('btf_module', 'btf') || !typed.has('btf', 'data_size')) {
    throw new ProfileError('the profile has no struct btf_module/btf layout to read module BTF with', { type: 'btf_module', tried: [typed.db.source] });
  }
  const modules: ModuleBtf[] = [];
  const anomalies: string[] = [];
  const seen = new Set<bigint>();
  let next = typed.obj('struct list_head', head).read().ptr('next');
  for (let i = 0; next !== head; i++) {
    if (i >= MAX_MODULES) {
      anomalies.push(`btf_modules: stopped after ${MAX_MODULES} entries`);
      break;
    }
    if (seen.has(next)) {
      anomalies.push(`btf_modules: cycle at 0x${next.toString(16)}`);
      break;
    }
    seen.add(next);
    const entry = typed.containerOf(next, 'btf_module', 'list').read();
    next = entry.member('list').ptr('next');
    let name = `btf_module@0x${entry.address.toString(16)}`;
    try {
      const b = entry.obj('btf')?.read();
      if (!b) {
        anomalies.push(`${name}: no struct btf`);
        continue;
      }
      name = b.str('name') || name;
      modules.push({ name, btf: btfFromStructBtf(b, base, `btf:memory:${name}`) });
    } catch (e) {
      if (!(e instanceof VmsightError)) throw e;
      anomalies.push(`${name}: ${e.message}`);
    }
  }
  return { modules, anomalies };
}

/** Parses the blob a kernel `struct btf` holds (data, data_size), split over `base` when it has a base_btf. */
export function btfFromStructBtf(b: ObjValue, base: BtfTypes | undefined, source: string): BtfTypes {
  const va = b.ptr('data');
  const size = b.num('data_size');
  if (va === 0n || size < BTF_HEADER_MIN || size > MAX_MODULE_BTF_BYTES) {
    throw new FormatError(source, `struct btf at 0x${b.address.toString(16)} holds ${size} bytes at 0x${va.toString(16)}`, { offset: 0 });
  }
  const bytes = b.typed.mem.read(va, size);
  const h = parseBtfHeader(bytes, source);
  if (h.totalLen !== size) throw new FormatError(source, `BTF header describes ${h.totalLen} bytes, data_size says ${size}`, { offset: 8 });
  const split = b.has('base_btf') && b.ptr('base_btf') !== 0n;
  if (split && !base) throw new FormatError(source, 'split BTF needs the vmlinux BTF as its base', { offset: 0 });
  const btf = new BtfTypes(bytes, split ? { source, base: base! } : { source });
  if (split && b.has('start_id') && b.num('start_id') !== btf.firstId) {
    throw new FormatError(source, `module BTF starts at type id ${b.num('start_id')} in the kernel, ${btf.firstId} here (base BTF mismatch)`, { offset: 0 });
  }
  return btf;
}

export type BtfFileKind = 'btf' | 'elf' | 'bzImage';

/**
 * BTF from file bytes: a raw BTF blob (`/sys/kernel/btf/vmlinux`), an ELF
 * with a `.BTF` section (vmlinux or a module .ko, whose split BTF needs
 * `opts.base`), or a bzImage.
 */
export function btfFromFileBytes(bytes: Uint8Array, opts: BtfParseOptions & { source: string }): { btf: BtfTypes; kind: BtfFileKind } {
  const source = opts.source;
  if (bytes.length >= 2 && bytes[0] === 0x9f && bytes[1] === 0xeb) return { btf: new BtfTypes(bytes, opts), kind: 'btf' };
  if (isElf(bytes)) return { btf: new BtfTypes(needBtfSection(bytes, source), opts), kind: 'elf' };
  if (isBzImage(bytes)) return { btf: new BtfTypes(needBtfSection(extractVmlinux(bytes, source), source), opts), kind: 'bzImage' };
  throw new FormatError(source, 'neither BTF, an ELF with a .BTF section, nor a bzImage', { offset: 0 });
}

/** Loads BTF from a file (see btfFromFileBytes); errors name the path. */
export function loadBtfFile(path: string, opts: BtfParseOptions = {}): BtfTypes {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new SourceError('file', path, (e as Error).message, { cause: e });
  }
  return btfFromFileBytes(bytes, { ...opts, source: opts.source ?? `btf:${path}` }).btf;
}

function needBtfSection(elf: Uint8Array, source: string): Uint8Array {
  const s = elfSection(elf, '.BTF', source);
  if (!s || s.length === 0) {
    throw new ProfileError(`${source} has no .BTF section (kernel built without CONFIG_DEBUG_INFO_BTF)`, {
      tried: [source],
      hint: 'give a Volatility ISF for this kernel with --profile FILE',
    });
  }
  return s;
}
