import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AnomalySink } from '../../src/linux/anomaly.js';
import { dataBlock, decodeStateVar, formatDmesg, readKernelLog, readPrintkRingbuffer } from '../../src/linux/printk.js';
import { BareSpace, makeKernel } from './helpers/bare-kernel.js';
import { KBASE, TypeBuilder } from './helpers/synthetic.js';

/** printk ring buffer types laid out like v6.1 (offsets are ours; the reader only uses BTF offsets). */
function prbTypes(): TypeBuilder {
  const b = new TypeBuilder();
  const atomicLong = b.typedef('atomic_long_t', b.struct('', 8, [['counter', b.long, 0]]));
  const lpos = b.struct('prb_data_blk_lpos', 16, [['begin', b.ulong, 0], ['next', b.ulong, 8]]);
  const desc = b.struct('prb_desc', 24, [['state_var', atomicLong, 0], ['text_blk_lpos', lpos, 8]]);
  const info = b.struct('printk_info', 32, [
    ['seq', b.u64, 0],
    ['ts_nsec', b.u64, 8],
    ['text_len', b.u16, 16],
    ['facility', b.u8, 18],
    ['flags', b.u8, 19, 5, 0],
    ['level', b.u8, 19, 3, 5],
    ['caller_id', b.uint, 20],
  ]);
  const descRing = b.struct('prb_desc_ring', 40, [
    ['count_bits', b.uint, 0],
    ['descs', b.ptr(desc), 8],
    ['infos', b.ptr(info), 16],
    ['head_id', atomicLong, 24],
    ['tail_id', atomicLong, 32],
  ]);
  const dataRing = b.struct('prb_data_ring', 32, [
    ['size_bits', b.uint, 0],
    ['data', b.ptr(b.char), 8],
    ['head_lpos', atomicLong, 16],
    ['tail_lpos', atomicLong, 24],
  ]);
  b.struct('printk_ringbuffer', 80, [['desc_ring', descRing, 0], ['text_data_ring', dataRing, 40], ['fail', atomicLong, 72]]);
  return b;
}

const PRB_PTR = KBASE + 0x1000n;
const RB = KBASE + 0x2000n;
const DESCS = KBASE + 0x3000n;
const INFOS = KBASE + 0x4000n;
const DATA = KBASE + 0x6000n;
const COUNT_BITS = 3; // 8 descriptors
const SIZE_BITS = 7; // 128-byte text ring
const SV = (state: number, id: bigint) => (BigInt(state) << 62n) | id;

interface Rec {
  id: bigint;
  state: number;
  begin: bigint;
  next: bigint;
  text: string;
  seq: bigint;
  level?: number;
  textLen?: number;
  blockId?: bigint;
}

function ring(recs: readonly Rec[], head: bigint, tail: bigint, opts: { countBits?: number } = {}) {
  const mem = new BareSpace();
  mem.w64(PRB_PTR, RB);
  mem.w32(RB, opts.countBits ?? COUNT_BITS);
  mem.w64(RB + 8n, DESCS);
  mem.w64(RB + 16n, INFOS);
  mem.w64(RB + 24n, head);
  mem.w64(RB + 32n, tail);
  mem.w32(RB + 40n, SIZE_BITS);
  mem.w64(RB + 48n, DATA);
  mem.map(DESCS, 24 << COUNT_BITS).map(INFOS, 32 << COUNT_BITS).map(DATA, 1 << SIZE_BITS);
  const count = 1n << BigInt(COUNT_BITS);
  for (const r of recs) {
    const i = r.id % count;
    mem.w64(DESCS + i * 24n, SV(r.state, r.id));
    mem.w64(DESCS + i * 24n + 8n, r.begin);
    mem.w64(DESCS + i * 24n + 16n, r.next);
    mem.w64(INFOS + i * 32n, r.seq);
    mem.w64(INFOS + i * 32n + 8n, r.seq * 1_000_000n + 123_456n);
    mem.w16(INFOS + i * 32n + 16n, r.textLen ?? r.text.length);
    mem.w8(INFOS + i * 32n + 19n, (r.level ?? 6) << 5);
    mem.w32(INFOS + i * 32n + 20n, 42);
    const size = 1n << BigInt(SIZE_BITS);
    const off = (r.begin / size === r.next / size ? r.begin : r.next - (r.next % size)) % size;
    mem.w64(DATA + off, r.blockId ?? r.id);
    mem.write(DATA + off + 8n, Buffer.from(r.text));
  }
  return makeKernel(prbTypes(), mem, [['prb', PRB_PTR]]);
}

