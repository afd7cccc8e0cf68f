import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { FormatError } from '../../src/core/errors.js';
import type { ReadFailure, ReadOp } from '../../src/memory/types.js';
import {
  describeLayout,
  findRange,
  guestRam,
  invalidRead,
  mainRamRegion,
  parseFlatView,
  parseRamBlocks,
  q35Layout,
  readDestination,
  splitRead,
  splitReadFillingHoles,
  type RamRange,
} from '../../src/qemu/layout.js';
import { gpa } from '../../src/core/address.js';

const fixture = (name: string) => fs.readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8');
const MTREE_256 = fixture('q35-256m.mtree-f.txt');
const MTREE_4G = fixture('q35-4g-smp2-cpumax.mtree-f.txt');

test('flat view of "memory" from a real 256 MiB q35 guest', () => {
  const flat = parseFlatView(MTREE_256);
  assert.equal(flat[0]!.start, 0);
  assert.equal(flat[0]!.end, 0xa0000);
  assert.equal(flat[0]!.region, 'mem');
  const vga = flat.find((r) => r.region === 'vga-lowmem')!;
  assert.deepEqual([vga.start, vga.end, vga.kind], [0xa0000, 0xc0000, 'i/o']);
  const rom = flat.find((r) => r.start === 0xc0000)!;
  assert.deepEqual([rom.kind, rom.region, rom.offset], ['rom', 'mem', 0xc0000]);
  // Names with spaces survive.
  assert.ok(flat.some((r) => r.region === 'vga ioports remapped'));
  assert.equal(mainRamRegion(flat), 'mem');
});

test('256 MiB: RAM is the file from GPA 0, minus the vga-lowmem window; vga.vram and the BIOS are not RAM', () => {
  const ram = guestRam(parseFlatView(MTREE_256));
  assert.deepEqual(
    ram.map((r) => [r.start, r.end, r.blockOffset, r.block]),
    [
      [0, 0xa0000, 0, 'mem'],
      [0xc0000, 0x10000000, 0xc0000, 'mem'],
    ],
  );
  assert.deepEqual(q35Layout(0x10000000), ram);
});

test('4 GiB: file [2G,4G) is GPA [4G,6G)', () => {
  const ram = guestRam(parseFlatView(MTREE_4G));
  assert.deepEqual(
    ram.map((r) => [r.start, r.end, r.blockOffset, r.name]),
    [
      [0, 0xa0000, 0, 'ram-below-4g'],
      [0xc0000, 0x80000000, 0xc0000, 'ram-below-4g'],
      [0x100000000, 0x180000000, 0x80000000, 'ram-above-4g'],
    ],
  );
  assert.deepEqual(q35Layout(0x100000000), ram);
  assert.match(describeLayout(ram)[2]!, /^0x100000000-0x17fffffff mem@0x80000000/);
});

test('another address space can be chosen; the SMM view has no vga hole', () => {
  const smm = guestRam(parseFlatView(MTREE_256, 'cpu-smm-0'));
  assert.deepEqual([smm[0]!.start, smm[0]!.end], [0, 0x10000000]);
  assert.throws(() => parseFlatView(MTREE_256, 'nope'), /no flat view for address space "nope"/);
});

test('flat view parsing rejects what is not mtree output and skips odd lines', () => {
  assert.throws(() => parseFlatView('hello'), FormatError);
  const text = [
    'FlatView #0',
    ' AS "memory", root: system',
    ' Root memory region: system',
    '  0000000000000000-0000000000000fff (prio 0, ram): pc.ram [ROM]',
    '  garbage line',
    '  0000000000002000-0000000000000fff (prio 0, ram): backwards',
    '  0000000000001000-0000000000001fff (prio 0, ram): pc.ram @0000000000001000 [NV]',
    '  fffffffffffff000-ffffffffffffffff (prio 0, ram): too-high',
  ].join('\r\n');
  const flat = parseFlatView(text);
  assert.deepEqual(
    flat.map((r) => [r.start, r.end, r.region, r.offset]),
    [
      [0, 0x1000, 'pc.ram', 0],
      [0x1000, 0x2000, 'pc.ram', 0x1000],
    ],
  );
  assert.deepEqual(guestRam(flat).map((r) => [r.start, r.end]), [[0, 0x2000]]);
});

test('ranges with a gap in block offsets stay apart', () => {
  const flat = parseFlatView(
    ['FlatView #0', ' AS "memory", root: system', '  0000000000000000-0000000000000fff (prio 0, ram): m', '  0000000000001000-0000000000001fff (prio 0, ram): m @0000000000005000'].join(
      '\n',
    ),
  );
  assert.equal(guestRam(flat).length, 2);
});

test('info ramblock', () => {
  const blocks = parseRamBlocks(fixture('q35-4g-smp2-cpumax.ramblock.txt'));
  const mem = blocks.find((b) => b.name === 'mem')!;
  assert.deepEqual([mem.pageSize, mem.ramAddr, mem.used, mem.total], [4096, 0, 0x100000000, 0x100000000]);
  assert.ok(blocks.some((b) => b.name === '0000:00:01.0/vga.vram' && b.used === 0x1000000));
  assert.ok(blocks.some((b) => b.name === '/rom@etc/acpi/tables' && b.used === 0x20000 && b.total === 0x200000));
  assert.throws(() => parseRamBlocks('nonsense'), FormatError);
});

