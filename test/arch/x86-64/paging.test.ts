import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FaultError } from '../../../src/core/errors.js';
import {
  dtbFromCr3,
  flagNames,
  PAGING_4_LEVEL,
  PAGING_5_LEVEL,
  pagingMode,
  PTE,
  TableReader,
  walk,
  walkMany,
  mappings,
  type WalkStep,
} from '../../../src/arch/x86-64/paging.js';
import { testMemory } from '../helpers/memory.js';
import { PageTableBuilder, XD } from '../helpers/page-tables.js';
import { seededRandom as rng } from '../../../src/core/random.js';

const MiB = 1 << 20;
const GiB = 1 << 30;


function build(levels: 4 | 5): PageTableBuilder {
  const ram = new Uint8Array(4 * MiB);
  const b = new PageTableBuilder(ram, levels, 0x100000);
  const kernelBase = levels === 4 ? 0xffff_ffff_8000_0000n : 0xffff_ffff_8000_0000n;
  // 4 KiB user pages, including a non-contiguous pair.
  b.map(0x400000n, 0x200000, 4096, { user: true, writable: false });
  b.map(0x401000n, 0x2ff000, 4096, { user: true, nx: true });
  // 2 MiB kernel pages, and one whose entry has the PAT bit (12) set: it must not leak into the address.
  b.mapRange(kernelBase, 0x0, 4 * MiB, 2 * MiB, { nx: false });
  b.map(kernelBase + 0x400000n, 0x3000_0000, 2 * MiB, { extra: 1n << 12n });
  // A 1 GiB page high in physical memory, with software bits 52..58 set (ignored by hardware).
  b.map(0xffff_8880_0000_0000n, 0x2_4000_0000, GiB, { nx: true, extra: 0x7fn << 52n });
  // A physical address using bit 51.
  b.map(0x7f00_0000_0000n, 0x8_0000_0000_0000, 4096, { user: true });
  if (levels === 5) {
    // Only reachable with 57-bit addresses.
    b.map(0x00ff_0000_0000_0000n - 0x1000n, 0x201000, 4096, { user: true });
    b.map(0xff00_0000_0000_0000n, 0x202000, 4096);
  }
  return b;
}

function check(b: PageTableBuilder, reader: TableReader, va: bigint): void {
  const mode = pagingMode(b.levels);
  const want = b.expect(va);
  const where = `va 0x${BigInt.asUintN(64, va).toString(16)} (${mode.name})`;
  if (want.kind === 'ok') {
    const t = walk(reader, mode, b.top, va);
    assert.equal(t.pa, want.pa, `${where}: pa`);
    assert.equal(t.pageSize, want.pageSize, `${where}: pageSize`);
    assert.equal(t.level, want.level, `${where}: level`);
    assert.equal((t.flags & PTE.writable) !== 0, want.writable, `${where}: RW`);
    assert.equal((t.flags & PTE.user) !== 0, want.user, `${where}: US`);
    assert.equal(t.nx, want.nx, `${where}: NX`);
    assert.ok(t.flags & PTE.present);
  } else {
    assert.throws(
      () => walk(reader, mode, b.top, va),
      (e: unknown) => {
        assert.ok(e instanceof FaultError, `${where}: FaultError`);
        assert.equal(e.space, 'virtual');
        assert.equal(e.address, BigInt.asUintN(64, va));
        if (want.kind === 'fault') {
          assert.equal(e.level, want.level, `${where}: fault level`);
          assert.equal(typeof e.entry, 'bigint');
          assert.equal(e.entry! & 1n, 0n, 'the reported entry is the non-present one');
        } else assert.match(e.message, /canonical/);
        return true;
      },
    );
  }
}

function interestingVas(b: PageTableBuilder, seed: number): bigint[] {
  const r = rng(seed);
  const vas: bigint[] = [];
  for (const m of b.mappings) {
    vas.push(m.va, m.va + BigInt(m.size) - 1n, m.va + BigInt(Math.floor(r() * m.size)), m.va + BigInt(m.size), m.va - 1n);
  }
  const bits = b.levels === 4 ? 48 : 57;
  for (let i = 0; i < 200; i++) {
    // Random canonical and non-canonical addresses, both halves.
    const raw = (BigInt(Math.floor(r() * 2 ** 32)) << 32n) | BigInt(Math.floor(r() * 2 ** 32));
    vas.push(raw);
    vas.push(BigInt.asUintN(64, BigInt.asIntN(bits, raw)));
  }
  vas.push(0n, 0xffff_ffff_ffff_f000n, 0x0000_8000_0000_0000n, 0xffff_7fff_ffff_ffffn, 0x0100_0000_0000_0000n);
  return vas;
}