describe('printk ring buffer decoding', () => {
  test('state_var: state in the top two bits, id below', () => {
    assert.deepEqual(decodeStateVar(SV(2, 77n)), { state: 'finalized', id: 77n });
    assert.deepEqual(decodeStateVar(SV(1, 5n)), { state: 'committed', id: 5n });
    assert.equal(decodeStateVar(SV(3, 0n)).state, 'reusable');
    assert.equal(decodeStateVar(-1n).state, 'reusable');
  });

  test('data blocks: same wrap, wrapped to the ring start, data-less', () => {
    assert.deepEqual(dataBlock(16n, 40n, 128n), { offset: 16, len: 24 });
    assert.deepEqual(dataBlock(128n + 16n, 128n + 40n, 128n), { offset: 16, len: 24 });
    // Did not fit at the end: the block sits at offset 0 of the next wrap.
    assert.deepEqual(dataBlock(120n, 128n + 24n, 128n), { offset: 0, len: 24 });
    assert.equal(dataBlock(1n, 1n, 128n), undefined);
    assert.equal(dataBlock(3n, 3n, 128n), undefined);
    assert.equal(dataBlock(16n, 1000n, 128n), undefined);
  });

  test('every committed or finalized record in id order, the newest (committed) included', () => {
    const k = ring(
      [
        { id: 10n, state: 2, begin: 48n, next: 72n, text: 'first', seq: 100n },
        { id: 11n, state: 2, begin: 72n, next: 96n, text: 'second', seq: 101n, level: 3 },
        // wrapped: begin near the end of wrap 0, data at offset 0 of wrap 1
        { id: 12n, state: 2, begin: 120n, next: 128n + 24n, text: 'third', seq: 102n },
        { id: 13n, state: 1, begin: 128n + 24n, next: 128n + 48n, text: 'newest', seq: 103n },
      ],
      13n,
      10n,
    );
    const a = new AnomalySink();
    const recs = readPrintkRingbuffer(k, a);
    assert.deepEqual(recs.map((r) => r.text), ['first', 'second', 'third', 'newest']);
    assert.deepEqual(recs.map((r) => r.seq), [100n, 101n, 102n, 103n]);
    assert.equal(recs[1]!.level, 3);
    assert.equal(recs[3]!.state, 'committed');
    assert.equal(recs[0]!.caller, 42);
    assert.equal(a.total, 0);
    assert.deepEqual(formatDmesg(recs[0]!), ['[    0.100123] first']);
    assert.equal(readKernelLog(k, a, { limit: 2 }).length, 2);
  });

  test('reserved and reused descriptors and overwritten text are skipped', () => {
    const k = ring(
      [
        { id: 20n, state: 0, begin: 0n, next: 24n, text: 'reserved', seq: 1n },
        { id: 21n, state: 3, begin: 24n, next: 48n, text: 'reusable', seq: 2n },
        { id: 22n, state: 2, begin: 48n, next: 72n, text: 'stale', seq: 3n, blockId: 99n },
        { id: 23n, state: 2, begin: 72n, next: 96n, text: 'kept', seq: 4n },
      ],
      23n,
      20n,
    );
    assert.deepEqual(readPrintkRingbuffer(k, new AnomalySink()).map((r) => r.text), ['kept']);
  });

  test('corrupt: absurd count_bits gives an invalid anomaly and no records', () => {
    const k = ring([], 0n, 0n, { countBits: 60 });
    const a = new AnomalySink();
    assert.deepEqual(readPrintkRingbuffer(k, a), []);
    assert.equal(a.counts.invalid, 1);
  });

  test('corrupt: head/tail far apart is bounded to the descriptor count', () => {
    const k = ring([{ id: 5n, state: 2, begin: 0n, next: 24n, text: 'only', seq: 9n }], 5n, 5n - (1n << 40n));
    const a = new AnomalySink();
    const t0 = performance.now();
    assert.deepEqual(readPrintkRingbuffer(k, a).map((r) => r.text), ['only']);
    assert.ok(performance.now() - t0 < 1000);
    // The span, and the descriptors of the clipped span that do not hold their ids (all but 5, and 0: zeroed).
    assert.equal(a.counts.invalid, 2);
    assert.match(a.items.map((x) => x.detail).join('\n'), /6 of 8 descriptors between tail and head do not hold their id/);
  });

  test('descriptors that do not hold their ids: a few (recycled under a live reader) pass, more are an anomaly', () => {
    const recs: Rec[] = Array.from({ length: 8 }, (_, i) => ({ id: BigInt(30 + i), state: 2, begin: BigInt(i * 14), next: BigInt(i * 14 + 14), text: `r${i}`, seq: BigInt(i) }));
    const read = (foreign: number) => {
      const k = ring(recs, 37n, 30n);
      // The first `foreign` descriptors already hold the ids of the next wrap (the writer reused them).
      for (let i = 0; i < foreign; i++) (k.space as unknown as BareSpace).w64(DESCS + BigInt(((30 + i) % 8) * 24), SV(2, BigInt(38 + i)));
      const a = new AnomalySink();
      return { texts: readPrintkRingbuffer(k, a).map((r) => r.text), a };
    };
    const few = read(2);
    assert.deepEqual([few.texts.length, few.a.total], [6, 0]);
    const many = read(6);
    assert.equal(many.texts.length, 2);
    assert.equal(many.a.counts.invalid, 1);
    assert.match(many.a.items[0]!.detail!, /^6 of 8 descriptors between tail and head do not hold their id/);
  });

  test('corrupt: text_len beyond the block is truncated with an anomaly', () => {
    const k = ring([{ id: 1n, state: 2, begin: 0n, next: 24n, text: 'abcdefghijklmnop', seq: 1n, textLen: 60000 }], 1n, 1n);
    const a = new AnomalySink();
    const [r] = readPrintkRingbuffer(k, a);
    assert.equal(r!.text, 'abcdefghijklmnop');
    assert.equal(a.counts.truncated, 1);
  });

  test('corrupt: an unmapped text ring is a fault anomaly, descriptors still read', () => {
    const k = ring([{ id: 1n, state: 2, begin: 0n, next: 24n, text: 'gone', seq: 1n }], 1n, 1n);
    (k.space as unknown as BareSpace).unmap(DATA);
    const a = new AnomalySink();
    const recs = readPrintkRingbuffer(k, a);
    assert.equal(recs.length, 0); // block id reads as 0 != 1: the text is not trusted
    assert.ok((a.counts.fault ?? 0) >= 1);
  });
});

