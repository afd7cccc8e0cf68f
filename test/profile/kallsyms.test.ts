import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { FaultError, ProfileError } from '../../src/core/errors.js';
import type { PhysicalMemory } from '../../src/memory/types.js';
import {
  KallsymsError,
  START_KERNEL_MAP,
  decodeKallsymsAt,
  kallsymsDigest,
  kallsymsFromBytes,
  kernelImageReader,
  loadKallsyms,
  searchKallsyms,
} from '../../src/profile/kallsyms.js';
import { countInversions, decodeAddresses, decodeNames, entryHeader, parseTokens } from '../../src/profile/kallsyms/decode.js';
import { findTokenIndexCandidates } from '../../src/profile/kallsyms/locate.js';
import { parseVmcoreinfo } from '../../src/profile/vmcoreinfo.js';
import { type SynthAddressing, type SynthOrder, expectedLines, kernelLikeSymbols, relativeTableAddresses, synthKallsyms } from './helpers/kallsyms-synth.js';
import { gpa } from '../../src/core/address.js';

const TEXT = 0xffffffffa5a00000n;

function sha(s: string): string {
  return createHash('sha256').update(s, 'latin1').digest('hex');
}

function symbolsFor(addressing: SynthAddressing, count = 3000, longNames = 0) {
  const all = kernelLikeSymbols(count, TEXT, 11, longNames);
  // Per-cpu 'A' symbols sit below relative_base: only ABSOLUTE_PERCPU and absolute tables can hold them.
  return addressing === 'relative' ? all.filter((s) => s.type !== 'A') : all;
}

/** A PhysicalMemory over one buffer (flat, zero-copy). */
function memoryOf(bytes: Uint8Array): PhysicalMemory {
  return {
    technique: { class: 'file', name: 'test-buffer', live: false, haltsGuest: false, zeroCopy: true },
    target: 'test-buffer',
    size: bytes.length,
    generation: 0,
    ranges: () => [{ start: gpa(0), end: gpa(bytes.length) }],
    readv(ops) {
      const failures = [];
      for (const op of ops) {
        op.dst ??= new Uint8Array(op.len);
        if (op.addr < 0 || op.addr + op.len > bytes.length) {
          op.dst.fill(0);
          failures.push({ addr: op.addr, len: op.len, reason: 'outside the buffer' });
        } else op.dst.set(bytes.subarray(op.addr, op.addr + op.len));
      }
      return failures;
    },
    mapped: () => [{ start: 0, bytes }],
    close: async () => {},
  };
}

/** A kernel-virtual reader that maps `base` to offset 0 of the bytes. */
function readerAt(bytes: Uint8Array, base: bigint) {
  return {
    read(va: bigint, len: number): Uint8Array {
      const off = va - base;
      if (off < 0n || off + BigInt(len) > BigInt(bytes.length)) throw new FaultError('virtual', va, 'not mapped in the test');
      return bytes.slice(Number(off), Number(off) + len);
    },
  };
}

const LAYOUTS: Array<{ order: SynthOrder; addressing: SynthAddressing; align: 4 | 8 }> = [
  { order: 'classic', addressing: 'absolute-percpu', align: 8 }, // 5.10
  { order: 'classic+seqs', addressing: 'absolute-percpu', align: 4 }, // Debian 6.1
  { order: 'names-first', addressing: 'absolute-percpu', align: 8 }, // 6.12
  { order: 'classic', addressing: 'relative', align: 8 },
  { order: 'names-first', addressing: 'relative', align: 4 },
  { order: 'classic', addressing: 'absolute', align: 8 },
  { order: 'names-first', addressing: 'absolute', align: 8 },
];