for (const levels of [4, 5] as const) {
  for (const mapped of [true, false]) {
    describe(`${levels}-level walk (${mapped ? 'mapped' : 'copying'} source)`, () => {
      it('agrees with the oracle on mapped, unmapped and non-canonical addresses', () => {
        const b = build(levels);
        const reader = new TableReader(testMemory(b.bytes, { mapped }));
        for (const va of interestingVas(b, levels * 7 + (mapped ? 1 : 0))) check(b, reader, va);
      });

      it('walkMany gives the same answers as walk', () => {
        const b = build(levels);
        const mem = testMemory(b.bytes, { mapped });
        const reader = new TableReader(mem);
        const vas = interestingVas(b, 99);
        const many = walkMany(reader, pagingMode(levels), b.top, vas);
        vas.forEach((va, i) => {
          const r = many[i]!;
          const want = b.expect(va);
          if (want.kind === 'ok') {
            assert.ok(!(r instanceof FaultError), `0x${va.toString(16)} should translate`);
            assert.equal(r.pa, want.pa);
            assert.equal(r.pageSize, want.pageSize);
          } else {
            assert.ok(r instanceof FaultError);
            if (want.kind === 'fault') assert.equal(r.level, want.level);
          }
        });
      });
    });
  }

  describe(`${levels}-level faults at each level`, () => {
    it('reports the level and the entry of the first non-present entry', () => {
      const b = new PageTableBuilder(new Uint8Array(MiB), levels, 0x10000);
      const mode = pagingMode(levels);
      const reader = new TableReader(testMemory(b.bytes, { mapped: true }));
      // Build a chain, then remove one entry at each level in turn.
      const va = 0xffff_c900_1234_5000n;
      b.map(va, 0x5000, 4096);
      assert.equal(walk(reader, mode, b.top, va).pa, 0x5000);
      for (let level = 1; level <= levels; level++) {
        const ea = b.entryAddr(va, level);
        const saved = b.readEntry(ea);
        b.writeEntry(ea, 0x0badc0de000n); // present bit clear, junk elsewhere
        const fresh = new TableReader(testMemory(b.bytes, { mapped: true }));
        assert.throws(
          () => walk(fresh, mode, b.top, va),
          (e: unknown) => e instanceof FaultError && e.level === level && e.entry === 0x0badc0de000n && e.address === va,
        );
        b.writeEntry(ea, saved);
      }
      void reader;
    });

    it('treats PS in the top levels as a reserved-bit fault', () => {
      const b = new PageTableBuilder(new Uint8Array(MiB), levels, 0x10000);
      const mode = pagingMode(levels);
      const va = 0x1234_5678_9000n;
      const ea = b.entryAddr(va, 4);
      b.writeEntry(ea, 0x40000000n | 0x81n);
      const reader = new TableReader(testMemory(b.bytes, { mapped: true }));
      assert.throws(() => walk(reader, mode, b.top, va), (e: unknown) => e instanceof FaultError && e.level === 4 && /reserved/.test(e.message));
    });

    it('points outside RAM: a typed fault naming the table', () => {
      const b = new PageTableBuilder(new Uint8Array(MiB), levels, 0x10000);
      const mode = pagingMode(levels);
      const va = 0x7000_0000n;
      b.writeEntry(b.entryAddr(va, 2), 0x7_0000_0000n | 0x3n); // next table far outside RAM
      for (const mapped of [true, false]) {
        const reader = new TableReader(testMemory(b.bytes, { mapped }));
        assert.throws(() => walk(reader, mode, b.top, va), (e: unknown) => e instanceof FaultError && e.level === 1 && /unreadable/.test(e.message));
      }
    });
  });
}

describe('effective flags', () => {
  it('ANDs RW and US over the levels and ORs NX', () => {
    const b = new PageTableBuilder(new Uint8Array(MiB), 4, 0x10000);
    const va = 0x7fff_0000_0000n;
    b.map(va, 0x8000, 4096, { writable: true, user: true, nx: false });
    const pd = b.entryAddr(va, 2);
    // Upper level: read-only, supervisor, no-execute.
    b.writeEntry(pd, (b.readEntry(pd) & ~0x6n) | XD);
    const t = walk(new TableReader(testMemory(b.bytes)), PAGING_4_LEVEL, b.top, va);
    assert.equal(t.flags & PTE.writable, 0);
    assert.equal(t.flags & PTE.user, 0);
    assert.equal(t.nx, true);
    assert.deepEqual(flagNames(t).slice(0, 4), ['P', 'RO', 'SU', 'NX']);
  });
});

