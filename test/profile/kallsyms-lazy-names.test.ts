/**
 * Deferred kallsyms names (profile/kallsyms/lazy-names.ts) and the
 * SymbolTable over them: the indexing pass must agree with the full decoder
 * (decodeNames) on every column and anomaly, intact or corrupted; single
 * names, name tests and the bulk decode must equal what decodeNames expands;
 * and a table answers lookups by scanning, without decoding every name, until
 * DEFERRED_LOOKUPS, then through its hash index, with the same answers.
 */
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { decodeNames, parseTokens, type Tokens } from '../../src/profile/kallsyms/decode.js';
import { type IndexEngine, indexNames } from '../../src/profile/kallsyms/lazy-names.js';
import { DEFERRED_LOOKUPS, type DeferredNames, hashBytes, scanBucket, type ScanChains, SymbolTable } from '../../src/profile/symbols.js';
import { kernelLikeSymbols, rng, synthKallsyms, type SynthTables } from './helpers/kallsyms-synth.js';

const TEXT = 0xffffffff9d000000n;

function tokensOf(t: SynthTables): Tokens {
  const dv = new DataView(t.bytes.buffer, t.bytes.byteOffset + t.at.tokenIndex, 512);
  const index = Array.from({ length: 256 }, (_, i) => dv.getUint16(2 * i, true));
  return parseTokens(t.bytes.subarray(t.at.tokenTable, t.at.tokenIndex), index);
}

/** The synthesized table's kallsyms_markers (u32 offsets of every 256th entry). */
function markersOf(t: SynthTables, count: number): number[] {
  const dv = new DataView(t.bytes.buffer, t.bytes.byteOffset + t.at.markers, 4 * Math.ceil(count / 256));
  return Array.from({ length: Math.ceil(count / 256) }, (_, i) => dv.getUint32(4 * i, true));
}

function synth(count: number, longNames = 0, seed = 5): SynthTables {
  return synthKallsyms(kernelLikeSymbols(count, TEXT, seed, longNames), { order: 'classic', addressing: 'absolute-percpu' });
}

/**
 * indexNames and decodeNames over the same bytes agree on every column, name and anomaly, with either engine
 * of the indexing pass (WebAssembly and JavaScript), with or without kallsyms_markers to check.
 */
function assertAgree(bytes: Uint8Array, pos: number, count: number, tokens: Tokens, markers?: ArrayLike<number>): void {
  for (const engine of ['wasm', 'js'] as const) assertAgreeWith(engine, bytes, pos, count, tokens, markers);
}

function assertAgreeWith(engine: IndexEngine, bytes: Uint8Array, pos: number, count: number, tokens: Tokens, markers?: ArrayLike<number>): void {
  const full = decodeNames(bytes, pos, count, tokens, markers);
  const lazy = indexNames(bytes, pos, count, tokens, markers, engine);
  assert.equal(lazy.count, full.count);
  assert.equal(lazy.end, full.end);
  assert.deepEqual(lazy.anomalies, full.anomalies);
  assert.deepEqual(lazy.types, full.types);
  assert.deepEqual(lazy.nameStarts, full.nameStarts);
  assert.deepEqual(lazy.entryOffsets, full.entryOffsets);
  for (let i = 0; i < full.count; i++) {
    const name = full.names.slice(full.nameStarts[i]!, full.nameStarts[i + 1]!);
    assert.equal(lazy.nameAt(i), name, `name ${i}`);
    // What a scan filters on before comparing tokens: it must be exact, or a lookup would miss.
    assert.equal(lazy.firstChars![i], name.length ? name.charCodeAt(0) : 0, `first character of name ${i}`);
  }
  if (lazy.count === count) assertChains(lazy.scanChains!, (i) => full.names.slice(full.nameStarts[i]!, full.nameStarts[i + 1]!), lazy.count);
  const all = lazy.decodeAll();
  assert.equal(all.names, full.names);
  assert.deepEqual(all.nameBytes, full.nameBytes);
  // The hashes are the table's own, made when its index is first wanted.
  assert.deepEqual(new SymbolTable({ deferred: lazy, types: lazy.types, addresses: new BigUint64Array(lazy.count) }, 'test').nameHashes(), full.hashes);
}

