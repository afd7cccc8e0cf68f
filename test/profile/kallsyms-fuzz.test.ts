/**
 * Hostile input: random mutations of valid kallsyms tables must end in a
 * result (possibly partial, with anomalies) or a typed VmsightError, in
 * bounded time; never another exception, never a hang.
 */
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { FaultError, VmsightError } from '../../src/core/errors.js';
import { decodeKallsymsAt, kallsymsFromBytes, type KallsymsResult } from '../../src/profile/kallsyms.js';
import { kernelLikeSymbols, relativeTableAddresses, rng, type SynthTables, synthKallsyms } from './helpers/kallsyms-synth.js';

const TEXT = 0xffffffff9c000000n;
const CASES = Number(process.env.KALLSYMS_FUZZ_CASES ?? 120);
const MAX_MS_PER_CASE = 3000;

type Mutation = (b: Uint8Array, t: SynthTables, r: () => number) => Uint8Array;

const pick = <T>(xs: readonly T[], r: () => number): T => xs[Math.floor(r() * xs.length)]!;

const MUTATIONS: Record<string, Mutation> = {
  flipBytes(b, _t, r) {
    const n = 1 + Math.floor(r() * 40);
    for (let i = 0; i < n; i++) b[Math.floor(r() * b.length)]! ^= 1 << Math.floor(r() * 8);
    return b;
  },
  headerWord(b, t, r) {
    const spots = [t.at.numSyms, t.at.markers, t.at.tokenIndex, t.at.tokenIndex + 510, t.at.names, t.at.addressTable, t.at.relativeBase ?? t.at.numSyms];
    const at = pick(spots, r) + 4 * Math.floor(r() * 8);
    const v = pick([0, 0xffffffff, 0x7fffffff, 1, 256, Math.floor(r() * 2 ** 32)], r);
    if (at + 4 <= b.length) new DataView(b.buffer, b.byteOffset).setUint32(at, v >>> 0, true);
    return b;
  },
  truncate(b, _t, r) {
    return b.slice(0, Math.floor(r() * b.length));
  },
  zeroRange(b, _t, r) {
    const s = Math.floor(r() * b.length);
    b.fill(0, s, Math.min(b.length, s + Math.floor(r() * 20000)));
    return b;
  },
  copyRange(b, _t, r) {
    const from = Math.floor(r() * b.length);
    const to = Math.floor(r() * b.length);
    const len = Math.floor(r() * 5000);
    b.copyWithin(to, from, Math.min(b.length, from + len));
    return b;
  },
  nameLengths(b, t, r) {
    // Lengths with bit 7 set, or huge, inside kallsyms_names.
    const n = 1 + Math.floor(r() * 10);
    for (let i = 0; i < n; i++) b[t.at.names + Math.floor(r() * (t.at.markers - t.at.names))] = pick([0x80, 0xff, 0x00, 0x7f], r);
    return b;
  },
};

function outcome(f: () => KallsymsResult): 'result' | 'typed-error' {
  try {
    const r = f();
    assert.ok(r.table.count >= 1);
    assert.ok(r.table.count <= 4_000_000);
    // The table must stay usable: lookups and iteration work on whatever decoded.
    r.table.nameOf(TEXT + 0x100n);
    r.table.search('*lock*');
    return 'result';
  } catch (e) {
    if (e instanceof VmsightError) return 'typed-error';
    throw e;
  }
}

describe('kallsyms fuzz', () => {
  const layouts = [
    { order: 'classic', addressing: 'absolute-percpu', align: 8 },
    { order: 'classic+seqs', addressing: 'absolute-percpu', align: 4 },
    { order: 'names-first', addressing: 'absolute-percpu', align: 8 },
    { order: 'names-first', addressing: 'absolute', align: 8 },
  ] as const;
  const bases = layouts.map((l, i) => synthKallsyms(kernelLikeSymbols(1500, TEXT, 100 + i, 5), { ...l, before: 2048, after: 2048, seed: i }));
  const names = Object.keys(MUTATIONS);

  it(`pattern search: ${CASES} mutated tables end in results or typed errors`, () => {
    const r = rng(2024);
    const tally: Record<string, number> = { result: 0, 'typed-error': 0 };
    for (let c = 0; c < CASES; c++) {
      const base = pick(bases, r);
      const m = names[c % names.length]!;
      const bytes = MUTATIONS[m]!(base.bytes.slice(), base, r);
      const t0 = performance.now();
      const o = outcome(() => kallsymsFromBytes(bytes, { source: `fuzz case ${c} (${m})` }));
      const ms = performance.now() - t0;
      assert.ok(ms < MAX_MS_PER_CASE, `case ${c} (${m}) took ${ms.toFixed(0)} ms`);
      tally[o]!++;
    }
    // Both outcomes must occur, or the mutations are not reaching the decoder.
    assert.ok(tally.result! > 0 && tally['typed-error']! > 0, JSON.stringify(tally));
  });

  it(`vmcoreinfo fast path: ${CASES} mutated tables end in results or typed errors`, () => {
    const r = rng(77);
    const tally: Record<string, number> = { result: 0, 'typed-error': 0, partial: 0 };
    const base = 0xffffffffa0000000n;
    for (let c = 0; c < CASES; c++) {
      const t = pick(bases.slice(0, 3), r);
      const m = names[c % names.length]!;
      const bytes = MUTATIONS[m]!(t.bytes.slice(), t, r);
      const reader = {
        read(va: bigint, len: number): Uint8Array {
          const off = Number(va - base);
          if (off < 0 || off + len > bytes.length || len < 0) throw new FaultError('virtual', va, 'outside the test buffer');
          return bytes.subarray(off, off + len);
        },
      };
      const t0 = performance.now();
      let partial = false;
      const o = outcome(() => {
        const res = decodeKallsymsAt(reader, relativeTableAddresses(t, base));
        partial = !res.complete;
        return res;
      });
      const ms = performance.now() - t0;
      assert.ok(ms < MAX_MS_PER_CASE, `case ${c} (${m}) took ${ms.toFixed(0)} ms`);
      tally[o]!++;
      if (partial) tally.partial!++;
    }
    assert.ok(tally.result! > 0 && tally['typed-error']! > 0, JSON.stringify(tally));
  });
});