describe('kallsyms pattern search on synthesized tables', () => {
  for (const l of LAYOUTS) {
    it(`finds and decodes ${l.order} / ${l.addressing} / align ${l.align}`, () => {
      const syms = symbolsFor(l.addressing);
      const t = synthKallsyms(syms, { ...l, before: 10_000, after: 3_000 });
      const r = kallsymsFromBytes(t.bytes, { source: 'synth' });
      assert.equal(r.table.count, syms.length);
      assert.equal(r.complete, true);
      assert.deepEqual(r.anomalies, []);
      assert.equal(r.layout.order, l.order === 'classic+seqs' ? 'classic' : l.order);
      assert.equal(r.layout.addressing, l.addressing);
      assert.equal(r.layout.seqsOfNames, l.order === 'classic+seqs');
      assert.equal(r.layout.physical?.kallsyms_token_index, t.at.tokenIndex);
      assert.equal(r.layout.physical?.kallsyms_names, t.at.names);
      assert.equal(r.text, TEXT);
      const d = kallsymsDigest(r.table);
      assert.equal(d.count, syms.length);
      assert.equal(d.sha256, sha(expectedLines(syms)));
      assert.equal(r.table.address('_text'), TEXT);
    });
  }

  // Debian 6.12.118: 166973 symbols. An odd count leaves kallsyms_offsets ending 4 bytes short of an
  // 8-byte boundary, so kallsyms_relative_base sits after 4 bytes of padding; reading it unpadded gives
  // 0x8100000000000000 for 0xffffffff81000000, which every sortedness check accepts.
  const PADDED: typeof LAYOUTS = [...LAYOUTS, { order: 'names-first', addressing: 'relative', align: 8 }, { order: 'classic', addressing: 'absolute-percpu', align: 4 }];
  for (const l of PADDED) {
    it(`finds relative_base and the address table after alignment padding (odd symbol count): ${l.order} / ${l.addressing} / align ${l.align}`, () => {
      const text = 0xffffffff81000000n;
      let syms = kernelLikeSymbols(2001, text, 13);
      if (l.addressing === 'relative') syms = syms.filter((s) => s.type !== 'A');
      if (syms.length % 2 === 0) syms = syms.filter((s) => s.name !== 'startup_64');
      assert.equal(syms.length % 2, 1);
      const t = synthKallsyms(syms, { ...l, seed: 3 });
      if (l.addressing !== 'absolute' && l.align === 8) assert.equal(t.at.relativeBase! - (t.at.addressTable + 4 * syms.length), 4, 'the synthetic table has the padding');
      const r = kallsymsFromBytes(t.bytes, { source: 'synth' });
      assert.deepEqual(r.anomalies, []);
      assert.equal(r.layout.align, l.align);
      assert.equal(r.text, text);
      assert.equal(r.layout.relativeBase, l.addressing === 'absolute' ? 0n : text);
      assert.equal(r.layout.physical?.kallsyms_offsets ?? r.layout.physical?.kallsyms_addresses, t.at.addressTable);
      if (l.addressing !== 'absolute') assert.equal(r.layout.physical?.kallsyms_relative_base, t.at.relativeBase);
      assert.equal(kallsymsDigest(r.table).sha256, sha(expectedLines(syms)));
    });
  }

  it('decodes names longer than 127 bytes (two-byte length, 6.1+)', () => {
    const syms = symbolsFor('absolute-percpu', 600, 40);
    const t = synthKallsyms(syms, { order: 'names-first', addressing: 'absolute-percpu' });
    assert.ok(t.bigEntries >= 10, `only ${t.bigEntries} entries use the two-byte length`);
    const r = kallsymsFromBytes(t.bytes);
    assert.equal(kallsymsDigest(r.table).sha256, sha(expectedLines(syms)));
    const long = r.table.search('long_*');
    assert.equal(long.length, 40);
    assert.ok(long.every((s) => s.name.length > 130));
  });

  it('finds tables in bytes that do not start at an aligned address', () => {
    const syms = symbolsFor('absolute-percpu', 900);
    const t = synthKallsyms(syms, { order: 'classic', addressing: 'absolute-percpu', align: 4 });
    const shifted = new Uint8Array(t.bytes.length + 2);
    shifted.set(t.bytes, 2);
    const r = kallsymsFromBytes(shifted);
    assert.equal(r.layout.physical?.kallsyms_token_index, t.at.tokenIndex + 2);
    assert.equal(kallsymsDigest(r.table).sha256, sha(expectedLines(syms)));
  });

  it('reads the one- and two-byte length forms', () => {
    assert.deepEqual(entryHeader(Uint8Array.of(0x7f), 0, 1), { len: 0x7f, head: 1 });
    assert.deepEqual(entryHeader(Uint8Array.of(0x85, 0x02), 0, 2), { len: 0x105, head: 2 });
    assert.equal(entryHeader(Uint8Array.of(0x85), 0, 1), undefined);
  });

  it('prefers the table whose _text matches, and reports the other as an anomaly', () => {
    const a = synthKallsyms(symbolsFor('absolute-percpu', 1000), { order: 'classic', addressing: 'absolute-percpu', seed: 1 });
    const otherText = 0xffffffff81000000n;
    const b = synthKallsyms(kernelLikeSymbols(1200, otherText, 5), { order: 'classic', addressing: 'absolute-percpu', seed: 2 });
    const both = new Uint8Array(a.bytes.length + b.bytes.length);
    both.set(a.bytes);
    both.set(b.bytes, a.bytes.length);
    const r = kallsymsFromBytes(both, { expectedText: otherText });
    assert.equal(r.text, otherText);
    assert.equal(r.anomalies.length, 1);
    assert.match(r.anomalies[0]!.reason, /another table/);
  });

  it('reports a _text that disagrees with the one vmcoreinfo implies', () => {
    const t = synthKallsyms(symbolsFor('absolute-percpu', 1000), { order: 'names-first', addressing: 'absolute-percpu' });
    assert.deepEqual(kallsymsFromBytes(t.bytes, { expectedText: TEXT }).anomalies, []);
    const r = kallsymsFromBytes(t.bytes, { expectedText: 0xffffffff81000000n });
    assert.equal(r.text, TEXT);
    assert.equal(r.anomalies.length, 1);
    assert.match(r.anomalies[0]!.reason, /_text decodes to 0xffffffffa5a00000 but vmcoreinfo implies 0xffffffff81000000/);
  });

  it('finds nothing in random bytes, with a typed error', () => {
    const junk = new Uint8Array(1 << 20);
    for (let i = 0; i < junk.length; i++) junk[i] = (i * 2654435761) >>> 24;
    assert.throws(() => kallsymsFromBytes(junk, { source: 'junk' }), (e: unknown) => e instanceof KallsymsError && e instanceof ProfileError && /junk/.test(e.message));
  });

  it('skips a token_index look-alike with no tables behind it', () => {
    const t = synthKallsyms(symbolsFor('absolute-percpu', 800), { order: 'classic', addressing: 'absolute-percpu' });
    const decoy = new Uint8Array(4096 + t.bytes.length);
    for (let i = 0; i < 256; i++) {
      decoy[1024 + 2 * i] = (i * 3) & 0xff;
      decoy[1024 + 2 * i + 1] = (i * 3) >>> 8;
    }
    decoy.set(t.bytes, 4096);
    assert.ok(findTokenIndexCandidates(decoy).length >= 2);
    const rep = searchKallsyms(decoy);
    assert.equal(rep.found.length, 1);
    assert.ok(rep.candidates >= 2);
    assert.ok(rep.rejected.length >= 1);
  });
});

