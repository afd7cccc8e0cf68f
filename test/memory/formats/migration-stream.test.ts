import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FormatError } from '../../../src/core/errors.js';
import { BufferSource } from '../../../src/memory/formats/byte-source.js';
import { parseMigrationStream, readBlock } from '../../../src/memory/formats/migration-stream.js';

/** Writes big-endian fields the way QEMU's QEMUFile does. */
class W {
  parts: number[] = [];
  u8(v: number) { this.parts.push(v & 0xff); return this; }
  u16(v: number) { return this.u8(v >> 8).u8(v); }
  u32(v: number) { return this.u16(v >>> 16).u16(v & 0xffff); }
  u64(v: number) { return this.u32(Math.floor(v / 2 ** 32)).u32(v >>> 0); }
  str(s: string) { for (const c of Buffer.from(s, 'latin1')) this.u8(c); return this; }
  name(s: string) { return this.u8(s.length).str(s); }
  bytes(b: Uint8Array) { for (const c of b) this.u8(c); return this; }
  done() { return Uint8Array.from(this.parts); }
}

const PAGE = 4096;
const pageOf = (b: number) => new Uint8Array(PAGE).fill(b);

/** A stream like QEMU 7.2 writes: config, ram START (block list), PARTs, END, a device section, EOF. */
function stream(opts: { resend?: boolean; end?: boolean } = {}): Uint8Array {
  const w = new W().u32(0x5145564d).u32(3);
  w.u8(0x07).u32(10).str('pc-q35-7.2');
  w.u8(0x01).u32(2).name('ram').u32(0).u32(4);
  w.u64((4 * PAGE + 2 * PAGE) | 0x04).name('mem').u64(4 * PAGE).name('vga').u64(2 * PAGE);
  w.u64(0x10).u8(0x7e).u32(2);
  // PART: page 0 of mem data, page 1 zero, page 3 filled with 0x5a via ZERO+fill, then vga page 1.
  w.u8(0x02).u32(2);
  w.u64(0 | 0x08).name('mem').bytes(pageOf(0x41));
  w.u64(PAGE | 0x02 | 0x20).u8(0);
  w.u64(3 * PAGE | 0x02 | 0x20).u8(0x5a);
  w.u64(PAGE | 0x08).name('vga').bytes(pageOf(0x76));
  w.u64(0x10).u8(0x7e).u32(2);
  if (opts.resend) {
    w.u8(0x02).u32(2);
    w.u64(0 | 0x08).name('mem').bytes(pageOf(0x42));
    w.u64(0x10).u8(0x7e).u32(2);
  }
  if (opts.end !== false) {
    w.u8(0x03).u32(2);
    w.u64(2 * PAGE | 0x08).name('mem').bytes(pageOf(0x43));
    w.u64(0x10).u8(0x7e).u32(2);
  }
  // A device section we do not (and need not) understand, then EOF.
  w.u8(0x04).u32(3).name('timer').u32(0).u32(2).u64(123).u8(0x7e).u32(3).u8(0x00);
  return w.done();
}

test('migration stream: block list, data/zero/fill pages, CONTINUE, last copy wins', () => {
  const bytes = stream({ resend: true });
  const src = new BufferSource('s.mig', bytes);
  const img = parseMigrationStream(src);
  assert.equal(img.machine, 'pc-q35-7.2');
  assert.deepEqual(img.blocks.map((b) => [b.idstr, b.length]), [
    ['mem', 4 * PAGE],
    ['vga', 2 * PAGE],
  ]);
  assert.equal(img.resentPages, 1);
  const mem = img.blocks[0]!;
  const dst = new Uint8Array(4 * PAGE);
  const holes: Array<[number, number]> = [];
  readBlock(src, mem, 0, dst, (at, len) => holes.push([at, len]));
  assert.equal(holes.length, 0);
  assert.equal(dst[0], 0x42); // re-sent copy wins
  assert.equal(dst[PAGE + 5], 0);
  assert.equal(dst[2 * PAGE + 7], 0x43);
  assert.equal(dst[3 * PAGE + 100], 0x5a);
  const vga = new Uint8Array(2 * PAGE);
  readBlock(src, img.blocks[1]!, 0, vga, (at, len) => holes.push([at, len]));
  assert.deepEqual(holes, [[0, PAGE]]); // vga page 0 never sent
  assert.equal(vga[PAGE], 0x76);
});

test('migration stream: a background snapshot ends RAM with a PART and then device state', () => {
  const img = parseMigrationStream(new BufferSource('bg.mig', stream({ end: false })));
  assert.equal(img.pagesSent, 4);
});

test('migration stream: truncated or corrupt streams are FormatErrors', () => {
  const good = stream();
  const bad = (b: Uint8Array, re: RegExp) =>
    assert.throws(() => parseMigrationStream(new BufferSource('bad.mig', b)), (e: unknown) => e instanceof FormatError && re.test(e.message) && e.message.startsWith('bad.mig'));
  bad(good.subarray(0, 200), /ends inside|truncated/);
  bad(good.subarray(0, 4), /too short/);
  bad(Uint8Array.from([1, 2, 3, 4, 0, 0, 0, 3]), /no QEVM magic/);
  const v2 = good.slice();
  v2[7] = 2;
  bad(v2, /version 2/);
  const xbz = new W().u32(0x5145564d).u32(3).u8(0x01).u32(2).name('ram').u32(0).u32(4).u64(PAGE | 4).name('mem').u64(PAGE).u64(0x40).done();
  bad(xbz, /unsupported encoding/);
  const unknownBlock = new W().u32(0x5145564d).u32(3).u8(0x01).u32(2).name('ram').u32(0).u32(4).u64(PAGE | 4).name('mem').u64(PAGE).u64(0x08).name('nope').done();
  bad(unknownBlock, /unknown RAM block 'nope'/);
  const beyond = new W().u32(0x5145564d).u32(3).u8(0x01).u32(2).name('ram').u32(0).u32(4).u64(PAGE | 4).name('mem').u64(PAGE).u64(PAGE * 5 | 0x02).name('mem').u8(0).done();
  bad(beyond, /beyond RAM block mem/);
  const sizes = new W().u32(0x5145564d).u32(3).u8(0x01).u32(2).name('ram').u32(0).u32(4).u64(PAGE | 4).name('mem').u64(2 * PAGE).done();
  bad(sizes, /add up/);
});
