/**
 * Guest RAM out of a QEMU migration stream (what `migrate` writes, and what a
 * background snapshot writes). Facts about the format (big-endian throughout):
 *
 *   u32 'QEVM' magic, u32 version 3
 *   sections, each introduced by a type byte:
 *     0x07 CONFIGURATION  u32 len, machine name; optional subsections (0x05 …)
 *     0x01 START / 0x04 FULL  u32 section id, u8 len + idstr, u32 instance, u32 version, data
 *     0x02 PART  / 0x03 END   u32 section id, data
 *     0x7e FOOTER  u32 section id (after each section's data)
 *     0x08 COMMAND  u16 command, u16 len, data
 *     0x00 EOF, 0x06 VMDESCRIPTION (u32 len + JSON)
 *
 * The RAM section ('ram') data is a list of u64 headers: page offset inside a
 * RAM block in the high bits, flags in the low 12 bits:
 *     0x04 MEM_SIZE  (offset = total RAM bytes) followed by the block list:
 *                    per block u8 len + idstr, u64 used length
 *     0x02 ZERO      (block) u8 fill byte: the whole page is that byte
 *     0x08 PAGE      (block) 4096 raw bytes
 *     0x10 EOS       end of this section's RAM data
 *     0x20 CONTINUE  same block as the previous page, else u8 len + idstr follows
 *     0x40 XBZRLE, 0x100 COMPRESS_PAGE, 0x80 HOOK: encodings we refuse (turn off the capability)
 *     0x200 MULTIFD_FLUSH (QEMU ≥ 8.1): no payload
 * A page may be sent several times (pre-copy re-sends dirtied pages); the last
 * copy wins. Device state (FULL sections) is not self-describing, so parsing
 * stops once the RAM section has ended.
 */
import { FormatError } from '../../core/errors.js';
import type { ByteSource } from './byte-source.js';

const QEVM = 0x5145564d;
const PAGE = 4096;
const PAGE_MASK = PAGE - 1;

const F_ZERO = 0x02;
const F_MEM_SIZE = 0x04;
const F_PAGE = 0x08;
const F_EOS = 0x10;
const F_CONTINUE = 0x20;
const F_XBZRLE = 0x40;
const F_HOOK = 0x80;
const F_COMPRESS = 0x100;
const F_MULTIFD_FLUSH = 0x200;

const S_EOF = 0x00;
const S_START = 0x01;
const S_PART = 0x02;
const S_END = 0x03;
const S_FULL = 0x04;
const S_SUBSECTION = 0x05;
const S_VMDESC = 0x06;
const S_CONFIG = 0x07;
const S_COMMAND = 0x08;
const S_FOOTER = 0x7e;

const MAX_BLOCKS = 4096;

export interface MigrationBlock {
  readonly idstr: string;
  readonly length: number;
  /**
   * Per page of the block: the file offset of its 4096 bytes (≥ 0), or
   * -(fill + 1) for a page that is all one byte, or NaN when never sent.
   */
  readonly pages: Float64Array;
}

export interface MigrationImage {
  readonly machine?: string;
  readonly blocks: readonly MigrationBlock[];
  /** Times a page was sent again (pre-copy); 0 for a background snapshot. */
  readonly resentPages: number;
  readonly pagesSent: number;
}

export function isMigrationStream(head: Uint8Array): boolean {
  return head.length >= 8 && new DataView(head.buffer, head.byteOffset, 8).getUint32(0) === QEVM;
}

/** A forward-only buffered cursor over a ByteSource (1 MiB window). */
class Cursor {
  pos = 0;
  private buf = new Uint8Array(1 << 20);
  private bufStart = 0;
  private bufLen = 0;
  private dv = new DataView(this.buf.buffer);
  constructor(readonly src: ByteSource) {}

