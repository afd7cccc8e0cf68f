import { test } from 'node:test';
import assert from 'node:assert/strict';
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
