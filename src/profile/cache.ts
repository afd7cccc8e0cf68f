/**
 * On-disk profile cache, keyed by the kernel's build-id (or the banner's hash
 * when a kernel has no build-id in vmcoreinfo). An entry holds what is slow to
 * rebuild: the decoded symbols (at link-time addresses, so KASLR does not
 * matter) with their name index, and the BTF blob. An entry is never trusted
 * blindly: the caller checks it against the live kernel (release, banner,
 * symbol spot checks) and throws it away when it does not match.
 *
 * symbols.bin is laid out so that reading it is one file read and a few
 * typed-array views: no per-symbol work, no BigInt per address.
 */
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { crypto, zlib } from '../core/builtins.js';
import { SymbolTable, type SymbolColumns } from './symbols.js';

export const CACHE_FORMAT = 3;

export interface CachedProfileMeta {
  readonly format: number;
  readonly key: string;
  readonly release: string;
  readonly banner: string;
  readonly buildId?: string;
  /** Where the cached symbols and types were first read from. */
  readonly symbolsSource: string;
  readonly typesSource: string;
  readonly symbolCount: number;
  readonly btfBytes: number;
  readonly created: string;
}

export interface CachedProfile {
  readonly meta: CachedProfileMeta;
  /** Symbols at link-time addresses (shift by KERNELOFFSET to use). */
  readonly symbols: SymbolTable;
  readonly btf: Uint8Array;
  /** BtfTypes.recordOffsets() of `btf`, when stored and its checksums hold. */
  readonly btfOffsets?: Uint32Array;
}

/** zlib's CRC-32 (Node ≥ 20.15); without it the cache still works, it just rebuilds the indexes. */
function crc32(data: Uint8Array): number {
  return (zlib() as { crc32?: (data: Uint8Array) => number }).crc32!(data);
}

function hasCrc32(): boolean {
  return typeof (zlib() as { crc32?: unknown }).crc32 === 'function';
}

export function defaultCacheDir(): string {
  return join(process.env['VMSIGHT_CACHE'] ?? join(homedir(), '.cache', 'vmsight'), 'profiles');
}

/** The cache key of a kernel: its build-id, else a hash of its banner. */
export function profileKey(buildId: string | undefined, banner: string): string {
  if (buildId && /^[0-9a-f]{8,128}$/i.test(buildId)) return `build-${buildId.toLowerCase()}`;
  return `banner-${crypto().createHash('sha256').update(banner).digest('hex').slice(0, 32)}`;
}

/** Reads an entry, or undefined when absent or unreadable (a broken entry is removed). */
export function readCachedProfile(dir: string, key: string): CachedProfile | undefined {
  const base = join(dir, key);
  let meta: CachedProfileMeta;
  try {
    meta = JSON.parse(readFileSync(join(base, 'meta.json'), 'utf8')) as CachedProfileMeta;
  } catch {
    return undefined;
  }
  try {
    if (meta.format !== CACHE_FORMAT || meta.key !== key) throw new Error('format');
    const sym = readFileSync(join(base, 'symbols.bin'));
    const btf = readFileSync(join(base, 'vmlinux.btf'));
    if (btf.length !== meta.btfBytes) throw new Error('btf size');
    const btfBytes = new Uint8Array(btf.buffer, btf.byteOffset, btf.length);
    const btfOffsets = readBtfOffsets(join(base, 'btf-offsets.bin'), btfBytes);
    return { meta, symbols: decodeSymbols(sym, meta.symbolsSource, meta.symbolCount), btf: btfBytes, ...(btfOffsets ? { btfOffsets } : {}) };
  } catch {
    rmSync(base, { recursive: true, force: true });
    return undefined;
  }
}

/** Where recent guests kept their vmcoreinfo (guest-physical), newest first: the bootstrap probes these before scanning. */
const RECENT_FILE = 'vmcoreinfo-at.json';
const RECENT_MAX = 8;

export function recentVmcoreinfo(dir: string): number[] {
  try {
    const v = JSON.parse(readFileSync(join(dir, RECENT_FILE), 'utf8')) as { pas?: unknown };
    if (!Array.isArray(v.pas)) return [];
    return v.pas.filter((p): p is number => Number.isSafeInteger(p) && (p as number) >= 0).slice(0, RECENT_MAX);
  } catch {
    return [];
  }
}

/** Puts `pa` first in the recent list (no write when it already is). Best effort: a read-only cache is fine. */
export function rememberVmcoreinfo(dir: string, pa: number): void {
  const old = recentVmcoreinfo(dir);
  if (old[0] === pa) return;
  const pas = [pa, ...old.filter((p) => p !== pa)].slice(0, RECENT_MAX);
  try {
    mkdirSync(dir, { recursive: true });
    const tmp = join(dir, `${RECENT_FILE}.tmp-${process.pid}`);
    writeFileSync(tmp, JSON.stringify({ pas }));
    renameSync(tmp, join(dir, RECENT_FILE));
  } catch {
    // The cache is an optimisation.
  }
}

