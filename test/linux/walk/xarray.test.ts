import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProfileError } from '../../../src/core/errors.js';
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

test('an empty xarray, a head holding an internal value, or an unreadable head yield nothing', () => {
  const s = setup();
  const sink = new AnomalySink();
  s.mem.w64(s.idr + 8n, 0n);
  assert.deepEqual([...xaForEach(s.typed, s.idr, { anomalies: sink })], []);
  s.mem.w64(s.idr + 8n, 0x406n); // XA_ZERO_ENTRY
  assert.deepEqual([...xaForEach(s.typed, s.idr, { anomalies: sink })], []);
  assert.equal(sink.total, 0);
  assert.deepEqual([...xaForEach(s.typed, KBASE + 0x4000_0000n, { anomalies: sink })], []);
  assert.deepEqual(sink.items.map((a) => a.kind), ['fault']);
});

test('a node pointer outside the kernel is one bad-pointer anomaly; an unreadable root is one fault', () => {
  const s = setup();
  s.mem.w64(s.idr + 8n, 0x1000_0002n);
  let sink = new AnomalySink();
  assert.deepEqual([...xaForEach(s.typed, s.idr, { anomalies: sink })], []);
  assert.deepEqual(sink.items.map((a) => [a.kind, a.address]), [['bad-pointer', 0x1000_0000n]]);
  s.mem.unmap(s.root);
  s.mem.w64(s.idr + 8n, s.root + 2n);
  sink = new AnomalySink();
  assert.deepEqual([...xaForEach(s.typed, s.idr, { anomalies: sink })], []);
  assert.deepEqual(sink.items.map((a) => [a.kind, a.address]), [['fault', s.root]]);
});

test('a root shift that is not a multiple of the chunk shift, or past 63, is invalid; a child must have the parent shift − 6', () => {
  for (const shift of [7, 66]) {
    const s = setup();
    s.mem.w8(s.root, shift);
    const sink = new AnomalySink();
    assert.deepEqual([...xaForEach(s.typed, s.idr, { anomalies: sink })], [], String(shift));
    assert.deepEqual(sink.items.map((a) => [a.kind, a.address]), [['invalid', s.root]]);
    assert.match(sink.items[0]!.detail ?? '', new RegExp(`^shift ${shift} \\(expected a multiple of 6\\)`));
  }
  const s = setup();
  s.mem.w8(s.leaf(1), 12);
  const sink = new AnomalySink();
  assert.equal([...xaForEach(s.typed, s.idr, { anomalies: sink })].length, s.expected.length - 3);
  assert.equal(sink.items[0]!.detail, 'shift 12 (expected 0)');
});

test('a child whose offset is not its slot is a broken link; validate: false checks no back-link', () => {
  const s = setup();
  s.mem.w8(s.leaf(5) + 1n, 4); // leaf in slot 5 says offset 4
  let sink = new AnomalySink();
  assert.deepEqual([...xaForEach(s.typed, s.idr, { anomalies: sink })], s.expected);
  assert.deepEqual(sink.items.map((a) => [a.kind, a.address]), [['broken-link', s.leaf(5)]]);
  assert.equal(sink.items[0]!.detail, 'offset is 4, expected 5');
  s.mem.w64(s.leaf(1) + 8n, KBASE); // and a wrong parent
  sink = new AnomalySink();
  assert.deepEqual([...xaForEach(s.typed, s.idr, { anomalies: sink, validate: false })], s.expected);
  assert.equal(sink.total, 0);
});

test('an entry in an upper node is a multi-index entry at its first index; a node-like value in a leaf is skipped', () => {
  const s = setup();
  s.mem.w64(s.root + 40n + 8n * 2n, PTR(1000)); // root slot 2 (indices 128..191)
  s.mem.w64(s.leaf(5) + 40n + 8n * 7n, KBASE + 0x9002n); // looks like a node, in a shift-0 leaf
  const sink = new AnomalySink();
  const got = [...xaForEach(s.typed, s.idr, { anomalies: sink })];
  assert.deepEqual(got, [...s.expected.slice(0, 5), { index: 128n, entry: PTR(1000) }, ...s.expected.slice(5)].sort((a, b) => Number(a.index - b.index)));
  assert.equal(sink.total, 0);
});

