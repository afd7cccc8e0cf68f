/**
 * Cached translations across epochs (passes) over page tables that change
 * between them: never a stale translation, and unchanged entries are
 * re-checked with one read each (upper levels once per epoch), not re-walked.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FaultError } from '../../../src/core/errors.js';
import { PAGING_4_LEVEL, TableReader, walk } from '../../../src/arch/x86-64/paging.js';
import { Translator } from '../../../src/arch/x86-64/translator.js';
import { testMemory } from '../helpers/memory.js';
import { P, PageTableBuilder, RW } from '../helpers/page-tables.js';

const MiB = 1 << 20;
const VMALLOC = 0xffff_c900_0000_0000n;
const DIRECT = 0xffff_8880_0000_0000n;

/** What a walk with no cache at all gives now. */
function fresh(mem: ReturnType<typeof testMemory>, top: number, va: bigint): number | 'fault' {
  try {
    return walk(new TableReader(mem), PAGING_4_LEVEL, top, va).pa;
  } catch (e) {
    if (e instanceof FaultError) return 'fault';
    throw e;
  }
}

function cached(tr: Translator, va: bigint): number | 'fault' {
  try {
    return tr.physical(va);
  } catch (e) {
    if (e instanceof FaultError) return 'fault';
    throw e;
  }
}