  private ensure(n: number, what: string): number {
    if (this.pos + n > this.src.size) {
      throw new FormatError(this.src.name, `migration stream ends inside ${what}; truncated?`, { offset: this.pos });
    }
    if (this.pos < this.bufStart || this.pos + n > this.bufStart + this.bufLen) {
      this.bufStart = this.pos;
      this.bufLen = this.src.readAt(this.buf, this.pos);
      if (this.bufLen < n) throw new FormatError(this.src.name, `short read inside ${what}`, { offset: this.pos });
    }
    const at = this.pos - this.bufStart;
    this.pos += n;
    return at;
  }
  u8(what: string): number {
    return this.buf[this.ensure(1, what)]!;
  }
  peek(): number | undefined {
    if (this.pos >= this.src.size) return undefined;
    const at = this.ensure(1, 'section type');
    this.pos--;
    return this.buf[at];
  }
  u16(what: string): number {
    return this.dv.getUint16(this.ensure(2, what));
  }
  u32(what: string): number {
    return this.dv.getUint32(this.ensure(4, what));
  }
  u64(what: string): number {
    const at = this.ensure(8, what);
    const hi = this.dv.getUint32(at);
    if (hi >= 0x200000) throw new FormatError(this.src.name, `absurd 64-bit value in ${what}`, { offset: this.pos - 8 });
    return hi * 0x1_0000_0000 + this.dv.getUint32(at + 4);
  }
  str(len: number, what: string): string {
    const at = this.ensure(len, what);
    return Buffer.from(this.buf.buffer, at, len).toString('latin1');
  }
  skip(n: number, what: string): void {
    if (this.pos + n > this.src.size) {
      throw new FormatError(this.src.name, `migration stream ends inside ${what}; truncated?`, { offset: this.pos });
    }
    this.pos += n;
  }
}

interface MutableBlock {
  idstr: string;
  length: number;
  pages: Float64Array;
}