describe('kallsyms at vmcoreinfo addresses (fast path)', () => {
  for (const l of LAYOUTS.filter((x) => x.addressing !== 'absolute')) {
    it(`decodes ${l.order} / ${l.addressing}`, () => {
      const syms = symbolsFor(l.addressing, 2500);
      const t = synthKallsyms(syms, l);
      const base = 0xffffffffa6b00000n;
      const r = decodeKallsymsAt(readerAt(t.bytes, base), relativeTableAddresses(t, base));
      assert.equal(r.method, 'vmcoreinfo');
      assert.equal(r.layout.addressing, l.addressing);
      assert.equal(r.layout.order, l.order === 'classic+seqs' ? 'classic' : l.order);
      assert.deepEqual(r.anomalies, []);
      assert.equal(kallsymsDigest(r.table).sha256, sha(expectedLines(syms)));
    });
  }

  it('decodes kallsyms_addresses (absolute tables)', () => {
    const syms = symbolsFor('absolute', 700);
    const t = synthKallsyms(syms, { order: 'classic', addressing: 'absolute' });
    const base = 0xffffffff82000000n;
    const va = (off: number) => base + BigInt(off);
    const r = decodeKallsymsAt(readerAt(t.bytes, base), {
      names: va(t.at.names),
      numSyms: va(t.at.numSyms),
      tokenTable: va(t.at.tokenTable),
      tokenIndex: va(t.at.tokenIndex),
      addresses: va(t.at.addressTable),
    });
    assert.equal(r.layout.addressing, 'absolute');
    assert.equal(kallsymsDigest(r.table).sha256, sha(expectedLines(syms)));
  });

  it('returns the symbols before a corrupt entry, marked incomplete', () => {
    const syms = symbolsFor('absolute-percpu', 2000);
    const t = synthKallsyms(syms, { order: 'names-first', addressing: 'absolute-percpu' });
    // Find entry 1000 by walking and zero its length byte.
    let pos = t.at.names;
    for (let i = 0; i < 1000; i++) pos += 1 + t.bytes[pos]!;
    t.bytes[pos] = 0;
    const base = 0xffffffffa6b00000n;
    const r = decodeKallsymsAt(readerAt(t.bytes, base), relativeTableAddresses(t, base));
    assert.equal(r.complete, false);
    assert.equal(r.table.count, 1000);
    assert.ok(r.anomalies.some((a) => a.table === 'kallsyms_names' && a.index === 1000));
    assert.equal(r.table.address('_text'), TEXT);
  });

  it('names the table when one is unreadable', () => {
    const t = synthKallsyms(symbolsFor('absolute-percpu', 500), { order: 'classic', addressing: 'absolute-percpu' });
    const base = 0xffffffffa6b00000n;
    assert.throws(
      () =>
        decodeKallsymsAt(readerAt(t.bytes, base), {
          names: base + BigInt(t.at.names),
          numSyms: base + BigInt(t.at.numSyms),
          tokenTable: base + BigInt(t.at.tokenTable),
          tokenIndex: 0xffffffff00000000n,
          offsets: base + BigInt(t.at.addressTable),
          relativeBase: base + BigInt(t.at.relativeBase!),
        }),
      (e: unknown) => e instanceof KallsymsError && e.table === 'kallsyms_token_index' && /0xffffffff00000000/.test(e.message),
    );
  });

  it('rejects an implausible symbol count', () => {
    const t = synthKallsyms(symbolsFor('absolute-percpu', 500), { order: 'classic', addressing: 'absolute-percpu' });
    t.bytes.set([0xff, 0xff, 0xff, 0x7f], t.at.numSyms);
    const base = 0xffffffffa6b00000n;
    assert.throws(
      () =>
        decodeKallsymsAt(readerAt(t.bytes, base), relativeTableAddresses(t, base)),
      (e: unknown) => e instanceof KallsymsError && e.table === 'kallsyms_num_syms',
    );
  });
});