describe('canonical addresses', () => {
  it('differ between 48-bit and 57-bit modes', () => {
    const b4 = new PageTableBuilder(new Uint8Array(MiB), 4, 0x10000);
    const b5 = new PageTableBuilder(new Uint8Array(MiB), 5, 0x10000);
    const r4 = new TableReader(testMemory(b4.bytes));
    const r5 = new TableReader(testMemory(b5.bytes));
    const va = 0x0000_8000_0000_0000n; // canonical only with 57 bits
    assert.throws(() => walk(r4, PAGING_4_LEVEL, b4.top, va), /canonical/);
    assert.throws(() => walk(r5, PAGING_5_LEVEL, b5.top, va), (e: unknown) => e instanceof FaultError && e.level === 5);
    assert.throws(() => walk(r5, PAGING_5_LEVEL, b5.top, 0x0100_0000_0000_0000n), /canonical/);
    assert.throws(() => walk(r4, PAGING_4_LEVEL, b4.top, 1n << 64n), /64-bit/);
  });

  it('accepts negative bigints as sign-extended addresses', () => {
    const b = new PageTableBuilder(new Uint8Array(MiB), 4, 0x10000);
    b.map(0xffff_ffff_ffff_f000n, 0x3000, 4096);
    const t = walk(new TableReader(testMemory(b.bytes)), PAGING_4_LEVEL, b.top, -0x1000n + 0x10n);
    assert.equal(t.pa, 0x3010);
    assert.equal(t.va, 0xffff_ffff_ffff_f010n);
  });
});

describe('trace', () => {
  it('records every level with its table, index and entry', () => {
    const b = new PageTableBuilder(new Uint8Array(MiB), 5, 0x10000);
    const va = 0xff11_2233_4455_6000n;
    b.map(va, 0x9000, 4096);
    const steps: WalkStep[] = [];
    walk(new TableReader(testMemory(b.bytes)), PAGING_5_LEVEL, b.top, va, steps);
    assert.deepEqual(steps.map((s) => s.level), [5, 4, 3, 2, 1]);
    assert.deepEqual(steps.map((s) => s.index), [5, 4, 3, 2, 1].map((l) => PageTableBuilder.index(va, l)));
    assert.equal(steps[0]!.tableAddr, b.top);
    for (const s of steps) assert.equal(s.entry, b.readEntry(s.entryAddr));
  });
});

describe('TableReader on a copying source', () => {
  it('reads whole tables once per generation and batches prefetches', () => {
    const b = build(4);
    const mem = testMemory(b.bytes);
    const reader = new TableReader(mem);
    const vas = b.mappings.map((m) => m.va);
    walkMany(reader, PAGING_4_LEVEL, b.top, vas);
    const calls = mem.calls.readv;
    assert.ok(calls <= 4, `one batch per level, got ${calls} readv calls`);
    walkMany(reader, PAGING_4_LEVEL, b.top, vas);
    assert.equal(mem.calls.readv, calls, 'a second pass in the same generation reads nothing');
    mem.bump();
    walk(reader, PAGING_4_LEVEL, b.top, vas[0]!);
    assert.ok(mem.calls.readv > calls, 'a new generation re-reads the tables');
  });
});

describe('dtbFromCr3', () => {
  it('drops PCID, flag bits and the no-flush bit', () => {
    assert.equal(dtbFromCr3(0x8000_0000_1234_5fffn), 0x1234_5000);
    assert.equal(dtbFromCr3(0x2_3456_7018n), 0x2_3456_7000);
  });
});

describe('hostile page tables', () => {
  it('random table contents give translations or FaultErrors, never crashes or hangs', () => {
    const r = rng(1234);
    const ram = new Uint8Array(1 << 20);
    for (let i = 0; i < ram.length; i++) ram[i] = Math.floor(r() * 256);
    // Keep some entries pointing back into RAM so walks go deep.
    const dv = new DataView(ram.buffer);
    for (let i = 0; i < ram.length; i += 8) if (r() < 0.5) dv.setBigUint64(i, BigInt(Math.floor(r() * 256) * 4096) | BigInt(Math.floor(r() * 4096)), true);
    for (const mapped of [true, false]) {
      for (const mode of [PAGING_4_LEVEL, PAGING_5_LEVEL]) {
        const reader = new TableReader(testMemory(ram, { mapped }));
        let ok = 0;
        for (let i = 0; i < 2000; i++) {
          const va = (BigInt(Math.floor(r() * 2 ** 32)) << 32n) | BigInt(Math.floor(r() * 2 ** 32));
          try {
            const t = walk(reader, mode, 0x1000, BigInt.asUintN(64, BigInt.asIntN(mode.vaBits, va)));
            assert.ok(Number.isSafeInteger(t.pa) && t.pa >= 0 && t.pa < 2 ** 52);
            ok++;
          } catch (e) {
            assert.ok(e instanceof FaultError, String(e));
          }
        }
        assert.ok(ok > 0, 'some walks succeed through the random tables');
        const t0 = performance.now();
        let n = 0;
        for (const m of mappings(reader, mode, 0x1000, { limit: 20_000, maxTables: 500 })) {
          assert.ok(m.size === 4096 || m.size === 2 << 20 || m.size === 1 << 30);
          n++;
        }
        assert.ok(n <= 20_000);
        assert.ok(performance.now() - t0 < 30_000); // a hang guard, not a speed goal (those are benchmarks)
      }
    }
  });
});
