import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProfileError } from '../../../src/core/errors.js';
import { AnomalySink } from '../../../src/linux/anomaly.js';
import { mtForEach, type MapleEntry } from '../../../src/linux/walk/maple-tree.js';
import { ARANGE_64, enode, LEAF_64, mapleTypes, writeNode } from '../helpers/maple.js';
import { FakeMemory, KBASE, TypeBuilder, typedOver } from '../helpers/synthetic.js';

const MAX = (1n << 64n) - 1n;
const VMA = (i: number) => KBASE + 0x10_0000n + 0x100n * BigInt(i);

/**
 * A VMA-like tree: root arange_64 with three leaf_64 children; each leaf holds
 * gaps (NULL) and VMAs. Expected entries are returned for the oracle.
 */
function setup() {
  const b = new TypeBuilder();
  mapleTypes(b);
  const mem = new FakeMemory();
  const typed = typedOver(b.db(), mem);
  const tree = KBASE;
  mem.map(tree, 16);
  const root = KBASE + 0x1000n;
  const leaves = [KBASE + 0x1100n, KBASE + 0x1200n, KBASE + 0x1300n];
  const expected: MapleEntry[] = [];
  let vma = 0;
  // leaf i covers [i*0x100000, (i+1)*0x100000 - 1] (last one up to MAX)
  leaves.forEach((leaf, i) => {
    const lo = BigInt(i) * 0x10_0000n;
    const hi = i === 2 ? MAX : lo + 0xf_ffffn;
    const slots: [bigint, bigint][] = [];
    let at = lo;
    for (let j = 0; j < 4; j++) {
      const gapEnd = at + 0xfffn;
      slots.push([gapEnd, 0n]);
      const first = gapEnd + 1n;
      const last = first + 0x1fffn;
      slots.push([last, VMA(vma)]);
      expected.push({ first, last, entry: VMA(vma++) });
      at = last + 1n;
    }
    slots.push([hi, 0n]);
    writeNode(mem, leaf, LEAF_64, root, slots);
  });
  writeNode(mem, root, ARANGE_64, tree | 1n, leaves.map((l, i) => [i === 2 ? MAX : BigInt(i + 1) * 0x10_0000n - 1n, enode(l, LEAF_64)]));
  mem.w64(tree + 8n, enode(root, ARANGE_64) | 2n);
  return { typed, mem, tree, root, leaves, expected };
}

test('mtForEach yields every entry with its range, in order', () => {
  const s = setup();
  const sink = new AnomalySink();
  assert.deepEqual([...mtForEach(s.typed, s.tree, { anomalies: sink })], s.expected);
  assert.equal(sink.total, 0);
});

test('a full leaf (16 slots, last pivot implied by max) is read whole', () => {
  const s = setup();
  const slots: [bigint, bigint][] = Array.from({ length: 16 }, (_, i) => [BigInt(i) * 0x10n + 0xfn, VMA(100 + i)]);
  writeNode(s.mem, s.leaves[0]!, LEAF_64, s.root, slots); // pivot[14] = 0xef, slot 15 runs to the node max
  const sink = new AnomalySink();
  const got = [...mtForEach(s.typed, s.tree, { anomalies: sink })].filter((e) => e.first < 0x10_0000n);
  assert.equal(got.length, 16);
  assert.deepEqual(got[15], { first: 0xf0n, last: 0xf_ffffn, entry: VMA(115) });
  assert.equal(sink.total, 0);
});

test('empty tree and single-entry root', () => {
  const s = setup();
  s.mem.w64(s.tree + 8n, 0n);
  assert.deepEqual([...mtForEach(s.typed, s.tree, { anomalies: new AnomalySink() })], []);
  s.mem.w64(s.tree + 8n, VMA(7));
  assert.deepEqual([...mtForEach(s.typed, s.tree, { anomalies: new AnomalySink() })], [{ first: 0n, last: 0n, entry: VMA(7) }]);
});