for (const mapped of [true, false]) {
  describe(`Translator epochs (${mapped ? 'mapped' : 'copying'} source)`, () => {
    function setup(pages = 64) {
      const b = new PageTableBuilder(new Uint8Array(8 * MiB), 4, 0x100000);
      for (let i = 0; i < pages; i++) b.map(VMALLOC + BigInt(i) * 4096n, 0x400000 + i * 4096, 4096);
      const mem = testMemory(b.bytes, { mapped });
      const tr = new Translator(mem, b.top, PAGING_4_LEVEL);
      return { b, mem, tr, vas: Array.from({ length: pages }, (_, i) => VMALLOC + BigInt(i) * 4096n + 0x10n) };
    }

    it('keeps unchanged entries across epochs: one leaf read each, upper levels once per epoch, no walk', () => {
      const { tr, vas } = setup();
      for (const va of vas) tr.physical(va);
      assert.equal(tr.stats.misses, vas.length);
      const reads0 = tr.tables.entryChecks;
      tr.tables.newEpoch();
      for (const va of vas) assert.equal(tr.physical(va), 0x400010 + Number(va - VMALLOC - 0x10n));
      assert.equal(tr.stats.misses, vas.length, 'no VA walked again');
      assert.equal(tr.stats.revalidated, vas.length);
      // 64 leaves in one page table: 64 leaf reads + PML4, PDPT and PD entries once.
      assert.equal(tr.tables.entryChecks - reads0, vas.length + 3);
      // Same epoch again: no reads at all.
      const reads1 = tr.tables.entryChecks;
      for (const va of vas) tr.physical(va);
      assert.equal(tr.tables.entryChecks, reads1);
    });

    it('a leaf PTE changed between passes: the new frame, and only that VA walked again', () => {
      const { b, tr, vas } = setup();
      for (const va of vas) tr.physical(va);
      b.writeEntry(b.entryAddr(vas[5]!, 1), 0x7000n | P | RW);
      tr.tables.newEpoch();
      for (const va of vas) tr.physical(va);
      assert.equal(tr.physical(vas[5]!), 0x7010);
      assert.equal(tr.stats.misses, vas.length + 1);
      assert.equal(tr.stats.stale, 1);
    });

    it('an upper entry repointed to a new page table while the old table still holds the old words', () => {
      const { b, mem, tr, vas } = setup();
      for (const va of vas) tr.physical(va);
      // The PD entry now points at a fresh PT mapping the same VAs elsewhere; the old PT is left intact.
      const newPt = b.alloc();
      for (let i = 0; i < vas.length; i++) b.writeEntry(newPt + i * 8, BigInt(0x600000 + i * 4096) | P | RW);
      b.writeEntry(b.entryAddr(vas[0]!, 2), BigInt(newPt) | P | RW);
      tr.tables.newEpoch();
      for (const va of vas) assert.equal(cached(tr, va), fresh(mem, b.top, va));
      assert.equal(tr.physical(vas[3]!), 0x603010);
      assert.equal(tr.stats.misses, 2 * vas.length, 'every VA under the changed entry walked again');
    });

    it('an entry two levels up repointed (old PD and PT intact): every VA below walks again', () => {
      const { b, mem, tr, vas } = setup();
      for (const va of vas) tr.physical(va);
      // A new PD whose entry points at a new PT; the PDPT entry now points at the new PD.
      const newPd = b.alloc();
      const newPt = b.alloc();
      for (let i = 0; i < vas.length; i++) b.writeEntry(newPt + i * 8, BigInt(0x700000 + i * 4096) | P | RW);
      const pdIndex = PageTableBuilder.index(vas[0]!, 2);
      b.writeEntry(newPd + pdIndex * 8, BigInt(newPt) | P | RW);
      b.writeEntry(b.entryAddr(vas[0]!, 3), BigInt(newPd) | P | RW);
      tr.tables.newEpoch();
      for (const va of vas) assert.equal(cached(tr, va), fresh(mem, b.top, va), `va 0x${va.toString(16)}`);
      assert.equal(tr.physical(vas[7]!), 0x707010);
    });

    it('a page table unhooked between passes: faults, not the old frame', () => {
      const { b, tr, vas } = setup();
      for (const va of vas) tr.physical(va);
      b.writeEntry(b.entryAddr(vas[0]!, 2), 0n);
      tr.tables.newEpoch();
      for (const va of vas) assert.equal(cached(tr, va), 'fault');
    });

    it('within one epoch the cached answer stands (a pass reads one state)', () => {
      const { b, tr, vas } = setup();
      tr.physical(vas[1]!);
      b.writeEntry(b.entryAddr(vas[1]!, 1), 0x9000n | P);
      assert.equal(tr.physical(vas[1]!), 0x401010);
      tr.tables.newEpoch();
      assert.equal(tr.physical(vas[1]!), 0x9010);
    });

    it('a source generation change opens a new epoch by itself', () => {
      const { b, mem, tr, vas } = setup();
      tr.physical(vas[2]!);
      b.writeEntry(b.entryAddr(vas[2]!, 1), 0xa000n | P);
      mem.bump();
      assert.equal(tr.physical(vas[2]!), 0xa010);
    });

    it('random page-table churn over 40 epochs never yields a stale translation', () => {
      const { b, mem, tr, vas } = setup(128);
      let seed = 12345;
      const rand = (n: number): number => {
        seed = (seed * 1103515245 + 12345) & 0x7fffffff;
        return seed % n;
      };
      const pts = [b.entryAddr(vas[0]!, 2)];
      const spare = [b.alloc(), b.alloc()];
      for (const t of spare) for (let i = 0; i < 512; i++) b.writeEntry(t + i * 8, BigInt(0x500000 + ((i * 7) % 256) * 4096) | P);
      // Two levels up: the PDPT entry switches between the original PD and another one over the spare PTs.
      const pdpt = b.entryAddr(vas[0]!, 3);
      const originalPd = b.readEntry(pdpt);
      const otherPd = b.alloc();
      for (let i = 0; i < 512; i++) b.writeEntry(otherPd + i * 8, BigInt(spare[i % 2]!) | P | RW);
      for (let epoch = 0; epoch < 40; epoch++) {
        for (let k = 0; k < 6; k++) {
          const r = rand(10);
          const va = vas[rand(vas.length)]!;
          if (r < 5) b.writeEntry(b.entryAddr(va, 1), BigInt(0x200000 + rand(512) * 4096) | P | RW);
          else if (r < 7) b.writeEntry(b.entryAddr(va, 1), 0n);
          else if (r < 8) b.writeEntry(pts[0]!, BigInt(spare[rand(2)]!) | P | RW);
          else if (r < 9) b.writeEntry(pdpt, rand(2) ? BigInt(otherPd) | P | RW : originalPd);
          else b.writeEntry(pts[0]!, 0n);
        }
        tr.tables.newEpoch();
        for (let i = 0; i < 64; i++) {
          const va = vas[rand(vas.length)]! + BigInt(rand(4096));
          assert.equal(cached(tr, va), fresh(mem, b.top, va), `epoch ${epoch}, va 0x${va.toString(16)}`);
        }
        // Restore a present page table now and then so leaves get cached again.
        if (rand(3) === 0) b.writeEntry(pts[0]!, BigInt(spare[0]!) | P | RW);
      }
      assert.ok(tr.stats.revalidated > 0 && tr.stats.stale > 0, 'both paths exercised');
    });

    it('the 15-bit epoch tag wrapping around never revives an old translation', () => {
      const { b, tr, vas } = setup(4);
      tr.physical(vas[0]!);
      b.writeEntry(b.entryAddr(vas[0]!, 1), 0x9000n | P);
      // Exactly one tag cycle later, used only at the ends.
      for (let i = 0; i < 0x8000; i++) tr.tables.newEpoch();
      assert.equal(tr.physical(vas[0]!), 0x9010);
      // And used all along the way across a wrap.
      b.writeEntry(b.entryAddr(vas[0]!, 1), 0xa000n | P);
      for (let i = 0; i < 0x8000; i++) {
        tr.tables.newEpoch();
        if (i === 5) b.writeEntry(b.entryAddr(vas[0]!, 1), 0xb000n | P);
        assert.equal(tr.physical(vas[0]!), i < 5 ? 0xa010 : 0xb010);
      }
    });

    it('a full table of upper entries starts over (bounded memory) and still never answers stale', () => {
      const b = new PageTableBuilder(new Uint8Array(8 * MiB), 4, 0x100000);
      // 100 VAs, each under its own PD entry: more upper entries than a 64-slot translator keeps (64).
      const vas = Array.from({ length: 100 }, (_, i) => VMALLOC + BigInt(i) * (2n << 20n));
      vas.forEach((va, i) => b.map(va, 0x400000 + i * 4096, 4096));
      const mem = testMemory(b.bytes, { mapped });
      const tr = new Translator(mem, b.top, PAGING_4_LEVEL, { maxEntries: 64 });
      for (const va of vas) assert.equal(tr.physical(va), fresh(mem, b.top, va));
      assert.ok(tr.stats.flushes >= 1, 'the upper-entry table filled and started over');
      b.writeEntry(b.entryAddr(vas[99]!, 2), 0n);
      b.writeEntry(b.entryAddr(vas[98]!, 1), 0x9000n | P);
      tr.tables.newEpoch();
      for (const va of vas) assert.equal(cached(tr, va), fresh(mem, b.top, va));
    });

    it('direct-map translations survive every epoch without a read', () => {
      const b = new PageTableBuilder(new Uint8Array(8 * MiB), 4, 0x100000);
      b.map(DIRECT, 0, 2 * MiB);
      b.map(DIRECT + 2n * BigInt(MiB), 2 * MiB, 2 * MiB);
      const mem = testMemory(b.bytes, { mapped });
      const tr = new Translator(mem, b.top, PAGING_4_LEVEL);
      tr.setDirectMap(DIRECT, mem.size);
      const vas = [0x1000n, 0x3_2000n, 0x20_5000n].map((o) => DIRECT + o);
      for (const va of vas) tr.physical(va);
      const reads = tr.tables.entryChecks;
      for (let e = 0; e < 5; e++) {
        tr.tables.newEpoch();
        for (const va of vas) assert.equal(tr.physical(va), Number(va - DIRECT));
      }
      assert.equal(tr.tables.entryChecks, reads);
      // The first two share a 2 MiB page: one walk for both.
      assert.equal(tr.stats.misses, vas.length - 1);
      assert.equal(tr.stats.largePages, 1);
      // flush() (a pass that reuses nothing) drops them too.
      tr.flush();
      tr.physical(vas[0]!);
      assert.equal(tr.stats.misses, vas.length);
    });

    it('a 2 MiB page answers for its other 4 KiB pages in its epoch only: a page changed since is walked again', () => {
      const b = new PageTableBuilder(new Uint8Array(8 * MiB), 4, 0x100000);
      b.map(VMALLOC, 2 * MiB, 2 * MiB);
      const mem = testMemory(b.bytes, { mapped });
      const tr = new Translator(mem, b.top, PAGING_4_LEVEL);
      assert.equal(tr.physical(VMALLOC + 0x1000n), 2 * MiB + 0x1000);
      assert.equal(tr.physical(VMALLOC + 0x5_0010n), 2 * MiB + 0x5_0010, 'another 4 KiB page of it, without a walk');
      assert.deepEqual([tr.stats.misses, tr.stats.largePages], [1, 1]);
      b.writeEntry(b.entryAddr(VMALLOC, 2), BigInt(4 * MiB) | P | RW | 0x80n); // PS: the PD entry now maps another 2 MiB frame
      tr.tables.newEpoch();
      assert.equal(tr.physical(VMALLOC + 0x7_0000n), 4 * MiB + 0x7_0000, 'a page first asked for in the new epoch sees the new frame');
      assert.equal(tr.physical(VMALLOC + 0x1000n), 4 * MiB + 0x1000, 'a cached page is checked again');
      // Found stale, it is answered by the new epoch's walk of its 2 MiB page, not the old one.
      assert.deepEqual([tr.stats.misses, tr.stats.stale, tr.stats.largePages], [2, 1, 2]);
    });
  });
}
