import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FaultError, ProfileError } from '../../src/core/errors.js';
import { AddressSpace, type VirtualReadOp } from '../../src/arch/address-space.js';
import { PAGING_4_LEVEL, PAGING_5_LEVEL } from '../../src/arch/x86-64/paging.js';
import { testMemory } from './helpers/memory.js';
import { PageTableBuilder } from './helpers/page-tables.js';
import { gpa, gva } from '../../src/core/address.js';

const MiB = 1 << 20;

function fill(bytes: Uint8Array, pa: number, len: number, seed: number): void {
  for (let i = 0; i < len; i++) bytes[pa + i] = (seed + i * 31) & 0xff;
}

for (const mapped of [true, false]) {
  describe(`AddressSpace (${mapped ? 'mapped' : 'copying'} source)`, () => {
    function setup() {
      const ram = new Uint8Array(8 * MiB);
      const b = new PageTableBuilder(ram, 4, 0x10000);
      const va = 0xffff_c900_0000_0000n;
      // Three virtually contiguous pages scattered in physical memory, then a hole, then one more.
      b.map(va, 0x300000, 4096);
      b.map(va + 0x1000n, 0x100000, 4096);
      b.map(va + 0x2000n, 0x101000, 4096); // physically contiguous with the previous page
      b.map(va + 0x4000n, 0x200000, 4096);
      for (const pa of [0x300000, 0x100000, 0x101000, 0x200000]) fill(ram, pa, 4096, pa >> 12);
      // A 2 MiB page for large reads.
      b.map(0xffff_ffff_8000_0000n, 0x400000, 2 * MiB);
      fill(ram, 0x400000, 2 * MiB, 7);
      const mem = testMemory(ram, { mapped });
      return { ram, b, mem, va, space: new AddressSpace(mem, b.top, PAGING_4_LEVEL, { name: 'test' }) };
    }
    const expectBytes = (ram: Uint8Array, pieces: [number, number][]): Uint8Array =>
      Uint8Array.from(pieces.flatMap(([pa, len]) => [...ram.subarray(pa, pa + len)]));

    it('reads across page boundaries into the right physical pages', () => {
      const { ram, va, space } = setup();
      const got = space.read(gva(va + 0xff0n), 0x1020);
      assert.deepEqual(got, expectBytes(ram, [[0x300ff0, 0x10], [0x100000, 0x1000], [0x101000, 0x10]]));
      assert.deepEqual(space.read(gva(0xffff_ffff_8000_0100n), 0x10000), ram.subarray(0x400100, 0x410100));
    });

    it('merges physically contiguous pieces into one physical op', () => {
      const { ram, mem, va, space } = setup();
      space.translate(gva(va + 0x1000n)); // warm the translations so only data reads are counted
      space.translate(gva(va + 0x2000n));
      const before = mem.calls.ops;
      const op: VirtualReadOp = { va: gva(va + 0x1000n), len: 0x2000 };
      assert.deepEqual(space.readv([op]), []);
      // A mapped source is copied from directly; a copying one gets one op for both pages.
      assert.equal(mem.calls.ops - before, mapped ? 0 : 1, 'two physically contiguous pages, one op');
      assert.deepEqual(op.dst, ram.subarray(0x100000, 0x102000));
    });

    it('batches many virtual reads into one physical readv', () => {
      const { mem, va, space } = setup();
      space.translate(gva(va)); // warm the cache so only data reads are counted
      space.translate(gva(va + 0x1000n));
      space.translate(gva(va + 0x4000n));
      const calls = mem.calls.readv;
      const ops: VirtualReadOp[] = [{ va: gva(va), len: 8 }, { va: gva(va + 0x1000n), len: 16 }, { va: gva(va + 0x4000n), len: 4 }];
      assert.deepEqual(space.readv(ops), []);
      assert.equal(mem.calls.readv, calls + (mapped ? 0 : 1));
      assert.equal(ops[1]!.dst!.length, 16);
    });

    it('zero-fills unmapped ranges and reports them, skipping whole unmapped levels', () => {
      const { ram, va, space } = setup();
      const op = { va: gva(va + 0x2ff0n), len: 0x1020, dst: new Uint8Array(0x1020).fill(0xee) };
      const failures = space.readv([op]);
      assert.equal(failures.length, 1);
      assert.equal(failures[0]!.va, va + 0x3000n);
      assert.equal(failures[0]!.len, 0x1000);
      assert.deepEqual(op.dst.subarray(0, 0x10), ram.subarray(0x101ff0, 0x102000));
      assert.ok(op.dst.subarray(0x10, 0x1010).every((x) => x === 0));
      assert.deepEqual(op.dst.subarray(0x1010), ram.subarray(0x200000, 0x200010));
      // A read over a large unmapped region reports it in few pieces, not one per page.
      const wide = space.readv([{ va: gva(0xffff_d000_0000_0000n), len: 64 * MiB }]);
      assert.equal(wide.length, 1);
      assert.equal(wide[0]!.len, 64 * MiB);
      assert.throws(() => space.read(gva(va + 0x3000n), 1), (e: unknown) => e instanceof FaultError && e.address === va + 0x3000n);
      // Into the non-canonical hole: skipped in large steps, reported, bounded.
      // (no timing assertion: a per-page walk of the hole would show as thousands of pieces below)
      const nc = space.readv([{ va: gva(0x0000_7fff_ffff_f000n), len: 64 * MiB }]);
      assert.ok(nc.length <= 3);
      assert.equal(nc.reduce((n, f) => n + f.len, 0), 64 * MiB);
    });

    it('returns zero-copy views inside a page of a mapped source', () => {
      const { ram, va, space } = setup();
      const v = space.read(gva(va + 0x10n), 32);
      assert.deepEqual(v, ram.subarray(0x300010, 0x300030));
      assert.equal(v.buffer === ram.buffer, mapped);
      const big = space.read(gva(0xffff_ffff_8000_0000n + 0x1000n), 4096);
      assert.equal(big.buffer === ram.buffer, mapped, 'a 4 KiB read inside a 2 MiB page is a view too');
    });

    it('readInPlace: an object over physically contiguous pages of a mapped source is a view; scattered pages a copy', () => {
      const { ram, va, space } = setup();
      // va+0x1000.. and va+0x2000.. are physically contiguous (0x100000, 0x101000).
      const v = space.readInPlace(gva(va + 0x1800n), 0x1000);
      assert.deepEqual(v, ram.subarray(0x100800, 0x101800));
      assert.equal(v.buffer === ram.buffer, mapped);
      // va..va+0x1000 and va+0x1000.. are not: the same bytes as read, as a copy.
      const c = space.readInPlace(gva(va + 0xff0n), 0x20);
      assert.deepEqual(c, space.read(gva(va + 0xff0n), 0x20));
      assert.notEqual(c.buffer, ram.buffer);
      const scattered = space.readInPlace(gva(va + 0x800n), 0x1000);
      assert.deepEqual(scattered, expectBytes(ram, [[0x300800, 0x800], [0x100000, 0x800]]));
      assert.notEqual(scattered.buffer, ram.buffer);
      // An object running into the unmapped page faults as read does.
      assert.throws(() => space.readInPlace(gva(va + 0x2800n), 0x1000), FaultError);
      const big = space.readInPlace(gva(0xffff_ffff_8000_0000n + 0x800n), 0x3000);
      assert.equal(big.buffer === ram.buffer, mapped, 'inside one 2 MiB page');
    });

    it('reads scalars, pointers and strings, also across pages', () => {
      const { ram, va, space } = setup();
      const dv = new DataView(ram.buffer);
      dv.setBigUint64(0x300ff8, 0xffff_8880_1234_5678n, true);
      assert.equal(space.readPointer(va + 0xff8n), 0xffff_8880_1234_5678n);
      assert.equal(space.readU32(va + 0xffcn), 0xffff_8880);
      assert.equal(space.readU16(va + 0xffen), 0xffff);
      assert.equal(space.readU8(va + 0xff8n), 0x78);
      // A u64 split over two non-contiguous physical pages.
      ram.set([1, 2, 3, 4], 0x300ffc);
      ram.set([5, 6, 7, 8], 0x100000);
      assert.equal(space.readU64(va + 0xffcn), 0x0807060504030201n);
      // A C string crossing into the next page.
      ram.set(Buffer.from('hello, '), 0x300ff9);
      ram.set(Buffer.from('world\0junk'), 0x100000);
      assert.equal(space.readCString(va + 0xff9n), 'hello, world');
      assert.equal(space.readCString(va + 0xff9n, 5), 'hello');
      assert.throws(() => space.readU64(va + 0x3000n), FaultError);
    });

    it('reports a page that maps outside RAM, and reads the rest', () => {
      const ram = new Uint8Array(4 * MiB);
      const b = new PageTableBuilder(ram, 4, 0x10000);
      const va = 0xffff_c900_0000_0000n;
      b.map(va, 0x200000, 4096);
      b.map(va + 0x1000n, 0x380000, 4096); // in the hole below
      fill(ram, 0x200000, 4096, 3);
      const mem = testMemory(ram, { mapped, ranges: [{ start: gpa(0), end: gpa(0x300000) }, { start: gpa(0x3f0000), end: gpa(4 * MiB) }] });
      const space = new AddressSpace(mem, b.top, PAGING_4_LEVEL);
      const op = { va: gva(va + 0xff0n), len: 0x20, dst: new Uint8Array(0x20) };
      const failures = space.readv([op]);
      assert.deepEqual(failures.map((f) => [f.va, f.len]), [[va + 0x1000n, 0x10]]);
      assert.match(failures[0]!.reason, /physical 0x380000/);
      assert.deepEqual(op.dst.subarray(0, 0x10), ram.subarray(0x200ff0, 0x201000));
      assert.throws(() => space.readU64(va + 0x1000n), (e: unknown) => e instanceof FaultError && /0x380000/.test(e.message));
    });

    it('stops using mapped views once the source is closed', async () => {
      const { va, mem, space } = setup();
      assert.equal(space.readU64(va), space.readU64(va));
      await mem.close();
      assert.throws(() => space.readU64(va), /after close/);
    });

    it('validates lengths', () => {
      const { va, space } = setup();
      assert.throws(() => space.readv([{ va: gva(va), len: -1 }]), RangeError);
      assert.throws(() => space.readv([{ va: gva(va), len: 2 ** 40 }]), RangeError);
      assert.throws(() => space.readv([{ va: gva(va), len: 8, dst: new Uint8Array(4) }]), RangeError);
    });
  });
}