test('a tree that loops (a child slot pointing at the root) terminates with a cycle anomaly', () => {
  const s = setup();
  s.mem.w64(s.root + 80n + 8n, enode(s.root, ARANGE_64)); // slot 1 -> root
  const sink = new AnomalySink();
  const got = [...mtForEach(s.typed, s.tree, { anomalies: sink })];
  assert.equal(sink.counts.cycle, 1);
  assert.equal(got.length, 8); // leaves 0 and 2
});

test('an endless chain of fresh nodes is cut at MAPLE_HEIGHT_MAX', () => {
  const s = setup();
  // Each node's only child is a new node one level down.
  const chain = (i: number) => KBASE + 0x10_0000_0n + 0x100n * BigInt(i);
  for (let i = 0; i < 40; i++) writeNode(s.mem, chain(i), ARANGE_64, i ? chain(i - 1) : s.tree | 1n, [[MAX, enode(chain(i + 1), ARANGE_64)]]);
  s.mem.w64(s.tree + 8n, enode(chain(0), ARANGE_64) | 2n);
  const sink = new AnomalySink();
  assert.deepEqual([...mtForEach(s.typed, s.tree, { anomalies: sink })], []);
  assert.equal(sink.counts.invalid, 1);
});

test('decreasing pivots, an unknown node type, an unmapped node and a dead node are named anomalies', () => {
  let s = setup();
  s.mem.w64(s.leaves[1]! + 8n + 8n * 3n, 0x10_0010n); // pivot 3 below pivot 2
  let sink = new AnomalySink();
  let got = [...mtForEach(s.typed, s.tree, { anomalies: sink })];
  assert.equal(sink.counts.invalid, 1);
  assert.equal(got.length, 4 + 1 + 4); // leaf 1 stops after its first VMA
  s = setup();
  s.mem.w64(s.root + 80n, s.leaves[0]! | (9n << 3n) | 4n);
  s.mem.w64(s.root + 88n, enode(KBASE + 0x7000_0000n, LEAF_64));
  s.mem.w64(s.leaves[2]!, s.leaves[2]!); // dead: parent points to itself
  sink = new AnomalySink();
  got = [...mtForEach(s.typed, s.tree, { anomalies: sink })];
  assert.deepEqual(got, []);
  assert.equal(sink.counts.invalid, 2);
  assert.equal(sink.counts.fault, 1);
});

test('metadata end beyond the slots is invalid, not an out-of-bounds read', () => {
  const s = setup();
  s.mem.w8(s.root + 240n, 200);
  const sink = new AnomalySink();
  assert.deepEqual([...mtForEach(s.typed, s.tree, { anomalies: sink })], []);
  assert.equal(sink.counts.invalid, 1);
});

/** A tree at KBASE whose root (a range_64 node) spans the whole index space; returns helpers to fill it. */
function bare(opts: { meta?: boolean } = {}) {
  const b = new TypeBuilder();
  mapleTypes(b, opts);
  const mem = new FakeMemory();
  const typed = typedOver(b.db(), mem);
  const tree = KBASE;
  mem.map(tree, 16);
  const node = (i: number) => KBASE + 0x1000n + 0x100n * BigInt(i);
  const setRoot = (enc: bigint) => mem.w64(tree + 8n, enc | 2n);
  const walkAll = (o: Parameters<typeof mtForEach>[2] = {}) => {
    const sink = new AnomalySink();
    return { got: [...mtForEach(typed, tree, { anomalies: sink, ...o })], sink };
  };
  return { mem, typed, tree, node, setRoot, walkAll };
}