test('q35 default layout edge cases', () => {
  assert.deepEqual(q35Layout(0), []);
  assert.deepEqual(q35Layout(-5), []);
  // Just under the 2.75 GiB split: still flat.
  const l = q35Layout(0xaff00000);
  assert.equal(l[l.length - 1]!.end, 0xaff00000);
  // At the split: 2 GiB low, the rest above 4 GiB.
  const h = q35Layout(0xb0000000);
  assert.deepEqual(h[h.length - 1], { start: 0x100000000, end: 0x130000000, block: 'mem', blockOffset: 0x80000000, name: 'ram-above-4g' });
});

test('splitRead walks backed pieces and holes in order', () => {
  const ranges: RamRange[] = q35Layout(0x100000000);
  const pieces: string[] = [];
  splitRead(
    ranges,
    0x9f000,
    0x22000,
    (r, off, dstOff, n) => pieces.push(`ram ${r.name} off=${off.toString(16)} dst=${dstOff.toString(16)} n=${n.toString(16)}`),
    (addr, dstOff, n) => pieces.push(`hole ${addr.toString(16)} dst=${dstOff.toString(16)} n=${n.toString(16)}`),
  );
  assert.deepEqual(pieces, ['ram ram-below-4g off=9f000 dst=0 n=1000', 'hole a0000 dst=1000 n=20000', 'ram ram-below-4g off=c0000 dst=21000 n=1000']);
  pieces.length = 0;
  splitRead(
    ranges,
    0x7ffff000,
    0x80002000,
    (_r, off, _d, n) => pieces.push(`ram ${off.toString(16)}+${n.toString(16)}`),
    (addr, _d, n) => pieces.push(`hole ${addr.toString(16)}+${n.toString(16)}`),
  );
  assert.deepEqual(pieces, ['ram 7ffff000+1000', 'hole 80000000+80000000', 'ram 80000000+1000']);
  pieces.length = 0;
  splitRead(ranges, 0x200000000, 8, () => pieces.push('ram'), (a) => pieces.push(`hole ${a.toString(16)}`));
  assert.deepEqual(pieces, ['hole 200000000']);
});

test('findRange and invalidRead', () => {
  const ranges = q35Layout(0x10000000);
  assert.equal(findRange(ranges, 0), 0);
  assert.equal(findRange(ranges, 0xa0000), -1);
  assert.equal(findRange(ranges, 0xfffffff), 1);
  assert.equal(findRange(ranges, 0x10000000), -1);
  assert.equal(invalidRead(0, 8, undefined), undefined);
  assert.match(invalidRead(-1, 8, undefined)!, /not a guest-physical address/);
  assert.match(invalidRead(0.5, 8, undefined)!, /not a guest-physical address/);
  assert.match(invalidRead(0, 2 ** 31, undefined)!, /length/);
  assert.match(invalidRead(0, 16, new Uint8Array(8))!, /destination holds 8 bytes/);
});

test('readDestination allocates a missing dst and rejects a malformed op with an empty dst', () => {
  const failures: ReadFailure[] = [];
  const fresh: ReadOp = { addr: gpa(0x1000), len: 16 };
  const dst = readDestination(fresh, failures);
  assert.equal(dst?.length, 16);
  assert.equal(fresh.dst, dst);
  const given = new Uint8Array(32);
  assert.equal(readDestination({ addr: gpa(0), len: 8, dst: given }, failures), given);
  assert.equal(failures.length, 0);
  const bad: ReadOp = { addr: gpa(-1), len: 8 };
  assert.equal(readDestination(bad, failures), undefined);
  assert.equal(bad.dst?.length, 0);
  const short: ReadOp = { addr: gpa(0), len: 16, dst: new Uint8Array(4) };
  assert.equal(readDestination(short, failures), undefined);
  assert.equal(short.dst?.length, 4);
  assert.deepEqual(
    failures.map((f) => [f.addr, f.len]),
    [[-1, 8], [0, 16]],
  );
  assert.match(failures[0]!.reason, /not a guest-physical address/);
  assert.match(failures[1]!.reason, /destination holds 4 bytes/);
});

test('splitReadFillingHoles zero-fills holes, records them, and hands RAM pieces on', () => {
  const ranges = q35Layout(0x100000000);
  const dst = new Uint8Array(0x22000).fill(0xaa);
  const failures: ReadFailure[] = [];
  const pieces: string[] = [];
  splitReadFillingHoles(ranges, 0x9f000, 0x22000, dst, failures, (r, off, dstOff, n) => {
    pieces.push(`${r.name} ${off.toString(16)} ${dstOff.toString(16)} ${n.toString(16)}`);
    dst.fill(1, dstOff, dstOff + n);
  });
  assert.deepEqual(pieces, ['ram-below-4g 9f000 0 1000', 'ram-below-4g c0000 21000 1000']);
  assert.deepEqual(failures.map((f) => [f.addr, f.len]), [[0xa0000, 0x20000]]);
  assert.match(failures[0]!.reason, /not guest RAM/);
  assert.equal(dst[0xfff], 1);
  assert.ok(dst.subarray(0x1000, 0x21000).every((b) => b === 0));
  assert.equal(dst[0x21000], 1);
});