test('the walk stops at the node limit: entries of nodes already open are not yielded after it', () => {
  const s = setup();
  s.mem.w64(s.root + 40n + 8n * 2n, PTR(1000)); // after leaf 1, which hits the limit
  const lim = new AnomalySink();
  const got = [...xaForEach(s.typed, s.idr, { anomalies: lim, limit: 2 })];
  assert.deepEqual(got, s.expected.slice(0, 2), 'leaf 0 only');
  assert.equal(lim.counts.limit, 1);
});

test('the slots array must be a power-of-two array of at least 2', () => {
  for (const slots of [48, 1]) {
    const b = new TypeBuilder();
    const node = b.declare('xa_node');
    b.struct('xarray', 16, [['xa_head', b.voidp, 8]]);
    b.define(node, 40 + 8 * slots, [['shift', b.u8, 0], ['offset', b.u8, 1], ['parent', b.ptr(node), 8], ['slots', b.array(b.voidp, slots), 40]]);
    const mem = new FakeMemory();
    mem.map(KBASE, 16);
    assert.throws(() => [...xaForEach(typedOver(b.db(), mem), KBASE, { anomalies: new AnomalySink() })], ProfileError, String(slots));
  }
});

test('the slots past the array (tags follow in xa_node) are not entries', () => {
  const s = setup();
  s.mem.w64(s.leaf(0) + 40n + 8n * 64n, PTR(2000)); // first word after slots[63]
  assert.deepEqual([...xaForEach(s.typed, s.idr, { anomalies: new AnomalySink() })], s.expected);
});

test('idrForEach: without idr_base (before v4.16) ids are the indices, read from idr_rt wherever it is', () => {
  const b = new TypeBuilder();
  xarrayTypes(b, { idrBase: false, rtOffset: 8 });
  const mem = new FakeMemory();
  const typed = typedOver(b.db(), mem);
  const idr = KBASE;
  mem.map(idr, 32);
  const leaf = KBASE + 0x2000n;
  mem.w64(idr + 8n + 8n, writeXaNode(mem, leaf, 0, 0, 0n, new Map([[1, PTR(1)], [9, PTR(9)]])));
  assert.deepEqual([...idrForEach(typed, idr, { anomalies: new AnomalySink() })], [{ id: 1n, entry: PTR(1) }, { id: 9n, entry: PTR(9) }]);
});

test('idrForEach: an unreadable idr_base is one fault; anomalies of the tree go to the sink, named idr', () => {
  const s = setup();
  let sink = new AnomalySink();
  assert.deepEqual([...idrForEach(s.typed, KBASE + 0x4000_0000n, { anomalies: sink })], []);
  assert.deepEqual(sink.items.map((a) => [a.kind, a.where]), [['fault', 'idr']]);
  s.mem.w64(s.leaf(0) + 8n, KBASE);
  sink = new AnomalySink();
  assert.equal([...idrForEach(s.typed, s.idr, { anomalies: sink })].length, s.expected.length);
  assert.deepEqual(sink.items.map((a) => [a.kind, a.where]), [['broken-link', 'idr']]);
  sink = new AnomalySink();
  [...idrForEach(s.typed, s.idr, { anomalies: sink, where: 'pid_namespace.idr' })];
  assert.deepEqual(sink.items.map((a) => a.where), ['pid_namespace.idr']);
});

test('the root\'s offset byte is not checked (it has no parent slot); a layout error names xa_node.slots', () => {
  const s = setup();
  s.mem.w8(s.root + 1n, 9);
  const sink = new AnomalySink();
  assert.deepEqual([...xaForEach(s.typed, s.idr, { anomalies: sink })], s.expected);
  assert.equal(sink.total, 0);
  const b = new TypeBuilder();
  const node = b.declare('xa_node');
  b.struct('xarray', 16, [['xa_head', b.voidp, 8]]);
  b.define(node, 48, [['shift', b.u8, 0], ['offset', b.u8, 1], ['parent', b.ptr(node), 8], ['slots', b.voidp, 40]]);
  const mem = new FakeMemory();
  mem.map(KBASE, 16);
  assert.throws(
    () => [...xaForEach(typedOver(b.db(), mem), KBASE, { anomalies: new AnomalySink() })],
    (e: unknown) => e instanceof ProfileError && e.type === 'xa_node' && e.field === 'slots' && e.tried?.length === 1,
  );
});
