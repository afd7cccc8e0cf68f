import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AnomalySink } from '../../../src/linux/anomaly.js';
import { idrForEach } from '../../../src/linux/walk/idr.js';
import { xaForEach } from '../../../src/linux/walk/xarray.js';
import { writeXaNode, xarrayTypes } from '../helpers/xarray.js';
import { FakeMemory, KBASE, TypeBuilder, typedOver } from '../helpers/synthetic.js';

const PTR = (i: number) => KBASE + 0x100_0000n + 0x40n * BigInt(i);

/** An idr at KBASE (xarray inside) with a two-level tree: root shift 6, leaves at slots 0, 1 and 5. */
function setup() {
  const b = new TypeBuilder();
  xarrayTypes(b);
  const mem = new FakeMemory();
  const typed = typedOver(b.db(), mem);
  const idr = KBASE;
  mem.map(idr, 24);
  const root = KBASE + 0x1000n;
  const leaf = (i: number) => KBASE + 0x2000n + 0x400n * BigInt(i);
  const expected: { index: bigint; entry: bigint }[] = [];
  const rootSlots = new Map<number, bigint>();
  for (const li of [0, 1, 5]) {
    const slots = new Map<number, bigint>();
    for (const j of [0, 3, 63]) {
      if (li === 0 && j === 0) continue;
      const index = li * 64 + j;
      slots.set(j, PTR(index));
      expected.push({ index: BigInt(index), entry: PTR(index) });
    }
    slots.set(10, 0x406n); // XA_ZERO_ENTRY-like internal value: skipped
    rootSlots.set(li, writeXaNode(mem, leaf(li), 0, li, root, slots));
  }
  mem.w64(idr + 8n, writeXaNode(mem, root, 6, 0, 0n, rootSlots));
  mem.w32(idr + 16n, 1); // idr_base
  return { typed, mem, idr, root, leaf, expected };
}

test('xaForEach yields present entries in index order, skipping internal values', () => {
  const s = setup();
  const sink = new AnomalySink();
  assert.deepEqual([...xaForEach(s.typed, s.idr, { anomalies: sink })], s.expected);
  assert.equal(sink.total, 0);
});

test('idrForEach adds idr_base', () => {
  const s = setup();
  const got = [...idrForEach(s.typed, s.idr, { anomalies: new AnomalySink() })];
  assert.deepEqual(got.map((e) => e.id), s.expected.map((e) => e.index + 1n));
});

test('a single entry in the head is index 0', () => {
  const s = setup();
  s.mem.w64(s.idr + 8n, PTR(9));
  assert.deepEqual([...xaForEach(s.typed, s.idr, { anomalies: new AnomalySink() })], [{ index: 0n, entry: PTR(9) }]);
});

test('a child pointing back to the root is a cycle; a wrong shift and a wrong parent are named', () => {
  let s = setup();
  s.mem.w64(s.root + 40n + 8n * 7n, s.root + 2n);
  let sink = new AnomalySink();
  assert.deepEqual([...xaForEach(s.typed, s.idr, { anomalies: sink })], s.expected);
  assert.equal(sink.counts.cycle, 1);
  s = setup();
  s.mem.w8(s.leaf(1), 6); // leaf claims shift 6 under a shift-6 root
  s.mem.w64(s.leaf(5) + 8n, KBASE); // wrong parent back-link
  sink = new AnomalySink();
  const got = [...xaForEach(s.typed, s.idr, { anomalies: sink })];
  assert.equal(sink.counts.invalid, 1);
  assert.equal(sink.counts['broken-link'], 1);
  assert.equal(got.length, s.expected.length - 3);
});

test('unmapped nodes fault, the limit bounds a huge tree', () => {
  const s = setup();
  s.mem.unmap(s.leaf(5));
  const sink = new AnomalySink();
  assert.equal([...xaForEach(s.typed, s.idr, { anomalies: sink })].length, 5);
  assert.equal(sink.counts.fault, 1);
  const lim = new AnomalySink();
  assert.equal([...xaForEach(s.typed, s.idr, { anomalies: lim, limit: 2 })].length, 2); // root + leaf 0
  assert.equal(lim.counts.limit, 1);
});
