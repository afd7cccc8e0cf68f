/**
 * Writing guest data to disk (`--dump DIR`). File names are built from
 * guest-chosen strings (comm, paths), so they are sanitized: only
 * [A-Za-z0-9._-] survive, no leading dot, bounded length, and the final path
 * is checked to lie inside the output folder. Files are created without
 * following symlinks, so a planted link in the folder cannot redirect a write.
 */
import fs from 'node:fs';
import path from 'node:path';
import { crypto } from '../core/builtins.js';
import { UsageError } from '../core/errors.js';
import type { AddressSpace } from '../arch/address-space.js';
import { gva } from '../core/address.js';

/** The `--dump DIR` option of plugins that can write regions to disk. */
export const DUMP_OPTION = { dump: { type: 'string', valueName: 'DIR', description: 'also write the regions found to files in DIR', byDefault: 'nothing written' } } as const;

/** The dump folder the user asked for with --dump, if any. */
export function dumpDirFrom(options: { readonly dump?: string }): DumpDir | undefined {
  const dir = options.dump;
  return typeof dir === 'string' && dir ? new DumpDir(dir) : undefined;
}

/** One mapping of an image: [start, end) of an address space, at fileOffset in the image. */
export interface ImagePiece {
  readonly space: AddressSpace;
  readonly start: bigint;
  readonly end: bigint;
  readonly fileOffset: bigint;
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
    const fd = openNew(file);
    try {
      let off = 0;
      while (off < bytes.length) off += fs.writeSync(fd, bytes, off, bytes.length - off);
    } finally {
      fs.closeSync(fd);
    }
    return file;
  }

  /**
   * Writes an image made of several mapped pieces (an ELF's mappings), each
   * at its file offset, in file-offset order; gaps and unreadable pages are
   * zeros. The file is cut at MAX_DUMP_BYTES (pieces past it are left out
   * and `truncated` says so): offsets are guest data.
   */
  writeImage(parts: readonly (string | number | bigint)[], pieces: readonly ImagePiece[]): { file: string; unreadable: number; truncated: boolean } {
    const cap = BigInt(MAX_DUMP_BYTES);
    const sorted = [...pieces].sort((a, b) => (a.fileOffset < b.fileOffset ? -1 : a.fileOffset > b.fileOffset ? 1 : 0));
    let size = 0n;
    let truncated = false;
    for (const p of sorted) {
      const end = p.fileOffset + (p.end > p.start ? p.end - p.start : 0n);
      if (end > cap) truncated = true;
      if (end > size) size = end > cap ? cap : end;
    }
    const buf = new Uint8Array(Number(size));
    let unreadable = 0;
    for (const p of sorted) {
      if (p.fileOffset >= size) continue;
      const want = p.end > p.start ? p.end - p.start : 0n;
      const len = Number(p.fileOffset + want > size ? size - p.fileOffset : want);
      const off = Number(p.fileOffset);
      const dst = buf.subarray(off, off + len);
      for (const f of p.space.readv([{ va: gva(p.start), len, dst }])) unreadable += f.len; // zero-filled by readv
    }
    return { file: this.write(parts, buf), unreadable, truncated };
  }

  /**
   * Writes a file of `size` bytes (cut at MAX_DUMP_BYTES) from pieces at
   * increasing offsets; the gaps between them are zeros (a sparse file).
   * Returns the file, the bytes written from pieces, and the SHA-256 of the
   * whole file as written (gaps hashed as the zeros they read as).
   */
  writeSparse(
    parts: readonly (string | number | bigint)[],
    size: number,
    pieces: Iterable<{ readonly offset: number; readonly bytes: Uint8Array }>,
  ): { file: string; size: number; written: number; sha256: string; truncated: boolean } {
    const cap = Math.min(size, MAX_DUMP_BYTES);
    const file = this.pathFor(parts);
    const fd = openNew(file);
    const hash = crypto().createHash('sha256');
    const zeros = new Uint8Array(1 << 20);
    let at = 0;
    let written = 0;
    const hashZerosTo = (end: number): void => {
      while (at < end) {
        const n = Math.min(zeros.length, end - at);
        hash.update(zeros.subarray(0, n));
        at += n;
      }
    };
    try {
      fs.ftruncateSync(fd, cap);
      for (const p of pieces) {
        if (p.offset < at) continue; // out of order or overlapping: guest data, skip it
        if (p.offset >= cap) break;
        const bytes = p.bytes.subarray(0, Math.min(p.bytes.length, cap - p.offset));
        hashZerosTo(p.offset);
        let off = 0;
        while (off < bytes.length) off += fs.writeSync(fd, bytes, off, bytes.length - off, p.offset + off);
        hash.update(bytes);
        at += bytes.length;
        written += bytes.length;
      }
      hashZerosTo(cap);
    } finally {
      fs.closeSync(fd);
    }
    return { file, size: cap, written, sha256: hash.digest('hex'), truncated: cap < size };
  }

  /**
   * Dumps [start, end) of an address space; unmapped pages are written as
   * zeros. Returns the file and how many bytes could not be read.
   */
  writeRegion(parts: readonly (string | number | bigint)[], space: AddressSpace, start: bigint, end: bigint): { file: string; unreadable: number; truncated: boolean } {
    const want = end > start ? end - start : 0n;
    const len = Number(want > BigInt(MAX_DUMP_BYTES) ? BigInt(MAX_DUMP_BYTES) : want);
    const op = { va: gva(start), len };
    const failures = space.readv([op]);
    const unreadable = failures.reduce((a, f) => a + f.len, 0);
    const file = this.write(parts, (op as { dst?: Uint8Array }).dst ?? new Uint8Array(len));
    return { file, unreadable, truncated: BigInt(len) < want };
  }
}

/** Opens a dump file for writing: created or truncated, mode 0600, never through a symlink. */
function openNew(file: string): number {
  const { O_WRONLY, O_CREAT, O_TRUNC, O_NOFOLLOW } = fs.constants;
  try {
    return fs.openSync(file, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0o600);
  } catch (e) {
    throw new UsageError(`cannot write dump file ${file}: ${(e as Error).message}`, { hint: 'give --dump an empty folder you own' });
  }
}
