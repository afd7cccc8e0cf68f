/**
 * On-disk profile cache, keyed by the kernel's build-id (or the banner's hash
 * when a kernel has no build-id in vmcoreinfo). An entry holds what is slow to
 * rebuild: the decoded symbols (at link-time addresses, so KASLR does not
 * matter) and the BTF blob. An entry is never trusted blindly: the caller
 * checks it against the live kernel (release, banner, symbol spot checks)
 * and throws it away when it does not match.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { SymbolTable, type SymbolColumns } from './symbols.js';

export const CACHE_FORMAT = 1;

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
}

export function defaultCacheDir(): string {
  return join(process.env['VMSIGHT_CACHE'] ?? join(homedir(), '.cache', 'vmsight'), 'profiles');
}

/** The cache key of a kernel: its build-id, else a hash of its banner. */
export function profileKey(buildId: string | undefined, banner: string): string {
  if (buildId && /^[0-9a-f]{8,128}$/i.test(buildId)) return `build-${buildId.toLowerCase()}`;
  return `banner-${createHash('sha256').update(banner).digest('hex').slice(0, 32)}`;
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
    return { meta, symbols: decodeSymbols(sym, meta.symbolsSource, meta.symbolCount), btf: new Uint8Array(btf.buffer, btf.byteOffset, btf.length) };
  } catch {
    rmSync(base, { recursive: true, force: true });
    return undefined;
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
  writeFileSync(join(tmp, 'meta.json'), JSON.stringify(entry.meta, null, 2));
  rmSync(base, { recursive: true, force: true });
  renameSync(tmp, base);
}

// symbols.bin: u32 count, u32 nameBytes, then addresses (u64 × count), nameStarts (u32 × count+1),
// types (u8 × count), names (Latin-1). Core-kernel symbols only.
function encodeSymbols(t: SymbolTable): Buffer {
  const c = t.columns();
  const n = c.addresses.length;
  const names = Buffer.from(c.names, 'latin1');
  const out = Buffer.alloc(8 + n * 8 + (n + 1) * 4 + n + names.length);
  out.writeUInt32LE(n, 0);
  out.writeUInt32LE(names.length, 4);
  let p = 8;
  Buffer.from(c.addresses.buffer, c.addresses.byteOffset, n * 8).copy(out, p);
  p += n * 8;
  Buffer.from(c.nameStarts.buffer, c.nameStarts.byteOffset, (n + 1) * 4).copy(out, p);
  p += (n + 1) * 4;
  Buffer.from(c.types.buffer, c.types.byteOffset, n).copy(out, p);
  p += n;
  names.copy(out, p);
  return out;
}

function decodeSymbols(b: Buffer, source: string, expected: number): SymbolTable {
  const n = b.readUInt32LE(0);
  const nameLen = b.readUInt32LE(4);
  if (n !== expected || b.length !== 8 + n * 8 + (n + 1) * 4 + n + nameLen) throw new Error('symbols.bin size');
  // Copy into aligned typed arrays (the file buffer's offsets are not 8-aligned).
  let p = 8;
  const addresses = new BigUint64Array(n);
  new Uint8Array(addresses.buffer).set(b.subarray(p, p + n * 8));
  p += n * 8;
  const nameStarts = new Uint32Array(n + 1);
  new Uint8Array(nameStarts.buffer).set(b.subarray(p, p + (n + 1) * 4));
  p += (n + 1) * 4;
  const types = new Uint8Array(b.subarray(p, p + n));
  p += n;
  const columns: SymbolColumns = { names: b.toString('latin1', p, p + nameLen), nameStarts, addresses, types };
  return new SymbolTable(columns, source);
}
