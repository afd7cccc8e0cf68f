import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FaultError } from '../../../src/core/errors.js';
import { PAGING_4_LEVEL, PAGING_5_LEVEL } from '../../../src/arch/x86-64/paging.js';
import { Translator } from '../../../src/arch/x86-64/translator.js';
import { testMemory } from '../helpers/memory.js';
import { PageTableBuilder } from '../helpers/page-tables.js';

const MiB = 1 << 20;

for (const mapped of [true, false]) {
  describe(`Translator (${mapped ? 'mapped' : 'copying'} source)`, () => {
    function setup() {
      const b = new PageTableBuilder(new Uint8Array(2 * MiB), 4, 0x100000);
      b.map(0xffff_c900_0000_0000n, 0x1000, 4096);
      b.map(0xffff_c900_0020_0000n, 0x200000, 2 * MiB);
      const mem = testMemory(b.bytes, { mapped });
      return { b, mem, tr: new Translator(mem, b.top, PAGING_4_LEVEL) };
    }

    it('counts hits and misses and keeps offsets within the page', () => {
      const { tr } = setup();
      assert.equal(tr.translate(0xffff_c900_0000_0010n).pa, 0x1010);
      assert.equal(tr.translate(0xffff_c900_0000_0ff8n).pa, 0x1ff8);
      assert.equal(tr.physical(0xffff_c900_0000_0123n), 0x1123);
      assert.deepEqual({ ...tr.stats }, { hits: 2, misses: 1, faults: 0, flushes: 0, evictions: 0, revalidated: 0, stale: 0, largePages: 0 });
      const big = tr.translate(0xffff_c900_0021_2345n);
      assert.equal(big.pa, 0x212345);
      assert.equal(big.pageSize, 2 * MiB);
      // Another 4 KiB slice of the same 2 MiB page: still right (cached per 4 KiB page).
      assert.equal(tr.translate(0xffff_c900_0021_2fffn).pa, 0x212fff);
      assert.equal(tr.translate(0xffff_c900_0021_3000n).pa, 0x213000);
      assert.equal(tr.translate(0xffff_c900_0021_3000n).pageSize, 2 * MiB);
      assert.deepEqual([tr.stats.misses, tr.stats.largePages], [2, 1], 'the second 4 KiB page of the 2 MiB one came without a walk');
    });

    it('is invalidated when the source generation changes, and by flush()', () => {
      const { b, mem, tr } = setup();
      const va = 0xffff_c900_0000_0008n;
      assert.equal(tr.physical(va), 0x1008);
      // The guest remaps the page behind our back.
      const ea = b.entryAddr(va, 1);
      b.writeEntry(ea, 0x5000n | 3n);
      assert.equal(tr.physical(va), 0x1008, 'same generation: the cached translation stands');
      mem.bump();
      assert.equal(tr.physical(va), 0x5008, 'new generation: re-walked');
      b.writeEntry(ea, 0x6000n | 3n);
      assert.equal(tr.physical(va), 0x5008);
      tr.flush();
      assert.equal(tr.physical(va), 0x6008, 'after flush(): re-walked');
      // A page that disappears faults after the next pass.
      b.writeEntry(ea, 0n);
      mem.bump();
      assert.throws(() => tr.physical(va), (e: unknown) => e instanceof FaultError && e.level === 1 && e.address === va);
      assert.equal(tr.stats.flushes, 1, 'only the explicit flush() dropped everything');
      assert.equal(tr.stats.stale, 2, 'each changed entry was re-checked, found changed and walked again');
      assert.equal(tr.stats.faults, 1);
    });

    it('does not cache faults', () => {
      const { b, mem, tr } = setup();
      const va = 0xffff_c900_0040_0000n;
      assert.throws(() => tr.physical(va), FaultError);
      b.map(va, 0x7000, 4096);
      // A copying source keeps the tables it read for the pass; a mapped one sees the change at once.
      if (!mapped) mem.bump();
      assert.equal(tr.physical(va), 0x7000);
    });

    it('translateMany matches translate and uses the cache', () => {
      const { tr } = setup();
      const vas = [0xffff_c900_0000_0001n, 0xffff_c900_0030_0000n, 0x1234n, 0xffff_c900_0000_0002n, 1n << 70n];
      const r = tr.translateMany(vas);
      assert.equal((r[0] as { pa: number }).pa, 0x1001);
      assert.equal((r[1] as { pa: number }).pa, 0x300000);
      assert.ok(r[2] instanceof FaultError);
      assert.equal((r[3] as { pa: number }).pa, 0x1002);
      assert.ok(r[4] instanceof FaultError);
      const before = tr.stats.hits;
      tr.translateMany([0xffff_c900_0000_0005n]);
      assert.equal(tr.stats.hits, before + 1);
    });

    it('bounds its cache', () => {
      const b = new PageTableBuilder(new Uint8Array(2 * MiB), 5, 0x100000);
      b.mapRange(0xff11_0000_0000_0000n, 0, 64 * 4096, 4096);
      const tr = new Translator(testMemory(b.bytes, { mapped }), b.top, PAGING_5_LEVEL, { maxEntries: 16 });
      for (let pass = 0; pass < 2; pass++) {
        for (let i = 0; i < 64; i++) assert.equal(tr.physical(0xff11_0000_0000_0000n + BigInt(i * 4096 + 7)), i * 4096 + 7);
      }
      assert.ok(tr.stats.evictions >= 48, `evictions ${tr.stats.evictions}`);
      assert.equal(tr.stats.flushes, 0);
    });

    it('never answers a VA from the entry of another VA with the same low bits', () => {
      const b = new PageTableBuilder(new Uint8Array(2 * MiB), 5, 0x100000);
      // Same bits 0..47, different bits 48..56: distinct pages in 5-level paging.
      b.map(0xff11_2233_4455_6000n, 0x1000, 4096);
      b.map(0xff22_2233_4455_6000n, 0x2000, 4096);
      const mem = testMemory(b.bytes, { mapped });
      const tr5 = new Translator(mem, b.top, PAGING_5_LEVEL);
      assert.equal(tr5.physical(0xff11_2233_4455_6008n), 0x1008);
      assert.equal(tr5.physical(0xff22_2233_4455_6008n), 0x2008);
      assert.equal(tr5.physical(0xff11_2233_4455_6010n), 0x1010);
      // In 4-level paging a non-canonical VA sharing the low 48 bits of a cached one still faults.
      const { tr } = setup();
      assert.equal(tr.physical(0xffff_c900_0000_0010n), 0x1010);
      assert.throws(() => tr.physical(0x0000_c900_0000_0010n), /canonical/);
      assert.throws(() => tr.translate(0x7fff_c900_0000_0010n), /canonical/);
      assert.throws(() => tr.physical((1n << 64n) + 0xffff_c900_0000_0010n), /64-bit/);
      assert.throws(() => tr.physical(0xffff_c900_0000_0010n - (1n << 64n) - (1n << 64n)), /64-bit/);
      assert.equal(tr.physical(0xffff_c900_0000_0010n - (1n << 64n)), 0x1010, 'a negative bigint is the sign-extended VA');
    });
  });
}