test('a dense node holds one index per slot from its minimum, up to its maximum, NULL and reserved slots skipped', () => {
  const t = bare();
  const dense = t.node(1);
  t.mem.map(dense, 256);
  t.mem.w64(dense, t.node(0) | 6n); // parent
  const slot = (i: number, v: bigint) => t.mem.w64(dense + 8n + 8n * BigInt(i), v);
  slot(0, VMA(0));
  slot(2, 0x406n); // reserved (XA_ZERO_ENTRY): skipped
  slot(3, VMA(3));
  slot(5, VMA(5)); // index 0x105 = the node max
  slot(6, VMA(6)); // past the node max: not an entry
  writeNode(t.mem, t.node(0), 2, t.tree | 1n, [[0xffn, 0n], [0x105n, enode(dense, 0)], [MAX, 0n]]);
  t.setRoot(enode(t.node(0), 2));
  const { got, sink } = t.walkAll();
  assert.deepEqual(got, [
    { first: 0x100n, last: 0x100n, entry: VMA(0) },
    { first: 0x103n, last: 0x103n, entry: VMA(3) },
    { first: 0x105n, last: 0x105n, entry: VMA(5) },
  ]);
  assert.equal(sink.total, 0);
});

test('without maple_metadata, the first zero pivot after slot 0 ends a node', () => {
  const t = bare({ meta: false });
  const leaf = t.node(1);
  // root: arange node (no metadata) with two children; pivots after them are 0.
  writeNode(t.mem, leaf, LEAF_64, t.node(0), [[0xfffn, VMA(1)], [0x1fffn, 0n], [0x2fffn, VMA(2)], [0n, VMA(3)]]); // slot 3: after the end
  const leaf2 = t.node(2);
  writeNode(t.mem, leaf2, LEAF_64, t.node(0), [[0n, VMA(4)], [MAX, VMA(5)]]);
  t.mem.w64(leaf2 + 8n, 0x10000n); // pivot 0 = the first index (a one-index range)
  writeNode(t.mem, t.node(0), ARANGE_64, t.tree | 1n, [[0xffffn, enode(leaf, LEAF_64)], [MAX, enode(leaf2, LEAF_64)]]);
  t.setRoot(enode(t.node(0), ARANGE_64));
  const { got, sink } = t.walkAll();
  assert.deepEqual(got, [
    { first: 0n, last: 0xfffn, entry: VMA(1) },
    { first: 0x2000n, last: 0x2fffn, entry: VMA(2) },
    { first: 0x10000n, last: 0x10000n, entry: VMA(4) },
    { first: 0x10001n, last: MAX, entry: VMA(5) },
  ]);
  assert.equal(sink.total, 0);
});

test('with metadata: a last used slot whose pivot is 0 runs to the node max; slot 0 may end at 0; reserved entries are skipped', () => {
  const t = bare();
  const leaf = t.node(1);
  writeNode(t.mem, leaf, LEAF_64, t.node(0), [[0n, VMA(0)], [0x10n, 0x406n], [0x20n, VMA(2)], [0n, VMA(3)]]);
  writeNode(t.mem, t.node(0), 2, t.tree | 1n, [[0xffffn, enode(leaf, LEAF_64)], [MAX, enode(t.node(2), LEAF_64)]]);
  writeNode(t.mem, t.node(2), LEAF_64, t.node(0), [[MAX, VMA(9)]]);
  t.setRoot(enode(t.node(0), 2));
  const { got, sink } = t.walkAll();
  assert.deepEqual(got, [
    { first: 0n, last: 0n, entry: VMA(0) },
    { first: 0x11n, last: 0x20n, entry: VMA(2) },
    { first: 0x21n, last: 0xffffn, entry: VMA(3) },
    { first: 0x10000n, last: MAX, entry: VMA(9) },
  ]);
  assert.equal(sink.total, 0);
});

test('slots after the one that reaches the node max are not read, whatever the metadata says', () => {
  const t = bare();
  writeNode(t.mem, t.node(0), LEAF_64, t.tree | 1n, [[0xfffn, VMA(0)], [MAX, VMA(1)], [5n, VMA(2)], [6n, VMA(3)]]);
  t.setRoot(enode(t.node(0), LEAF_64));
  const { got, sink } = t.walkAll();
  assert.deepEqual(got.map((e) => e.entry), [VMA(0), VMA(1)]);
  assert.equal(sink.total, 0);
});