/** Writes an entry atomically (a temp directory renamed into place). */
export function writeCachedProfile(dir: string, entry: CachedProfile): void {
  const base = join(dir, entry.meta.key);
  const tmp = `${base}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  writeFileSync(join(tmp, 'symbols.bin'), encodeSymbols(entry.symbols));
  writeFileSync(join(tmp, 'vmlinux.btf'), entry.btf);
  if (entry.btfOffsets && hasCrc32()) writeFileSync(join(tmp, 'btf-offsets.bin'), encodeBtfOffsets(entry.btfOffsets, entry.btf));
  writeFileSync(join(tmp, 'meta.json'), JSON.stringify(entry.meta, null, 2));
  rmSync(base, { recursive: true, force: true });
  renameSync(tmp, base);
}

// symbols.bin (format 2), little-endian, every array at a 4- or 8-aligned offset:
//   magic "VMSYMS03", u32 count, u32 nameBytes, u32 slotCount, u32 crc32 of the rest, u32 × 2 reserved   (32 bytes)
//   addresses u64 × count | nameStarts u32 × count+1 | hashes u32 × count | sameName u32 × count
//   | slots u32 × slotCount | types u8 × count | names (Latin-1). Core-kernel symbols only.
const MAGIC = Buffer.from('VMSYMS03', 'latin1');
const HEADER = 32;

function layout(n: number, nameLen: number, slotCount: number) {
  const addresses = HEADER;
  const nameStarts = addresses + 8 * n;
  const hashes = nameStarts + 4 * (n + 1);
  const sameName = hashes + 4 * n;
  const slots = sameName + 4 * n;
  const types = slots + 4 * slotCount;
  const names = types + n;
  return { addresses, nameStarts, hashes, sameName, slots, types, names, total: names + nameLen };
}

export function encodeSymbols(t: SymbolTable): Buffer {
  const c = t.columns();
  const n = c.addresses.length;
  const names = Buffer.from(c.names, 'latin1');
  const { slots, sameName } = t.nameIndex();
  const hashes = c.hashes ?? t.nameHashes();
  const at = layout(n, names.length, slots.length);
  const out = Buffer.alloc(at.total);
  MAGIC.copy(out, 0);
  out.writeUInt32LE(n, 8);
  out.writeUInt32LE(names.length, 12);
  out.writeUInt32LE(slots.length, 16);
  const put = (a: ArrayBufferView, off: number) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).copy(out, off);
  put(c.addresses, at.addresses);
  put(c.nameStarts, at.nameStarts);
  put(hashes, at.hashes);
  put(sameName, at.sameName);
  put(slots, at.slots);
  put(c.types, at.types);
  names.copy(out, at.names);
  out.writeUInt32LE(hasCrc32() ? crc32(out.subarray(HEADER)) : 0, 20);
  return out;
}

export function decodeSymbols(file: Buffer, source: string, expected: number): SymbolTable {
  if (file.length < HEADER || !file.subarray(0, 8).equals(MAGIC)) throw new Error('symbols.bin magic');
  const n = file.readUInt32LE(8);
  const nameLen = file.readUInt32LE(12);
  const slotCount = file.readUInt32LE(16);
  const at = layout(n, nameLen, slotCount);
  if (n !== expected || file.length !== at.total) throw new Error('symbols.bin size');
  // The checksum vouches for the name index: adopted as is (no scan), and a damaged file is refused.
  const sum = file.readUInt32LE(20);
  if (hasCrc32() && crc32(file.subarray(HEADER)) !== sum) throw new Error('symbols.bin checksum');
  // Views straight over the file bytes when they are 8-aligned (a large read has its own buffer), else one copy.
  const b = file.byteOffset % 8 === 0 ? file : Buffer.from(new Uint8Array(file));
  const u32 = (off: number, len: number) => new Uint32Array(b.buffer, b.byteOffset + off, len);
  const nameStarts = u32(at.nameStarts, n + 1);
  const columns: SymbolColumns = {
    names: b.toString('latin1', at.names, at.names + nameLen),
    nameBytes: new Uint8Array(b.buffer, b.byteOffset + at.names, nameLen),
    nameStarts,
    addresses: new BigUint64Array(b.buffer, b.byteOffset + at.addresses, n),
    types: new Uint8Array(b.buffer, b.byteOffset + at.types, n),
    hashes: u32(at.hashes, n),
  };
  if (nameStarts[0] !== 0 || nameStarts[n] !== nameLen) throw new Error('symbols.bin name offsets');
  // Without a checksum to vouch for it the index is rebuilt on first lookup.
  return hasCrc32() ? new SymbolTable(columns, source, { slots: u32(at.slots, slotCount), sameName: u32(at.sameName, n) }) : new SymbolTable(columns, source);
}

// btf-offsets.bin: magic "VMBTFO01", u32 count, u32 crc32 of the offsets, u32 crc32 of vmlinux.btf, u32 reserved,
// then u32 × count. Optional: without it (or with a checksum that fails) the BTF is indexed again.
const BTF_MAGIC = Buffer.from('VMBTFO01', 'latin1');
const BTF_HEADER = 24;

function encodeBtfOffsets(offsets: Uint32Array, btf: Uint8Array): Buffer {
  const out = Buffer.alloc(BTF_HEADER + offsets.byteLength);
  BTF_MAGIC.copy(out, 0);
  out.writeUInt32LE(offsets.length, 8);
  Buffer.from(offsets.buffer, offsets.byteOffset, offsets.byteLength).copy(out, BTF_HEADER);
  out.writeUInt32LE(crc32(out.subarray(BTF_HEADER)), 12);
  out.writeUInt32LE(crc32(btf), 16);
  return out;
}

function readBtfOffsets(path: string, btf: Uint8Array): Uint32Array | undefined {
  if (!hasCrc32()) return undefined;
  let file: Buffer;
  try {
    file = readFileSync(path);
  } catch {
    return undefined;
  }
  if (file.length < BTF_HEADER || !file.subarray(0, 8).equals(BTF_MAGIC)) return undefined;
  const n = file.readUInt32LE(8);
  if (file.length !== BTF_HEADER + 4 * n) return undefined;
  if (crc32(file.subarray(BTF_HEADER)) !== file.readUInt32LE(12) || crc32(btf) !== file.readUInt32LE(16)) return undefined;
  const b = file.byteOffset % 4 === 0 ? file : Buffer.from(new Uint8Array(file));
  return new Uint32Array(b.buffer, b.byteOffset + BTF_HEADER, n);
}
