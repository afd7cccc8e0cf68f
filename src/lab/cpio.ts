/**
 * The "newc" cpio format (SVR4 without CRC, magic 070701) that the Linux
 * initramfs unpacker reads: a 110-byte ASCII header of 13 eight-digit hex
 * fields, the NUL-terminated name padded to 4 bytes, the data padded to 4
 * bytes, and a final entry named TRAILER!!!. The host has no cpio binary, so
 * the lab writes archives itself; the reader exists for tests and checks.
 */
import { FormatError } from '../core/errors.js';

export type CpioType = 'file' | 'dir' | 'symlink' | 'char' | 'block';

export interface CpioEntry {
  /** Path inside the archive, without a leading slash ('bin/busybox'). */
  path: string;
  type: CpioType;
  /** Permission bits (e.g. 0o755); the type bits are added from `type`. */
  mode: number;
  uid?: number;
  gid?: number;
  /** File contents (type 'file'). */
  data?: Uint8Array;
  /** Link target (type 'symlink'). */
  target?: string;
  /** Device numbers (types 'char' and 'block'). */
  rdevMajor?: number;
  rdevMinor?: number;
  /** Seconds since the epoch; 0 keeps archives reproducible. */
  mtime?: number;
}

const TYPE_BITS: Record<CpioType, number> = { file: 0o100000, dir: 0o040000, symlink: 0o120000, char: 0o020000, block: 0o060000 };
const MAGIC = '070701';
const HEADER_LEN = 110;
const TRAILER = 'TRAILER!!!';

function pad4(n: number): number {
  return (4 - (n % 4)) % 4;
}

function field(v: number, what: string, path: string): string {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new RangeError(`cpio ${what} ${v} of ${path} does not fit 32 bits`);
  return v.toString(16).padStart(8, '0');
}

function normalize(p: string): string {
  const parts = p.split('/').filter((s) => s !== '' && s !== '.');
  if (parts.some((s) => s === '..')) throw new RangeError(`cpio path ${p} escapes the archive root`);
  return parts.join('/');
}

/** Collects entries (creating missing parent directories) and serialises them in insertion order. */
export class CpioWriter {
  private readonly chunks: Buffer[] = [];
  private readonly seen = new Set<string>();
  private nextIno = 1;
  private size = 0;

  add(entry: CpioEntry): this {
    const path = normalize(entry.path);
    if (path === '') return this;
    if (this.seen.has(path)) throw new RangeError(`cpio path ${path} added twice`);
    const slash = path.lastIndexOf('/');
    if (slash > 0) this.ensureDir(path.slice(0, slash));
    this.seen.add(path);
    let data: Uint8Array;
    if (entry.type === 'file') data = entry.data ?? new Uint8Array(0);
    else if (entry.type === 'symlink') {
      if (!entry.target) throw new RangeError(`cpio symlink ${path} has no target`);
      data = Buffer.from(entry.target, 'utf8');
    } else data = new Uint8Array(0);
    const name = Buffer.from(path + '\0', 'utf8');
    const header =
      MAGIC +
      field(this.nextIno++, 'inode', path) +
      field(TYPE_BITS[entry.type] | (entry.mode & 0o7777), 'mode', path) +
      field(entry.uid ?? 0, 'uid', path) +
      field(entry.gid ?? 0, 'gid', path) +
      field(entry.type === 'dir' ? 2 : 1, 'nlink', path) +
      field(entry.mtime ?? 0, 'mtime', path) +
      field(data.byteLength, 'size', path) +
      field(0, 'devmajor', path) +
      field(0, 'devminor', path) +
      field(entry.rdevMajor ?? 0, 'rdevmajor', path) +
      field(entry.rdevMinor ?? 0, 'rdevminor', path) +
      field(name.byteLength, 'namesize', path) +
      field(0, 'check', path);
    this.push(Buffer.from(header, 'ascii'));
    this.push(name);
    this.push(Buffer.alloc(pad4(HEADER_LEN + name.byteLength)));
    if (data.byteLength) {
      this.push(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
      this.push(Buffer.alloc(pad4(data.byteLength)));
    }
    return this;
  }

  /** Adds `dir` and its parents unless present. */
  ensureDir(dir: string, mode = 0o755): this {
    const parts = normalize(dir).split('/');
    for (let i = 1; i <= parts.length; i++) {
      const p = parts.slice(0, i).join('/');
      if (p && !this.seen.has(p)) this.add({ path: p, type: 'dir', mode });
    }
    return this;
  }

  has(path: string): boolean {
    return this.seen.has(normalize(path));
  }

  /** The archive with its trailer. The writer must not be used afterwards. */
  finish(): Buffer {
    const name = Buffer.from(TRAILER + '\0', 'ascii');
    const header = MAGIC + '0'.repeat(8 * 4) + '00000001' + '0'.repeat(8 * 6) + field(name.byteLength, 'namesize', TRAILER) + '00000000';
    this.push(Buffer.from(header, 'ascii'));
    this.push(name);
    this.push(Buffer.alloc(pad4(HEADER_LEN + name.byteLength)));
    return Buffer.concat(this.chunks, this.size);
  }

  private push(b: Buffer): void {
    this.chunks.push(b);
    this.size += b.byteLength;
  }
}

/** Parses a newc archive (bounded by the buffer; any inconsistency is a FormatError). */
export function readCpio(buf: Uint8Array, file = 'cpio archive'): CpioEntry[] {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const out: CpioEntry[] = [];
  let off = 0;
  while (off + HEADER_LEN <= b.byteLength) {
    const magic = b.toString('ascii', off, off + 6);
    if (magic !== MAGIC) throw new FormatError(file, `bad cpio magic '${magic}' (want ${MAGIC}, newc)`, { offset: off });
    const f = (i: number): number => {
      const s = b.toString('ascii', off + 6 + i * 8, off + 14 + i * 8);
      if (!/^[0-9a-fA-F]{8}$/.test(s)) throw new FormatError(file, `bad cpio header field ${i} '${s}'`, { offset: off });
      return Number.parseInt(s, 16);
    };
    const mode = f(1);
    const size = f(6);
    const namesize = f(11);
    const nameStart = off + HEADER_LEN;
    if (namesize < 1 || nameStart + namesize > b.byteLength) throw new FormatError(file, 'cpio name runs past the end', { offset: off });
    const path = b.toString('utf8', nameStart, nameStart + namesize - 1);
    const dataStart = nameStart + namesize + pad4(HEADER_LEN + namesize);
    if (dataStart + size > b.byteLength) throw new FormatError(file, `cpio data of ${path} runs past the end`, { offset: off });
    if (path === TRAILER) return out;
    const data = b.subarray(dataStart, dataStart + size);
    const typeBits = mode & 0o170000;
    const type = (Object.keys(TYPE_BITS) as CpioType[]).find((t) => TYPE_BITS[t] === typeBits);
    if (!type) throw new FormatError(file, `cpio entry ${path} has unsupported type 0o${typeBits.toString(8)}`, { offset: off });
    const entry: CpioEntry = { path, type, mode: mode & 0o7777, uid: f(2), gid: f(3), mtime: f(5) };
    if (type === 'file') entry.data = data;
    if (type === 'symlink') entry.target = data.toString('utf8');
    if (type === 'char' || type === 'block') {
      entry.rdevMajor = f(9);
      entry.rdevMinor = f(10);
    }
    out.push(entry);
    off = dataStart + size + pad4(size);
  }
  throw new FormatError(file, 'cpio archive has no TRAILER!!! entry', { offset: off });
}