describe('legacy log_buf (kernels before the lockless ring buffer)', () => {
  function legacy(records: { at: number; text: string; level?: number; len?: number }[], first: number, next: number, wrapAt?: number) {
    const b = new TypeBuilder();
    b.struct('printk_log', 16, [
      ['ts_nsec', b.u64, 0],
      ['len', b.u16, 8],
      ['text_len', b.u16, 10],
      ['dict_len', b.u16, 12],
      ['facility', b.u8, 14],
      ['flags', b.u8, 15, 5, 0],
      ['level', b.u8, 15, 3, 5],
    ]);
    const mem = new BareSpace();
    const BUF = KBASE + 0x10000n;
    const V = KBASE + 0x1000n;
    mem.w64(V, BUF);
    mem.w32(V + 8n, 256);
    mem.w32(V + 16n, first);
    mem.w32(V + 24n, next);
    mem.w64(V + 32n, 500n);
    mem.map(BUF, 256);
    for (const r of records) {
      const len = r.len ?? (16 + r.text.length + 7) & ~7;
      mem.w64(BUF + BigInt(r.at), BigInt(r.at) * 1000n);
      mem.w16(BUF + BigInt(r.at) + 8n, len);
      mem.w16(BUF + BigInt(r.at) + 10n, r.text.length);
      mem.w8(BUF + BigInt(r.at) + 15n, (r.level ?? 4) << 5);
      mem.write(BUF + BigInt(r.at) + 16n, Buffer.from(r.text));
    }
    if (wrapAt !== undefined) mem.w16(BUF + BigInt(wrapAt) + 8n, 0);
    return makeKernel(b, mem, [
      ['log_buf', V],
      ['log_buf_len', V + 8n],
      ['log_first_idx', V + 16n],
      ['log_next_idx', V + 24n],
      ['log_first_seq', V + 32n],
    ]);
  }

  test('records from first to next, following the wrap marker', () => {
    const k = legacy([{ at: 200, text: 'old one' }, { at: 0, text: 'wrapped', level: 2 }, { at: 24, text: 'last' }], 200, 48, 224);
    const a = new AnomalySink();
    const recs = readKernelLog(k, a);
    assert.deepEqual(recs.map((r) => r.text), ['old one', 'wrapped', 'last']);
    assert.deepEqual(recs.map((r) => r.seq), [500n, 501n, 502n]);
    assert.equal(recs[1]!.level, 2);
    assert.equal(a.total, 0);
  });

  test('corrupt: a record length past the buffer stops with an invalid anomaly', () => {
    const k = legacy([{ at: 0, text: 'fine' }, { at: 24, text: 'bad', len: 60000 }], 0, 128);
    const a = new AnomalySink();
    assert.deepEqual(readKernelLog(k, a).map((r) => r.text), ['fine']);
    assert.equal(a.counts.invalid, 1);
  });
});