export function parseMigrationStream(src: ByteSource): MigrationImage {
  const c = new Cursor(src);
  const fail = (msg: string, offset = c.pos): never => {
    throw new FormatError(src.name, msg, { offset });
  };
  if (src.size < 8) fail('too short for a QEMU migration stream', 0);
  if (c.u32('magic') !== QEVM) fail('not a QEMU migration stream (no QEVM magic)', 0);
  const version = c.u32('version');
  if (version !== 3) fail(`unsupported migration stream version ${version} (expected 3)`, 4);

  let machine: string | undefined;
  const blocks = new Map<string, MutableBlock>();
  let ramSection = -1;
  let ramDone = false;
  let resent = 0;
  let sent = 0;
  let current: MutableBlock | undefined;

  const readRam = (): void => {
    // Bounded: every iteration consumes at least 8 bytes of a finite file.
    for (;;) {
      const at = c.pos;
      const header = c.u64('RAM page header');
      const flags = header % PAGE;
      const addr = header - flags;
      if (flags & (F_XBZRLE | F_COMPRESS | F_HOOK)) {
        fail(`RAM page uses an unsupported encoding (flags 0x${flags.toString(16)}): disable xbzrle/compress/rdma`, at);
      }
      if (flags & F_MEM_SIZE) {
        let total = 0;
        while (total < addr) {
          if (blocks.size >= MAX_BLOCKS) fail('absurd number of RAM blocks');
          const idstr = c.str(c.u8('RAM block name length'), 'RAM block name');
          const length = c.u64(`length of RAM block ${idstr}`);
          if (length % PAGE) fail(`RAM block ${idstr} length 0x${length.toString(16)} is not page aligned`);
          blocks.set(idstr, { idstr, length, pages: new Float64Array(length / PAGE).fill(NaN) });
          total += length;
        }
        if (total !== addr) fail(`RAM block lengths add up to 0x${total.toString(16)}, not the announced 0x${addr.toString(16)}`);
        continue;
      }
      if (flags & (F_ZERO | F_PAGE)) {
        if (!(flags & F_CONTINUE)) {
          const name = c.str(c.u8('RAM block name length'), 'RAM block name');
          current = blocks.get(name);
          if (!current) fail(`page for unknown RAM block '${name}'`, at);
        } else if (!current) fail('CONTINUE page before any RAM block was named', at);
        const block = current!;
        if (addr >= block.length) fail(`page offset 0x${addr.toString(16)} beyond RAM block ${block.idstr}`, at);
        const idx = addr / PAGE;
        if (!Number.isNaN(block.pages[idx]!)) resent++;
        sent++;
        if (flags & F_ZERO) block.pages[idx] = -(c.u8('zero-page fill byte') + 1);
        else {
          block.pages[idx] = c.pos;
          c.skip(PAGE, 'RAM page data');
        }
        continue;
      }
      if (flags & F_EOS) return;
      if (flags & F_MULTIFD_FLUSH) continue;
      fail(`unknown RAM page flags 0x${flags.toString(16)}`, at);
    }
  };

  const footer = (sectionId: number): void => {
    if (c.peek() !== S_FOOTER) return;
    c.u8('footer');
    const id = c.u32('footer section id');
    if (id !== sectionId) fail(`section footer names section ${id}, expected ${sectionId}`, c.pos - 5);
  };

  while (!ramDone) {
    const at = c.pos;
    if (c.peek() === undefined) fail('migration stream ends before the RAM section is complete; truncated?');
    const type = c.u8('section type');
    switch (type) {
      case S_CONFIG: {
        const len = c.u32('machine name length');
        if (len > 256) fail(`absurd machine name length ${len}`);
        machine = c.str(len, 'machine name');
        // Optional subsections of the configuration: we know their shapes.
        while (c.peek() === S_SUBSECTION) {
          c.u8('subsection');
          const name = c.str(c.u8('subsection name length'), 'subsection name');
          c.u32('subsection version');
          if (name === 'configuration/target-page-bits') {
            const bits = c.u32('target page bits');
            if (bits !== 12) fail(`target page size 2^${bits} is not supported (expected 4 KiB pages)`);
          } else if (name === 'configuration/capabilities') {
            const n = c.u32('capability count');
            if (n > 256) fail('absurd capability count');
            for (let i = 0; i < n; i++) c.str(c.u8('capability name length'), 'capability name');
          } else if (name === 'configuration/uuid') c.skip(16, 'uuid');
          else fail(`unknown configuration subsection '${name}'`);
        }
        break;
      }
      case S_START:
      case S_FULL: {
        const id = c.u32('section id');
        const idstr = c.str(c.u8('section name length'), 'section name');
        c.u32('instance id');
        c.u32('version id');
        if (type === S_START && idstr === 'ram') {
          ramSection = id;
          readRam();
          footer(id);
        } else if (ramSection >= 0 && type === S_FULL) {
          // Device state follows the RAM: a background snapshot ends its RAM
          // with a PART (no END) and then writes the device state it saved.
          ramDone = true;
        } else {
          fail(`section '${idstr}' cannot be parsed (only RAM is understood; disable block/dirty-bitmap migration)`, at);
        }
        break;
      }
      case S_PART:
      case S_END: {
        const id = c.u32('section id');
        if (id !== ramSection) fail(`data for section ${id}, which is not the RAM section`, at);
        readRam();
        footer(id);
        if (type === S_END) ramDone = true;
        break;
      }
      case S_COMMAND: {
        c.u16('command');
        c.skip(c.u16('command length'), 'command data');
        break;
      }
      case S_EOF:
      case S_VMDESC:
        if (ramSection < 0) fail('migration stream has no RAM section', at);
        ramDone = true;
        break;
      default:
        fail(`unknown section type 0x${type.toString(16)}`, at);
    }
  }
  return {
    ...(machine !== undefined ? { machine } : {}),
    blocks: [...blocks.values()],
    resentPages: resent,
    pagesSent: sent,
  };
}

/**
 * Reads `dst.length` bytes at `offset` inside a block, page by page. Pages the
 * stream never carried are zero-filled and reported through `holes`.
 */
export function readBlock(
  src: ByteSource,
  block: MigrationBlock,
  offset: number,
  dst: Uint8Array,
  holes: (at: number, len: number) => void,
): void {
  let done = 0;
  while (done < dst.length) {
    const pos = offset + done;
    const idx = Math.floor(pos / PAGE);
    const inPage = pos & PAGE_MASK;
    const n = Math.min(PAGE - inPage, dst.length - done);
    const part = dst.subarray(done, done + n);
    const where = idx < block.pages.length ? block.pages[idx]! : NaN;
    if (Number.isNaN(where)) {
      part.fill(0);
      holes(pos, n);
    } else if (where < 0) part.fill(-where - 1);
    else if (src.readAt(part, where + inPage) !== n) {
      part.fill(0);
      holes(pos, n);
    }
    done += n;
  }
}