test('an arange node is sized by its metadata alone, not by a stale last pivot', () => {
  const t = bare();
  writeNode(t.mem, t.node(1), LEAF_64, t.node(0), [[0xffffn, VMA(1)]]);
  writeNode(t.mem, t.node(2), LEAF_64, t.node(0), [[MAX, VMA(2)]]);
  writeNode(t.mem, t.node(0), ARANGE_64, t.tree | 1n, [[0xffffn, enode(t.node(1), LEAF_64)], [MAX, enode(t.node(2), LEAF_64)]]);
  t.mem.w64(t.node(0) + 8n + 8n * 8n, 0x1234n); // stale pivot[8]
  t.setRoot(enode(t.node(0), ARANGE_64));
  const { got, sink } = t.walkAll();
  assert.deepEqual(got.map((e) => e.entry), [VMA(1), VMA(2)]);
  assert.equal(sink.total, 0);
});

test('a pivot above the node max is invalid; metadata end equal to the slot count is invalid', () => {
  let t = bare();
  writeNode(t.mem, t.node(1), LEAF_64, t.node(0), [[0x10n, VMA(1)], [0x20000n, VMA(2)]]); // parent gave it ..0xffff
  writeNode(t.mem, t.node(0), 2, t.tree | 1n, [[0xffffn, enode(t.node(1), LEAF_64)], [MAX, 0n]]);
  t.setRoot(enode(t.node(0), 2));
  let r = t.walkAll();
  assert.deepEqual(r.got.map((e) => e.entry), [VMA(1)]);
  assert.deepEqual(r.sink.items.map((a) => [a.kind, a.address]), [['invalid', t.node(1)]]);
  t = bare();
  writeNode(t.mem, t.node(0), ARANGE_64, t.tree | 1n, [[MAX, enode(t.node(1), LEAF_64)]]);
  t.mem.w8(t.node(0) + 240n, 10); // arange nodes have 10 slots: end 10 is one past
  t.setRoot(enode(t.node(0), ARANGE_64));
  r = t.walkAll();
  assert.deepEqual(r.got, []);
  assert.deepEqual(r.sink.items.map((a) => a.kind), ['invalid']);
});

test('a reserved root, an unreadable tree, a node outside the kernel and the node limit', () => {
  const t = bare();
  t.mem.w64(t.tree + 8n, 0x406n);
  let r = t.walkAll();
  assert.deepEqual([r.got, r.sink.total], [[], 0]);
  const sink = new AnomalySink();
  assert.deepEqual([...mtForEach(t.typed, KBASE + 0x4000_0000n, { anomalies: sink })], []);
  assert.deepEqual(sink.items.map((a) => a.kind), ['fault']);
  writeNode(t.mem, t.node(0), 2, t.tree | 1n, [[0xffn, enode(0x1000_0000n, LEAF_64)], [0x1ffn, enode(t.node(1), LEAF_64)], [MAX, enode(t.node(2), LEAF_64)]]);
  writeNode(t.mem, t.node(1), LEAF_64, t.node(0), [[0x1ffn, VMA(1)]]);
  writeNode(t.mem, t.node(2), LEAF_64, t.node(0), [[MAX, VMA(2)]]);
  t.setRoot(enode(t.node(0), 2));
  r = t.walkAll();
  assert.deepEqual(r.got.map((e) => e.entry), [VMA(1), VMA(2)]);
  assert.deepEqual(r.sink.items.map((a) => [a.kind, a.address]), [['bad-pointer', 0x1000_0000n]]);
  r = t.walkAll({ limit: 2 });
  assert.deepEqual(r.got.map((e) => e.entry), [VMA(1)]);
  assert.deepEqual(r.sink.items.map((a) => a.kind), ['bad-pointer', 'limit']);
});