describe('address decoding', () => {
  const raw32 = (xs: number[]) => {
    const b = new Uint8Array(4 * xs.length);
    const dv = new DataView(b.buffer);
    xs.forEach((x, i) => dv.setInt32(4 * i, x, true));
    return b;
  };

  it('reads ABSOLUTE_PERCPU offsets: positive absolute, negative below relative_base', () => {
    const base = 0xfffffffefffff000n; // low half near 2^32: the carry into the high half matters
    const a = decodeAddresses(raw32([0, 0x1000, -1, -0x2001, -0x7fffffff]), 5, 'absolute-percpu', base);
    assert.deepEqual([...a], [0n, 0x1000n, base, base + 0x2000n, base - 1n + 0x7fffffffn]);
  });

  it('reads plain relative offsets as unsigned', () => {
    const base = 0xffffffff81000000n;
    const a = decodeAddresses(raw32([0, 0x10, -1]), 3, 'relative', base);
    assert.deepEqual([...a], [base, base + 0x10n, BigInt.asUintN(64, base + 0xffffffffn)]);
    assert.equal(countInversions(a), 1, "the wrapped third address is below the others");
    assert.equal(countInversions(BigUint64Array.of(5n, 3n, 0x100000000n, 0xffffffffn)), 2);
  });

  it('reads absolute u64 addresses and refuses short tables', () => {
    const b = new Uint8Array(16);
    new DataView(b.buffer).setBigUint64(8, 0xffffffff81234567n, true);
    assert.deepEqual([...decodeAddresses(b, 2, 'absolute', 0n)], [0n, 0xffffffff81234567n]);
    assert.throws(() => decodeAddresses(b, 3, 'absolute', 0n), KallsymsError);
  });
});

describe('token table', () => {
  it('rejects an index that does not match the tokens', () => {
    const table = new TextEncoder().encode(Array.from({ length: 256 }, (_, i) => `t${i}\0`).join(''));
    const index: number[] = [];
    let off = 0;
    for (let i = 0; i < 256; i++) {
      index.push(off);
      off += `t${i}`.length + 1;
    }
    assert.equal(parseTokens(table, index).length[255], 4);
    const bad = [...index];
    bad[7]! += 1;
    assert.throws(() => parseTokens(table, bad), KallsymsError);
    assert.throws(() => parseTokens(table, index.slice(1)), KallsymsError);
  });

  it('stops decoding at a name that does not start with a type letter', () => {
    const table = new Uint8Array(512);
    const index: number[] = [];
    for (let i = 0; i < 256; i++) {
      index.push(2 * i);
      table[2 * i] = i === 0 ? 0x31 /* '1' */ : i;
    }
    const tokens = parseTokens(table, index);
    const names = Uint8Array.of(2, 0x54, 0x61, 2, 0, 0x61);
    const d = decodeNames(names, 0, 2, tokens);
    assert.equal(d.count, 1);
    assert.equal(d.names, 'a');
    assert.equal(String.fromCharCode(d.types[0]!), 'T');
    assert.match(d.anomalies[0]!.reason, /type letter/);
  });
});

