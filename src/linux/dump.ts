/**
 * Writing guest data to disk (`--dump DIR`). File names are built from
 * guest-chosen strings (comm, paths), so they are sanitized: only
 * [A-Za-z0-9._-] survive, no leading dot, bounded length, and the final path
 * is checked to lie inside the output folder. Files are created without
 * following symlinks, so a planted link in the folder cannot redirect a write.
 */
import fs from 'node:fs';
import path from 'node:path';
import { UsageError } from '../core/errors.js';
import type { AddressSpace } from '../arch/address-space.js';

/** The `--dump DIR` option of plugins that can write regions to disk. */
export const DUMP_OPTION = { dump: { type: 'string' } } as const;

/** The dump folder the user asked for with --dump, if any. */
export function dumpDirFrom(options: { readonly dump?: string }): DumpDir | undefined {
  const dir = options.dump;
  return typeof dir === 'string' && dir ? new DumpDir(dir) : undefined;
}

/** Longest file name produced (ext4 allows 255 bytes). */
export const MAX_DUMP_NAME = 200;
/** Largest region written per file; bigger regions are cut (and say so). */
export const MAX_DUMP_BYTES = 256 << 20;

/** A file-name-safe rendering of guest-chosen parts, joined with '.'. */
export function safeFileName(parts: readonly (string | number | bigint)[]): string {
  const text = parts
    .map((p) => (typeof p === 'bigint' ? `0x${p.toString(16)}` : String(p)))
    .join('.')
    .replace(/[^A-Za-z0-9._-]/g, '_')
    .replace(/^[.]+/, '_')
    .replace(/\.{2,}/g, '_');
  const name = text.slice(0, MAX_DUMP_NAME) || '_';
  return name === '.' || name === '..' ? '_' : name;
}

export class DumpDir {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = path.resolve(dir);
    try {
      fs.mkdirSync(this.dir, { recursive: true });
    } catch (e) {
      throw new UsageError(`cannot create dump folder ${this.dir}: ${(e as Error).message}`);
    }
    if (!fs.statSync(this.dir).isDirectory()) throw new UsageError(`dump path ${this.dir} is not a folder`);
  }

  /** The path a dump with these name parts gets (inside the folder, always). */
  pathFor(parts: readonly (string | number | bigint)[]): string {
    const full = path.join(this.dir, safeFileName(parts));
    const rel = path.relative(this.dir, full);
    if (!rel || rel.startsWith('..') || path.isAbsolute(rel) || rel.includes(path.sep)) throw new UsageError(`refusing dump name outside ${this.dir}`);
    return full;
  }

  /** Writes bytes to a new file (replacing a regular file of that name, never following a symlink). */
  write(parts: readonly (string | number | bigint)[], bytes: Uint8Array): string {
    const file = this.pathFor(parts);
    const { O_WRONLY, O_CREAT, O_TRUNC, O_NOFOLLOW } = fs.constants;
    let fd: number;
    try {
      fd = fs.openSync(file, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0o600);
    } catch (e) {
      throw new UsageError(`cannot write dump file ${file}: ${(e as Error).message}`, { hint: 'give --dump an empty folder you own' });
    }
    try {
      let off = 0;
      while (off < bytes.length) off += fs.writeSync(fd, bytes, off, bytes.length - off);
    } finally {
      fs.closeSync(fd);
    }
    return file;
  }

  /**
   * Dumps [start, end) of an address space; unmapped pages are written as
   * zeros. Returns the file and how many bytes could not be read.
   */
  writeRegion(parts: readonly (string | number | bigint)[], space: AddressSpace, start: bigint, end: bigint): { file: string; unreadable: number; truncated: boolean } {
    const want = end > start ? end - start : 0n;
    const len = Number(want > BigInt(MAX_DUMP_BYTES) ? BigInt(MAX_DUMP_BYTES) : want);
    const op = { va: start, len };
    const failures = space.readv([op]);
    const unreadable = failures.reduce((a, f) => a + f.len, 0);
    const file = this.write(parts, (op as { dst?: Uint8Array }).dst ?? new Uint8Array(len));
    return { file, unreadable, truncated: BigInt(len) < want };
  }
}