test('a tree exactly MAPLE_HEIGHT_MAX (31) high is walked whole', () => {
  const t = bare();
  const chain = (i: number) => KBASE + 0x10_0000n + 0x100n * BigInt(i);
  for (let i = 0; i < 30; i++) writeNode(t.mem, chain(i), ARANGE_64, i ? chain(i - 1) : t.tree | 1n, [[MAX, enode(chain(i + 1), i < 29 ? ARANGE_64 : LEAF_64)]]);
  writeNode(t.mem, chain(30), LEAF_64, chain(29), [[MAX, VMA(1)]]);
  t.mem.w64(t.tree + 8n, enode(chain(0), ARANGE_64) | 2n);
  const r = t.walkAll();
  assert.deepEqual(r.got, [{ first: 0n, last: MAX, entry: VMA(1) }]);
  assert.equal(r.sink.total, 0);
});

test('a layout whose pivot is not an array is a ProfileError', () => {
  const b = new TypeBuilder();
  b.struct('maple_node', 256, [['slot', b.array(b.voidp, 31), 8]]);
  b.struct('maple_range_64', 256, [['pivot', b.ulong, 8], ['slot', b.array(b.voidp, 16), 128]]);
  b.struct('maple_arange_64', 256, [['pivot', b.array(b.ulong, 9), 8], ['slot', b.array(b.voidp, 10), 80]]);
  b.struct('maple_tree', 16, [['ma_root', b.voidp, 8]]);
  const mem = new FakeMemory();
  mem.map(KBASE, 16);
  assert.throws(() => [...mtForEach(typedOver(b.db(), mem), KBASE, { anomalies: new AnomalySink() })], ProfileError);
});

test('a dense node spanning more indices than its 31 slots yields only its slots', () => {
  const t = bare();
  const dense = t.node(1);
  t.mem.map(dense, 256);
  t.mem.w64(dense, t.node(0) | 6n);
  for (let i = 0; i < 31; i++) t.mem.w64(dense + 8n + 8n * BigInt(i), VMA(i));
  writeNode(t.mem, t.node(0), 2, t.tree | 1n, [[0xffffn, enode(dense, 0)], [MAX, 0n]]);
  t.setRoot(enode(t.node(0), 2));
  const { got, sink } = t.walkAll();
  assert.deepEqual(got.map((e) => e.first), Array.from({ length: 31 }, (_, i) => BigInt(i)));
  assert.equal(sink.total, 0);
});

test('a zero pivot inside a node\'s data is invalid; a single slot ending at 0 is the index 0 alone', () => {
  let t = bare();
  writeNode(t.mem, t.node(0), LEAF_64, t.tree | 1n, [[0x10n, VMA(0)], [0n, VMA(1)], [0x30n, VMA(2)], [MAX, VMA(3)]]);
  t.setRoot(enode(t.node(0), LEAF_64));
  let r = t.walkAll();
  assert.deepEqual(r.got.map((e) => e.entry), [VMA(0)]);
  assert.deepEqual(r.sink.items.map((a) => a.kind), ['invalid']);
  t = bare();
  writeNode(t.mem, t.node(0), LEAF_64, t.tree | 1n, [[0n, VMA(0)]]);
  t.setRoot(enode(t.node(0), LEAF_64));
  r = t.walkAll();
  assert.deepEqual(r.got, [{ first: 0n, last: 0n, entry: VMA(0) }]);
});

test('the layout error names the type and field it could not use', () => {
  const b = new TypeBuilder();
  b.struct('maple_node', 256, [['slot', b.ulong, 8]]);
  b.struct('maple_tree', 16, [['ma_root', b.voidp, 8]]);
  const mem = new FakeMemory();
  mem.map(KBASE, 16);
  assert.throws(
    () => [...mtForEach(typedOver(b.db(), mem), KBASE, { anomalies: new AnomalySink() })],
    (e: unknown) => e instanceof ProfileError && e.type === 'maple_node' && e.field === 'slot' && e.tried?.length === 1,
  );
});