describe('loadKallsyms over physical memory', () => {
  // Lay the synthesized tables out as a kernel image: phys(_text) = 16 MiB.
  const imagePhys = 16 << 20;
  const physBase = BigInt(imagePhys) - (TEXT - START_KERNEL_MAP);
  function guest(order: SynthOrder) {
    const syms = symbolsFor('absolute-percpu', 3000);
    const t = synthKallsyms(syms, { order, addressing: 'absolute-percpu', before: 0, after: 0 });
    const ram = new Uint8Array(imagePhys + (4 << 20) + t.bytes.length);
    const tablesPhys = imagePhys + (3 << 20);
    ram.set(t.bytes, tablesPhys);
    const va = (off: number) => BigInt(tablesPhys + off) - physBase + START_KERNEL_MAP;
    return { syms, t, ram, va };
  }
  const vmcoreinfoText = (extra: string) =>
    `OSRELEASE=6.1.0-test\nPAGESIZE=4096\nSYMBOL(init_top_pgt)=ffffffffa7410000\nSYMBOL(_stext)=${TEXT.toString(16)}\nNUMBER(phys_base)=${physBase}\nKERNELOFFSET=${(TEXT - 0xffffffff81000000n).toString(16)}\n${extra}`;

  it('uses the vmcoreinfo addresses when present, through the kernel-image map', () => {
    const g = guest('names-first');
    const v = vmcoreinfoFor(g);
    const r = loadKallsyms({ mem: memoryOf(g.ram), vmcoreinfo: v, target: 'test' });
    assert.equal(r.method, 'vmcoreinfo');
    assert.equal(kallsymsDigest(r.table).sha256, sha(expectedLines(g.syms)));
    assert.match(r.table.source, /vmcoreinfo/);
  });

  function vmcoreinfoFor(g: ReturnType<typeof guest>) {
    return parseVmcoreinfo(
      vmcoreinfoText(
        [
          `SYMBOL(kallsyms_names)=${g.va(g.t.at.names).toString(16)}`,
          `SYMBOL(kallsyms_num_syms)=${g.va(g.t.at.numSyms).toString(16)}`,
          `SYMBOL(kallsyms_token_table)=${g.va(g.t.at.tokenTable).toString(16)}`,
          `SYMBOL(kallsyms_token_index)=${g.va(g.t.at.tokenIndex).toString(16)}`,
          `SYMBOL(kallsyms_offsets)=${g.va(g.t.at.addressTable).toString(16)}`,
          `SYMBOL(kallsyms_relative_base)=${g.va(g.t.at.relativeBase!).toString(16)}`,
          '',
        ].join('\n'),
      ),
    );
  }

  /** Zeroes the length byte of names entry `k` of the tables at phys `tablesAt`. */
  function damageEntry(ram: Uint8Array, namesAt: number, k: number): void {
    let pos = namesAt;
    for (let i = 0; i < k; i++) pos += 1 + ram[pos]!;
    ram[pos] = 0;
  }

  it('keeps the partial table when the tables at the vmcoreinfo addresses are damaged and no intact copy exists', () => {
    const g = guest('names-first');
    damageEntry(g.ram, imagePhys + (3 << 20) + g.t.at.names, 1500);
    const r = loadKallsyms({ mem: memoryOf(g.ram), vmcoreinfo: vmcoreinfoFor(g) });
    assert.equal(r.method, 'vmcoreinfo');
    assert.equal(r.complete, false);
    assert.equal(r.table.count, 1500);
    assert.deepEqual(
      r.steps.map((s) => [s.method, s.ok]),
      [
        ['vmcoreinfo', false],
        ['search-image', false],
        ['search-ram', false],
      ],
    );
  });

  it('prefers an intact copy found by search over damaged tables at the vmcoreinfo addresses', () => {
    const g = guest('names-first');
    // An intact copy earlier in the image, then damage the one vmcoreinfo points at.
    const copyAt = imagePhys + (1 << 20);
    g.ram.set(g.t.bytes, copyAt);
    damageEntry(g.ram, imagePhys + (3 << 20) + g.t.at.names, 10);
    const r = loadKallsyms({ mem: memoryOf(g.ram), vmcoreinfo: vmcoreinfoFor(g) });
    assert.equal(r.method, 'search');
    assert.equal(r.complete, true);
    assert.equal(r.layout.physical?.kallsyms_names, copyAt + g.t.at.names);
    assert.equal(kallsymsDigest(r.table).sha256, sha(expectedLines(g.syms)));
  });

  it('falls back to the pattern search in the kernel image (5.10: no kallsyms keys)', () => {
    const g = guest('classic');
    const v = parseVmcoreinfo(vmcoreinfoText(''));
    const r = loadKallsyms({ mem: memoryOf(g.ram), vmcoreinfo: v });
    assert.equal(r.method, 'search');
    assert.deepEqual(
      r.steps.map((s) => [s.method, s.ok]),
      [
        ['vmcoreinfo', false],
        ['search-image', true],
      ],
    );
    assert.equal(kallsymsDigest(r.table).sha256, sha(expectedLines(g.syms)));
    assert.equal(r.layout.virtual.kallsyms_names, g.va(g.t.at.names));
  });

  it('searches all RAM without vmcoreinfo', () => {
    const g = guest('classic+seqs');
    const r = loadKallsyms({ mem: memoryOf(g.ram) });
    assert.equal(r.steps.at(-1)!.method, 'search-ram');
    assert.equal(kallsymsDigest(r.table).sha256, sha(expectedLines(g.syms)));
  });

  it('lists every attempt when nothing decodes', () => {
    const v = parseVmcoreinfo(vmcoreinfoText(''));
    assert.throws(
      () => loadKallsyms({ mem: memoryOf(new Uint8Array(20 << 20)), vmcoreinfo: v }),
      (e: unknown) => e instanceof KallsymsError && /vmcoreinfo:.*search-image:.*search-ram:/.test(e.message),
    );
  });

  it('kernelImageReader refuses addresses outside the image map', () => {
    const r = kernelImageReader(memoryOf(new Uint8Array(1 << 20)), 0n);
    assert.throws(() => r.read(0xffff888000000000n, 8), FaultError);
    assert.throws(() => r.read(START_KERNEL_MAP + (2n << 20n), 8), FaultError);
    assert.equal(r.read(START_KERNEL_MAP + 16n, 8).length, 8);
  });
});

