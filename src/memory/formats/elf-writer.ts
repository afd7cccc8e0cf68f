/**
 * Writes guest-physical memory as an ELF64 core, the layout QEMU's `dump-guest-memory` (paging:false)
 * produces and that vmsight and Volatility 3 both read: an ELF header, one PT_NOTE (the notes given), one
 * PT_LOAD per backed range (p_paddr = p_vaddr = the guest-physical start), each page-aligned in the file.
 * Written sequentially, so the SHA-256 of the file is computed as it is written. Read-only on the guest.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import { SourceError } from '../../core/errors.js';
import type { PhysicalMemory, PhysRange } from '../types.js';
import { gpa } from '../../core/address.js';

export interface ElfNoteSpec {
  readonly name: string;
  readonly type: number;
  readonly desc: Uint8Array;
}

export interface WriteElfOptions {
  readonly notes?: readonly ElfNoteSpec[];
  /** Called after each chunk with bytes of guest memory copied so far and the total. */
  readonly onProgress?: (done: number, total: number) => void;
  /** Bytes read per batch (default 4 MiB). */
  readonly chunk?: number;
  /** Asked between batches (the event loop runs there, so signals are seen): a reason stops the copy. */
  readonly stop?: () => string | undefined;
}

export interface WrittenElf {
  readonly file: string;
  readonly bytes: number;
  readonly sha256: string;
  readonly ranges: readonly PhysRange[];
  /** Guest-memory bytes that could not be read (zero-filled in the file), with the first reason. */
  readonly unreadBytes: number;
  readonly firstFailure?: string;
}

const PAGE = 4096;
const align = (n: number, a: number) => Math.ceil(n / a) * a;

/** One ELF note: namesz, descsz, type, name (NUL, 4-byte padded), desc (4-byte padded). */
export function encodeNote(n: ElfNoteSpec): Uint8Array {
  const name = Buffer.from(`${n.name}\0`, 'latin1');
  const out = new Uint8Array(12 + align(name.length, 4) + align(n.desc.length, 4));
  const v = new DataView(out.buffer);
  v.setUint32(0, name.length, true);
  v.setUint32(4, n.desc.length, true);
  v.setUint32(8, n.type, true);
  out.set(name, 12);
  out.set(n.desc, 12 + align(name.length, 4));
  return out;
}

/** Writes `memory`'s backed ranges to a new file `file` (never overwrites one; removed again on failure). */
export async function writeElfCore(memory: PhysicalMemory, file: string, options: WriteElfOptions = {}): Promise<WrittenElf> {
  const ranges = memory.ranges().filter((r) => r.end > r.start);
  const notes = Buffer.concat((options.notes ?? []).map(encodeNote));
  const phnum = ranges.length + 1;
  const phoff = 64;
  const notesAt = phoff + phnum * 56;
  let at = align(notesAt + notes.length, PAGE);
  const offsets = ranges.map((r) => {
    const o = at;
    at = align(at + (r.end - r.start), PAGE);
    return o;
  });

  const head = new Uint8Array(align(notesAt + notes.length, PAGE));
  const v = new DataView(head.buffer);
  head.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]); // ELF64, little-endian, version 1
  v.setUint16(16, 4, true); // ET_CORE
  v.setUint16(18, 62, true); // EM_X86_64
  v.setUint32(20, 1, true);
  v.setBigUint64(32, BigInt(phoff), true);
  v.setUint16(52, 64, true);
  v.setUint16(54, 56, true);
  v.setUint16(56, phnum, true);
  v.setUint16(58, 64, true);
  const ph = (i: number, type: number, offset: number, addr: number, size: number, align_: number) => {
    const b = phoff + i * 56;
    v.setUint32(b, type, true);
    v.setUint32(b + 4, type === 1 ? 7 : 0, true); // PT_LOAD: RWX, as QEMU writes it
    v.setBigUint64(b + 8, BigInt(offset), true);
    v.setBigUint64(b + 16, BigInt(addr), true);
    v.setBigUint64(b + 24, BigInt(addr), true);
    v.setBigUint64(b + 32, BigInt(size), true);
    v.setBigUint64(b + 40, BigInt(size), true);
    v.setBigUint64(b + 48, BigInt(align_), true);
  };
  ph(0, 4, notesAt, 0, notes.length, 4);
  ranges.forEach((r, i) => ph(i + 1, 1, offsets[i]!, r.start, r.end - r.start, 0));
  head.set(notes, notesAt);

  let fd: number;
  try {
    fd = fs.openSync(file, 'wx', 0o600);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new SourceError('acquire', file, code === 'EEXIST' ? 'already exists (acquire never overwrites)' : `cannot create: ${(e as Error).message}`, {
      hint: code === 'EEXIST' ? 'choose another -o FILE or remove it first' : 'check the directory exists and is writable',
    });
  }
  const hash = crypto.createHash('sha256');
  let written = 0;
  const put = (bytes: Uint8Array) => {
    let off = 0;
    while (off < bytes.length) off += fs.writeSync(fd, bytes, off, bytes.length - off);
    hash.update(bytes);
    written += bytes.length;
  };
  const total = ranges.reduce((n, r) => n + (r.end - r.start), 0);
  const chunk = options.chunk ?? 4 << 20;
  let done = 0;
  let unreadBytes = 0;
  let firstFailure: string | undefined;
  try {
    put(head);
    const buf = new Uint8Array(chunk);
    for (const [i, r] of ranges.entries()) {
      if (written < offsets[i]!) put(new Uint8Array(offsets[i]! - written));
      for (let a: number = r.start; a < r.end; a += chunk) {
        await new Promise((resolve) => setImmediate(resolve));
        const why = options.stop?.();
        if (why) throw new SourceError('acquire', file, `${why}; the partial file was removed`);
        const len = Math.min(chunk, r.end - a);
        const dst = buf.subarray(0, len);
        for (const f of memory.readv([{ addr: gpa(a), len, dst }])) {
          unreadBytes += f.len;
          firstFailure ??= `0x${f.addr.toString(16)}+0x${f.len.toString(16)}: ${f.reason}`;
        }
        put(dst);
        done += len;
        options.onProgress?.(done, total);
      }
    }
  } catch (e) {
    fs.closeSync(fd);
    fs.rmSync(file, { force: true });
    throw e;
  }
  fs.closeSync(fd);
  return {
    file,
    bytes: written,
    sha256: hash.digest('hex'),
    ranges: ranges.map((r) => ({ start: r.start, end: r.end, ...(r.name !== undefined ? { name: r.name } : {}) })),
    unreadBytes,
    ...(firstFailure !== undefined ? { firstFailure } : {}),
  };
}