describe('mappings()', () => {
  it('lists every present leaf in VA order, bounded and filtered', () => {
    const b = new PageTableBuilder(new Uint8Array(4 * MiB), 5, 0x10000);
    b.map(0x1000n, 0x5000, 4096, { user: true });
    b.map(0xff11_0000_0000_0000n, 0, 1 << 30, { nx: true });
    b.mapRange(0xffff_ffff_8000_0000n, 0x200000, 4 * MiB, 2 * MiB);
    b.map(0x7fff_ffff_f000n, 0x6000, 4096, { user: true, writable: false });
    const space = new AddressSpace(testMemory(b.bytes, { mapped: true }), b.top, PAGING_5_LEVEL);
    const all = [...space.mappings()];
    const want = [...b.mappings].sort((x, y) => (x.va < y.va ? -1 : 1));
    assert.deepEqual(
      all.map((m) => [m.va, m.pa, m.size, m.nx, (m.flags & 4) !== 0, (m.flags & 2) !== 0]),
      want.map((m) => [m.va, m.pa, m.size, m.nx, m.user, m.writable]),
    );
    assert.equal([...space.mappings({ limit: 2 })].length, 2);
    const kernel = [...space.mappings({ start: 0xff00_0000_0000_0000n })];
    assert.deepEqual(kernel.map((m) => m.va), [0xff11_0000_0000_0000n, 0xffff_ffff_8000_0000n, 0xffff_ffff_8020_0000n]);
  });

  it('a range inside one leaf table gives the mappings it overlaps, in both halves', () => {
    for (const base of [0x40_0000n, 0xffff_c900_0000_0000n]) {
      const b = new PageTableBuilder(new Uint8Array(4 * MiB), 4, 0x10000);
      // Pages 3..9 and 200..201 of one leaf table present, the rest not.
      for (const i of [3, 4, 5, 6, 7, 8, 9, 200, 201]) b.map(base + BigInt(i * 4096), 0x100000 + i * 4096, 4096);
      const space = new AddressSpace(testMemory(b.bytes, { mapped: true }), b.top, PAGING_4_LEVEL);
      const pages = (start: bigint, end: bigint) => [...space.mappings({ start, end })].map((m) => Number((m.va - base) / 4096n));
      assert.deepEqual(pages(base, base + 512n * 4096n), [3, 4, 5, 6, 7, 8, 9, 200, 201]);
      // A start inside page 5 keeps page 5; an end at page 8's first byte leaves page 8 out.
      assert.deepEqual(pages(base + 5n * 4096n + 100n, base + 8n * 4096n), [5, 6, 7]);
      assert.deepEqual(pages(base + 8n * 4096n, base + 8n * 4096n + 1n), [8]);
      assert.deepEqual(pages(base + 10n * 4096n, base + 200n * 4096n), []);
      assert.deepEqual(pages(base - (1n << 30n), base + 4n * 4096n), [3]);
      assert.deepEqual(pages(base + 201n * 4096n, base + (1n << 30n)), [201]);
    }
  });

  it('survives hostile tables (every entry points to the top table)', () => {
    const b = new PageTableBuilder(new Uint8Array(MiB), 4, 0x10000);
    for (let i = 0; i < 512; i++) b.writeEntry(b.top + i * 8, BigInt(b.top) | 3n);
    const space = new AddressSpace(testMemory(b.bytes), b.top, PAGING_4_LEVEL);
    const got = [...space.mappings({ limit: 1000, maxTables: 100 })];
    assert.ok(got.length <= 1000);
  });
});

