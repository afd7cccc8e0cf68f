import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AnomalySink } from '../../../src/linux/anomaly.js';
import { rbtreeInorder, rbtreeInorderEntry } from '../../../src/linux/walk/rbtree.js';
import { FakeMemory, KBASE, TypeBuilder, typedOver } from '../helpers/synthetic.js';

/** struct item { unsigned long key; struct rb_node node; } — a balanced BST over keys 0..n-1 (shuffled addresses). */
function setup(n: number) {
  const b = new TypeBuilder();
  const { rbNode } = b.listTypes();
  b.struct('item', 32, [['key', b.ulong, 0], ['node', rbNode, 8]]);
  const mem = new FakeMemory();
  const typed = typedOver(b.db(), mem);
  const root = KBASE;
  // address order differs from key order so a walker that sorted by address would fail
  const item = (k: number) => KBASE + 0x1000n + 0x40n * BigInt((k * 7) % n);
  const node = (k: number) => item(k) + 8n;
  mem.map(KBASE, 0x1000 + 0x40 * n);
  const build = (lo: number, hi: number, parent: bigint): bigint => {
    if (lo > hi) return 0n;
    const mid = (lo + hi) >> 1;
    mem.w64(item(mid), BigInt(mid));
    mem.w64(node(mid), parent | 1n); // colour bit set: the walker must mask it
    mem.w64(node(mid) + 16n, build(lo, mid - 1, node(mid)));
    mem.w64(node(mid) + 8n, build(mid + 1, hi, node(mid)));
    return node(mid);
  };
  mem.w64(root, build(0, n - 1, 0n));
  return { typed, mem, root, node };
}

const keys = (s: ReturnType<typeof setup>, sink: AnomalySink, limit?: number) =>
  [...rbtreeInorderEntry(s.typed, s.root, 'item', 'node', { anomalies: sink, ...(limit ? { limit } : {}) })].map((r) => Number(r.read().u64('key')));

test('rbtreeInorder yields nodes in key order', () => {
  const s = setup(37);
  const sink = new AnomalySink();
  assert.deepEqual(keys(s, sink), Array.from({ length: 37 }, (_, i) => i));
  assert.equal(sink.total, 0);
});

test('an empty tree yields nothing', () => {
  const s = setup(1);
  s.mem.w64(s.root, 0n);
  assert.deepEqual([...rbtreeInorder(s.typed, s.root, { anomalies: new AnomalySink() })], []);
});

test('a child pointing back to the root is a cycle, and the walk ends', () => {
  const s = setup(15); // root is key 7; key 3's left child is key 1
  s.mem.w64(s.node(1) + 16n, s.node(7)); // key 1's left -> root
  const sink = new AnomalySink();
  const got = keys(s, sink);
  assert.equal(sink.counts.cycle, 1);
  assert.deepEqual(got, Array.from({ length: 14 }, (_, i) => i + 1)); // key 0 was unlinked; the bogus edge is dropped
});

test('a wrong parent pointer is a broken link; an unmapped child is a fault', () => {
  const s = setup(15);
  s.mem.w64(s.node(11), s.node(0));
  s.mem.w64(s.node(13) + 8n, KBASE + 0x4000_0000n); // key 13's right -> unmapped
  const sink = new AnomalySink();
  const got = keys(s, sink);
  assert.equal(sink.counts['broken-link'], 1);
  assert.equal(sink.counts.fault, 1);
  assert.deepEqual(got, Array.from({ length: 14 }, (_, i) => i)); // key 14 hung off the corrupt pointer
});

test('a degenerate (too deep) chain is cut at the depth bound; the limit bounds the walk', () => {
  const b = new TypeBuilder();
  b.listTypes();
  const mem = new FakeMemory();
  const typed = typedOver(b.db(), mem);
  const n = 200;
  mem.map(KBASE, 0x20 * (n + 1));
  const node = (i: number) => KBASE + 0x20n * BigInt(i + 1);
  mem.w64(KBASE, node(0));
  for (let i = 0; i < n; i++) {
    mem.w64(node(i), i === 0 ? 0n : node(i - 1));
    mem.w64(node(i) + 16n, i + 1 < n ? node(i + 1) : 0n); // all left children
  }
  const sink = new AnomalySink();
  const got = [...rbtreeInorder(typed, KBASE, { anomalies: sink })];
  assert.equal(sink.counts.invalid, 1);
  assert.ok(got.length <= 96);
  const lim = new AnomalySink();
  assert.equal([...rbtreeInorder(typed, KBASE, { anomalies: lim, limit: 5 })].length, 5);
  assert.equal(lim.counts.limit, 1);
});

test('an unreadable root is one fault; a child outside the kernel is one bad-pointer anomaly and its subtree is dropped', () => {
  const s = setup(15);
  let sink = new AnomalySink();
  assert.deepEqual([...rbtreeInorder(s.typed, KBASE + 0x4000_0000n, { anomalies: sink })], []);
  assert.deepEqual(sink.items.map((a) => a.kind), ['fault']);
  s.mem.w64(s.node(13) + 8n, 0xdead_0000_0000_0100n); // key 13's right (key 14) -> poison
  sink = new AnomalySink();
  assert.deepEqual(keys(s, sink), Array.from({ length: 14 }, (_, i) => i));
  assert.deepEqual(sink.items.map((a) => [a.kind, a.address]), [['bad-pointer', 0xdead_0000_0000_0100n]]);
});

test('rbtreeInorderEntry names its anomalies type.member unless told otherwise', () => {
  const s = setup(3);
  s.mem.w64(s.node(2), s.node(0)); // wrong parent
  let sink = new AnomalySink();
  keys(s, sink);
  assert.deepEqual(sink.items.map((a) => a.where), ['item.node']);
  sink = new AnomalySink();
  [...rbtreeInorderEntry(s.typed, s.root, 'item', 'node', { anomalies: sink, where: 'mm.vmas' })];
  assert.deepEqual(sink.items.map((a) => a.where), ['mm.vmas']);
});