/** Every entry lies on exactly one scan chain, its name's, and each chain runs down. */
function assertChains(chains: ScanChains, nameAt: (i: number) => string, count: number): void {
  const seen = new Uint8Array(count);
  chains.heads.forEach((head, bucket) => {
    for (let i = head, last = Infinity; i >= 0; last = i, i = chains.next[i]!) {
      assert.ok(i < last, `chain ${bucket} runs down`);
      const name = nameAt(i);
      assert.equal(scanBucket(name.length ? name.charCodeAt(0) : 0, name.length), bucket, `entry ${i} is on its name's chain`);
      seen[i]!++;
    }
  });
  assert.ok(seen.every((n) => n === 1), 'every entry on one chain');
}

describe('kallsyms names indexed without expanding them', () => {
  it('agrees with the full decoder on intact tables, one- and two-byte length forms included', () => {
    for (const [count, long] of [[1, 0], [257, 0], [3000, 40]] as const) {
      const t = synth(count, long);
      if (long) assert.ok(t.bigEntries > 0, 'the table has two-byte lengths');
      assertAgree(t.bytes, t.at.names, count, tokensOf(t));
    }
  });

  it('agrees with the full decoder on corrupted names tables (same count, end and anomalies)', () => {
    const t = synth(1500, 10);
    const tokens = tokensOf(t);
    const r = rng(99);
    for (let c = 0; c < 150; c++) {
      const b = t.bytes.slice();
      const n = 1 + Math.floor(r() * 6);
      for (let k = 0; k < n; k++) b[t.at.names + Math.floor(r() * (t.at.markers - t.at.names))] = [0, 0x80, 0xff, 0x7f, Math.floor(r() * 256)][Math.floor(r() * 5)]!;
      const cut = r() < 0.2 ? b.subarray(0, t.at.names + Math.floor(r() * (t.at.markers - t.at.names))) : b;
      // kallsyms_markers as the table has them, a few of them wrong in every other case
      const markers = markersOf(t, 1500);
      if (c % 2) for (let k = 0; k < 3; k++) markers[Math.floor(r() * markers.length)] = Math.floor(r() * 20000);
      assertAgree(cut, t.at.names, 1500, tokens, c % 3 === 0 ? undefined : markers);
    }
  });

  it('reports at most 16 marker mismatches, then the entry that ends the table, as the full decoder does', () => {
    const t = synth(6000);
    const shifted = markersOf(t, 6000).map((m) => m + 1);
    assertAgree(t.bytes, t.at.names, 6000, tokensOf(t), shifted);
    const cut = t.bytes.subarray(0, t.at.names + markersOf(t, 6000)[20]!);
    assertAgree(cut, t.at.names, 6000, tokensOf(t), shifted);
    assert.equal(indexNames(cut, t.at.names, 6000, tokensOf(t), shifted).anomalies.length, 17);
  });

  it('expands tokens of every length from 1 to 24 bytes, first or later in a name, as the full decoder does', () => {
    // Token i (i ≥ 1) is a type-letter-free run of ((i - 1) % 24) + 1 characters; token 0 is 'T'.
    const parts: number[][] = [];
    for (let i = 0; i < 256; i++) parts.push(i === 0 ? [0x54] : Array.from({ length: ((i - 1) % 24) + 1 }, (_, k) => 0x61 + ((i + k) % 26)));
    const index: number[] = [];
    const tableBytes: number[] = [];
    for (const p of parts) {
      index.push(tableBytes.length);
      tableBytes.push(...p, 0);
    }
    const tokens = parseTokens(Uint8Array.from(tableBytes), index);
    // Names: 'T' alone as the first token, or a first token whose first letter is the type (then up to 23
    // more bytes), followed by 1–6 tokens of any length.
    const r = rng(7);
    const entries: number[] = [];
    const count = 600;
    for (let n = 0; n < count; n++) {
      const first = n % 3 === 0 ? 0 : 2 + Math.floor(r() * 254);
      const toks = [first, ...Array.from({ length: 1 + (n % 6) }, () => 1 + Math.floor(r() * 255))];
      entries.push(toks.length, ...toks);
    }
    assertAgree(Uint8Array.from(entries), 0, count, tokens);
  });

  it('stops at an entry that expands past MAX_NAME_LENGTH, or whose first character is no type letter', () => {
    const table = new Uint8Array(512);
    const index: number[] = [];
    for (let i = 0; i < 256; i++) {
      index.push(2 * i);
      table[2 * i] = i === 0 ? 0x31 /* '1' */ : i;
    }
    const tokens = parseTokens(table, index);
    // 'T' 'a', then a 1100-token entry (1100 bytes > 1024), then 't' 'b'.
    const long = new Uint8Array(2 + 1100);
    long[0] = 0x80 | (1100 & 0x7f);
    long[1] = 1100 >> 7;
    long.fill(0x61, 2);
    const bytes = Uint8Array.from([2, 0x54, 0x61, ...long, 2, 0x74, 0x62]);
    const lazy = indexNames(bytes, 0, 3, tokens);
    assert.equal(lazy.count, 1);
    assert.match(lazy.anomalies[0]!.reason, /expands past 1024/);
    assertAgree(bytes, 0, 3, tokens);
    const noLetter = Uint8Array.of(2, 0x54, 0x61, 2, 0, 0x61);
    assert.match(indexNames(noLetter, 0, 2, tokens).anomalies[0]!.reason, /type letter/);
    assertAgree(noLetter, 0, 2, tokens);
    // A name of the type letter alone is refused too.
    assertAgree(Uint8Array.of(1, 0x54), 0, 1, tokens);
    assert.equal(indexNames(Uint8Array.of(1, 0x54), 0, 1, tokens).count, 0);
  });

  it('tests a name token by token: equal only for the whole name, out-of-range indices are never equal', () => {
    const t = synth(800);
    const lazy = indexNames(t.bytes, t.at.names, 800, tokensOf(t));
    for (let i = 0; i < lazy.count; i += 7) {
      const name = lazy.nameAt(i);
      assert.ok(lazy.nameIs(i, name));
      assert.equal(lazy.nameIs(i, name.slice(0, -1)), false);
      assert.equal(lazy.nameIs(i, `${name}x`), false);
      const last = name.charCodeAt(name.length - 1);
      assert.equal(lazy.nameIs(i, name.slice(0, -1) + String.fromCharCode(last === 0x7a ? 0x79 : last + 1)), false);
      const first = name.charCodeAt(0);
      assert.equal(lazy.nameIs(i, String.fromCharCode(first === 0x7a ? 0x79 : first + 1) + name.slice(1)), false);
    }
    assert.equal(lazy.nameIs(-1, 'x'), false);
    assert.equal(lazy.nameIs(lazy.count, 'x'), false);
    assert.throws(() => lazy.nameAt(lazy.count), RangeError);
    assert.throws(() => lazy.nameAt(-1), RangeError);
  });

  it('truncated(n) keeps the first n names and columns', () => {
    const t = synth(600);
    const lazy = indexNames(t.bytes, t.at.names, 600, tokensOf(t));
    const cut = lazy.truncated(250);
    assert.equal(cut.count, 250);
    assert.equal(cut.nameStarts.length, 251);
    assert.equal(cut.types.length, 250);
    assert.equal(cut.nameAt(249), lazy.nameAt(249));
    assert.equal(cut.decodeAll().names, lazy.decodeAll().names.slice(0, lazy.nameStarts[250]));
    assert.equal(lazy.truncated(600), lazy);
    assert.equal(cut.scanChains, undefined, 'the whole table\'s chains would point past a cut one');
  });
});

