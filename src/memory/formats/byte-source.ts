/**
 * Positioned byte access to a memory image, so that format parsers are pure
 * functions over bytes: the same parser runs on a synthesized buffer in a unit
 * test and on a 4 GiB dump read with `pread` (never loaded whole into RAM).
 */
import fs from 'node:fs';
import { FormatError, SourceError } from '../../core/errors.js';

export interface ByteSource {
  /** File name (or a label) for error messages. */
  readonly name: string;
  readonly size: number;
  /** Fills `dst` from `offset`; returns the number of bytes read (short only at EOF). */
  readAt(dst: Uint8Array, offset: number): number;
}

/** Reads exactly `len` bytes at `offset`, or throws a FormatError saying what was being read. */
export function bytesAt(src: ByteSource, offset: number, len: number, what: string): Uint8Array {
  if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(len) || len < 0 || offset + len > src.size) {
    throw new FormatError(src.name, `${what} (${len} bytes) extends beyond the end of the file (${src.size} bytes); truncated?`, {
      offset,
    });
  }
  const dst = new Uint8Array(len);
  const n = src.readAt(dst, offset);
  if (n !== len) throw new FormatError(src.name, `short read of ${what}: ${n} of ${len} bytes`, { offset });
  return dst;
}

export function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** A ByteSource over bytes in memory (tests, small images). */
export class BufferSource implements ByteSource {
  readonly size: number;
  constructor(
    readonly name: string,
    private readonly bytes: Uint8Array,
  ) {
    this.size = bytes.length;
  }
  readAt(dst: Uint8Array, offset: number): number {
    if (offset >= this.size) return 0;
    const n = Math.min(dst.length, this.size - offset);
    dst.set(this.bytes.subarray(offset, offset + n));
    return n;
  }
}

/** A ByteSource over an open file descriptor, read with positioned reads. */
export class FileSource implements ByteSource {
  private fd: number | undefined;
  readonly size: number;

  private constructor(
    readonly name: string,
    fd: number,
    size: number,
  ) {
    this.fd = fd;
    this.size = size;
  }

  /** Opens `path` read-only; missing or unreadable files are SourceErrors naming the file. */
  static open(path: string, technique = 'file'): FileSource {
    let fd: number;
    try {
      fd = fs.openSync(path, 'r');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const why =
        code === 'ENOENT'
          ? 'no such file'
          : code === 'EACCES'
            ? 'permission denied (QEMU creates dumps readable only by its own user: run as that user or root)'
            : `cannot open: ${(err as Error).message}`;
      throw new SourceError(technique, path, why, { cause: err });
    }
    const st = fs.fstatSync(fd);
    if (!st.isFile() && !st.isBlockDevice()) {
      fs.closeSync(fd);
      throw new SourceError(technique, path, 'not a regular file');
    }
    return new FileSource(path, fd, st.size);
  }

  readAt(dst: Uint8Array, offset: number): number {
    if (this.fd === undefined) throw new SourceError('file', this.name, 'read after close');
    let done = 0;
    // Bounded: each iteration either advances or stops at EOF.
    while (done < dst.length) {
      const n = fs.readSync(this.fd, dst, done, dst.length - done, offset + done);
      if (n <= 0) break;
      done += n;
    }
    return done;
  }

  close(): void {
    if (this.fd === undefined) return;
    fs.closeSync(this.fd);
    this.fd = undefined;
  }
}

/** The first `len` bytes of a file (fewer if it is shorter), or undefined when it cannot be read. */
export function sniffFile(path: string, len = 64): Uint8Array | undefined {
  let fd: number | undefined;
  try {
    fd = fs.openSync(path, 'r');
    const buf = new Uint8Array(len);
    const n = fs.readSync(fd, buf, 0, len, 0);
    return buf.subarray(0, n);
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** Several files read as one (one pmemsave file per RAM range). */
export class ConcatSource implements ByteSource {
  readonly size: number;
  private readonly bases: number[] = [];
  constructor(
    readonly name: string,
    private readonly parts: readonly FileSource[],
  ) {
    let base = 0;
    for (const p of parts) {
      this.bases.push(base);
      base += p.size;
    }
    this.size = base;
  }
  /** Offset of part `i` in the concatenation. */
  base(i: number): number {
    return this.bases[i]!;
  }
  readAt(dst: Uint8Array, offset: number): number {
    let done = 0;
    for (let i = 0; i < this.parts.length && done < dst.length; i++) {
      const b = this.bases[i]!;
      const p = this.parts[i]!;
      const at = offset + done;
      if (at < b || at >= b + p.size) continue;
      const n = Math.min(dst.length - done, b + p.size - at);
      const got = p.readAt(dst.subarray(done, done + n), at - b);
      done += got;
      if (got < n) break;
    }
    return done;
  }
  close(): void {
    for (const p of this.parts) p.close();
  }
}