describe('direct map', () => {
  it('is found from the page tables and converts both ways', () => {
    const ram = new Uint8Array(16 * MiB);
    const b = new PageTableBuilder(ram, 4, 0x800000);
    const base = 0xffff_8880_0000_0000n + (37n << 30n); // KASLR moves it in 1 GiB steps
    // Something mapping physical 0 at a lower, unaligned kernel VA must not fool it.
    b.map(0xffff_8000_0000_1000n, 0, 4096);
    b.mapRange(base, 0, 16 * MiB, 2 * MiB);
    const space = new AddressSpace(testMemory(ram, { mapped: true }), b.top, PAGING_4_LEVEL);
    assert.throws(() => space.physToDirect(gpa(0x1000)), ProfileError);
    assert.equal(space.findDirectMap(), base);
    assert.equal(space.physToDirect(gpa(0x123456)), base + 0x123456n);
    assert.equal(space.directToPhys(gva(base + 0x42n)), 0x42);
    assert.throws(() => space.directToPhys(gva(base - 1n)), FaultError);
    assert.equal(space.withDtb(b.top, 'copy').directMapBase, base);
  });

  it('is undefined when nothing maps physical memory linearly', () => {
    const b = new PageTableBuilder(new Uint8Array(4 * MiB), 4, 0x10000);
    b.map(0xffff_8880_0000_0000n, 0, 4096); // maps 0, but not linearly beyond
    const space = new AddressSpace(testMemory(b.bytes), b.top, PAGING_4_LEVEL);
    assert.equal(space.findDirectMap(), undefined);
  });
});