describe('kallsyms decoder: name hashes for the symbol index', () => {
  it('hashes every decoded name as hashBytes does, and every symbol is found by name through them', async () => {
    const { hashBytes } = await import('../../src/profile/symbols.js');
    const syms = symbolsFor('absolute-percpu', 3000);
    const t = synthKallsyms(syms, { order: 'classic', addressing: 'absolute-percpu' });
    const r = kallsymsFromBytes(t.bytes, { source: 'synth' });
    const c = r.table.columns();
    assert.ok(c.hashes && c.nameBytes, 'the decoder hands over hashes and bytes');
    for (let i = 0; i < r.table.count; i++) assert.equal(c.hashes[i], hashBytes(c.nameBytes, c.nameStarts[i]!, c.nameStarts[i + 1]!));
    for (const s of syms) assert.ok(r.table.indicesOf(s.name).length >= 1, s.name);
  });
});

describe('kallsyms at vmcoreinfo addresses: markers cross-check without a second pass', () => {
  it('flags markers that disagree with the decoded entries, and still decodes every symbol', () => {
    const syms = symbolsFor('absolute-percpu', 2500);
    const t = synthKallsyms(syms, { order: 'classic', addressing: 'absolute-percpu' });
    const base = 0xffffffffa6b00000n;
    const at = relativeTableAddresses(t, base);
    assert.deepEqual(decodeKallsymsAt(readerAt(t.bytes, base), at).anomalies, []);
    new DataView(t.bytes.buffer, t.bytes.byteOffset).setUint32(t.at.markers + 4 * 3, 12345, true);
    const r = decodeKallsymsAt(readerAt(t.bytes, base), at);
    assert.ok(r.anomalies.some((a) => a.table === 'kallsyms_markers' && /not cross-checked/.test(a.reason)), JSON.stringify(r.anomalies));
    assert.equal(r.complete, true);
    assert.equal(kallsymsDigest(r.table).sha256, sha(expectedLines(syms)));
  });
});