/** A deferred table over synthesized names, counting bulk decodes. */
function deferredTable(count: number, { chains }: { chains?: ScanChains | 'own' } = {}) {
  const t = synth(count, 0, 17);
  const lazy = indexNames(t.bytes, t.at.names, t.symbols.length, tokensOf(t));
  let decodes = 0;
  const spy: DeferredNames = {
    count: lazy.count,
    nameStarts: lazy.nameStarts,
    ...(chains ? { firstChars: lazy.firstChars, scanChains: chains === 'own' ? lazy.scanChains : chains } : {}),
    nameAt: (i) => lazy.nameAt(i),
    nameIs: (i, n) => lazy.nameIs(i, n),
    decodeAll: () => {
      decodes++;
      return lazy.decodeAll();
    },
  };
  const addresses = BigUint64Array.from(t.symbols.map((s) => s.address));
  const table = new SymbolTable({ deferred: spy, types: lazy.types, addresses }, 'test');
  const eager = new SymbolTable({ ...lazy.decodeAll(), nameStarts: lazy.nameStarts, types: lazy.types, addresses }, 'test eager');
  return { table, eager, symbols: t.symbols, decodes: () => decodes };
}

describe('SymbolTable over deferred names', () => {
  it('answers lookups by name without decoding every name, equal to a decoded table', () => {
    const { table, eager, symbols, decodes } = deferredTable(2000);
    const names = [...new Set(symbols.map((s) => s.name))].slice(0, 40); // 4 lookups each: under DEFERRED_LOOKUPS
    const dup = symbols.find((s, i) => symbols.findIndex((o) => o.name === s.name) !== i);
    assert.ok(dup, 'the synthesized table repeats a name');
    for (const n of [...names, dup.name, '_text', 'no_such_symbol', '']) {
      assert.equal(table.has(n), eager.has(n), n);
      assert.deepEqual(table.indicesOf(n), eager.indicesOf(n), n);
      assert.deepEqual(table.get(n), eager.get(n), n);
      assert.equal(table.tryAddress(n), eager.tryAddress(n), n);
    }
    assert.ok(table.indicesOf(dup.name).length >= 2);
    assert.deepEqual(table.at(1234), eager.at(1234));
    const va = symbols[777]!.address + 3n;
    assert.deepEqual(table.nameOf(va), eager.nameOf(va));
    assert.equal(decodes(), 0, 'no bulk decode for a few lookups');
    assert.ok(table.byteSize() < eager.byteSize());
  });

  it('with the decoder\'s scan chains: the same answers, no bulk decode', () => {
    const { table, eager, symbols, decodes } = deferredTable(2000, { chains: 'own' });
    const dup = symbols.find((s, i) => symbols.findIndex((o) => o.name === s.name) !== i)!;
    for (const n of [...new Set(symbols.map((s) => s.name))].slice(0, 60).concat(dup.name, '_text', 'no_such_symbol', '')) {
      assert.deepEqual(table.indicesOf(n), eager.indicesOf(n), n);
      assert.equal(table.tryAddress(n), eager.tryAddress(n), n);
    }
    assert.equal(decodes(), 0);
  });

  it('corrupt scan chains (cycles, links up, heads past the end) end every scan and cost only misses', () => {
    const count = 500;
    const heads = new Int32Array(1 << 14).fill(-1);
    const next = new Int32Array(count);
    for (let i = 0; i < count; i++) next[i] = (i * 7 + 3) % count; // links up as well as down: cycles
    for (let b = 0; b < heads.length; b++) heads[b] = b % 3 === 0 ? count + b : b % count;
    const { table, eager, symbols } = deferredTable(count, { chains: { heads, next } });
    for (const s of symbols.slice(0, 80)) {
      const got = table.indicesOf(s.name);
      for (const i of got) assert.equal(table.nameAt(i), s.name, 'a corrupt chain never gives a wrong answer');
      assert.ok(got.every((i) => eager.indicesOf(s.name).includes(i)));
    }
  });

  it('chains of the wrong shape are not used', () => {
    const { table, eager, symbols } = deferredTable(300, { chains: { heads: new Int32Array(7), next: new Int32Array(2) } });
    for (const s of symbols.slice(0, 30)) assert.deepEqual(table.indicesOf(s.name), eager.indicesOf(s.name));
  });

  it(`decodes every name once after ${DEFERRED_LOOKUPS} scans, then answers through the index`, () => {
    const { table, eager, symbols, decodes } = deferredTable(1200);
    for (let k = 0; k < DEFERRED_LOOKUPS; k++) assert.equal(table.tryAddress(symbols[k % symbols.length]!.name), eager.tryAddress(symbols[k % symbols.length]!.name));
    assert.equal(decodes(), 0);
    for (let k = 0; k < 50; k++) {
      const n = symbols[(k * 31) % symbols.length]!.name;
      assert.deepEqual(table.indicesOf(n), eager.indicesOf(n));
    }
    assert.equal(decodes(), 1);
    assert.deepEqual(table.columns().names, eager.columns().names);
    assert.deepEqual(table.nameHashes(), eager.nameHashes());
    assert.equal(table.nameHashes()[5], hashBytes(new TextEncoder().encode(table.nameAt(5)), 0, table.nameAt(5).length));
    assert.equal(decodes(), 1);
  });

  it('after every name is decoded (a listing), lookups still scan until the index is due, with the same answers', () => {
    const { table, eager, symbols, decodes } = deferredTable(900);
    table.columns(); // what a listing of every name does
    assert.equal(decodes(), 1);
    const dup = symbols.find((s, i) => symbols.findIndex((o) => o.name === s.name) !== i)!;
    const names = [dup.name, '_text', 'no_such_symbol', '', ...new Set(symbols.map((s) => s.name))];
    for (let k = 0; k < DEFERRED_LOOKUPS + 40; k++) {
      const n = names[k % names.length]!;
      assert.deepEqual(table.indicesOf(n), eager.indicesOf(n), n);
      assert.equal(table.has(n), eager.has(n), n);
    }
    assert.equal(decodes(), 1);
  });

  it('a name asked for again is answered from its first scan: only distinct names count toward the index', () => {
    const { table, eager, symbols, decodes } = deferredTable(600);
    const few = [...new Set(symbols.map((s) => s.name))].slice(0, 5);
    for (let k = 0; k < DEFERRED_LOOKUPS * 3; k++) {
      const n = few[k % few.length]!;
      assert.deepEqual(table.indicesOf(n), eager.indicesOf(n));
    }
    assert.equal(decodes(), 0, `${DEFERRED_LOOKUPS * 3} lookups of 5 names scan 5 times, never decode every name`);
    const mine = table.indicesOf(few[0]!);
    mine.push(-1);
    assert.deepEqual(table.indicesOf(few[0]!), eager.indicesOf(few[0]!), "a caller's change to its array does not reach the kept answer");
  });

  it('decodes in one pass for what needs every name (search, columns, hashes)', () => {
    for (const use of [(t: SymbolTable) => t.search('*_*'), (t: SymbolTable) => t.columns(), (t: SymbolTable) => t.nameHashes(), (t: SymbolTable) => t.nameIndex()]) {
      const { table, eager, decodes } = deferredTable(300);
      const got = use(table);
      assert.equal(decodes(), 1);
      assert.deepEqual(got, use(eager));
    }
  });

  it('refuses deferred names whose count disagrees with the addresses', () => {
    const t = synth(100);
    const lazy = indexNames(t.bytes, t.at.names, 100, tokensOf(t));
    assert.throws(() => new SymbolTable({ deferred: lazy.truncated(99), types: lazy.types, addresses: new BigUint64Array(100) }, 'bad'), /disagree in length/);
  });
});
