import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ValidationError } from '../../../src/core/errors.js';
import { AnomalySink } from '../../../src/linux/anomaly.js';
import { hlistForEach, hlistForEachEntry, hlistNullsChain, hlistNullsForEach, isNullsMarker, listEmpty, listForEach, listForEachEntry } from '../../../src/linux/walk/list.js';
import { WalkContext } from '../../../src/linux/walk/common.js';
import { hashForEachEntry } from '../../../src/linux/walk/hashtable.js';
import { FakeMemory, KBASE, TypeBuilder, typedOver } from '../helpers/synthetic.js';

/** struct item { int id; struct list_head link; struct hlist_node hnode; } at KBASE + 0x100*i; head at KBASE. */
function setup(n: number) {
  const b = new TypeBuilder();
  const { listHead, hlistNode } = b.listTypes();
  b.struct('item', 48, [['id', b.int_, 0], ['link', listHead, 8], ['hnode', hlistNode, 24]]);
  const mem = new FakeMemory();
  const typed = typedOver(b.db(), mem);
  const head = KBASE;
  const item = (i: number) => KBASE + 0x100n * BigInt(i + 1);
  const link = (i: number) => (i < 0 || i >= n ? head : item(i) + 8n);
  mem.map(KBASE, 0x100 * (n + 2));
  mem.w64(head, link(0));
  mem.w64(head + 8n, link(n - 1));
  for (let i = 0; i < n; i++) {
    mem.w32(item(i), 100 + i);
    mem.w64(link(i), link(i + 1));
    mem.w64(link(i) + 8n, link(i - 1));
  }
  if (n === 0) mem.w64(head, head), mem.w64(head + 8n, head);
  return { typed, mem, head, item, link };
}

const ids = (typed: ReturnType<typeof setup>['typed'], head: bigint, sink: AnomalySink) =>
  [...listForEachEntry(typed, head, 'item', 'link', { anomalies: sink })].map((r) => r.read().s32('id'));

test('listForEachEntry yields every entry in order with no anomaly', () => {
  const { typed, head } = setup(5);
  const sink = new AnomalySink();
  assert.deepEqual(ids(typed, head, sink), [100, 101, 102, 103, 104]);
  assert.equal(sink.total, 0);
});

test('an empty list yields nothing', () => {
  const { typed, head } = setup(0);
  const sink = new AnomalySink();
  assert.deepEqual(ids(typed, head, sink), []);
  assert.equal(sink.total, 0);
});

test('a cycle that skips the head stops with a cycle anomaly', () => {
  const { typed, mem, head, link } = setup(5);
  mem.w64(link(3), link(1)); // 3 -> 1
  const sink = new AnomalySink();
  assert.deepEqual(ids(typed, head, sink), [100, 101, 102, 103]);
  assert.equal(sink.counts.cycle, 1);
  assert.equal(sink.items[0]!.where, 'item.link');
});

test('a self-loop terminates', () => {
  const { typed, mem, head, link } = setup(3);
  mem.w64(link(1), link(1));
  const sink = new AnomalySink();
  assert.deepEqual(ids(typed, head, sink), [100, 101]);
  assert.equal(sink.counts.cycle, 1);
});

test('a pointer into unmapped memory is a fault; a poison pointer is a bad pointer', () => {
  const { typed, mem, head, link } = setup(4);
  mem.w64(link(1), KBASE + 0x1000_0000n);
  let sink = new AnomalySink();
  assert.deepEqual(ids(typed, head, sink), [100, 101]);
  assert.equal(sink.counts.fault, 1);
  mem.w64(link(1), 0xdead_0000_0000_0100n);
  sink = new AnomalySink();
  assert.deepEqual(ids(typed, head, sink), [100, 101]);
  assert.equal(sink.counts['bad-pointer'], 1);
});

test('a broken back-link is reported and the walk continues', () => {
  const { typed, mem, head, link } = setup(4);
  mem.w64(link(2) + 8n, link(0)); // 2->prev should be 1
  const sink = new AnomalySink();
  assert.deepEqual(ids(typed, head, sink), [100, 101, 102, 103]);
  assert.equal(sink.counts['broken-link'], 1);
  assert.equal(sink.items[0]!.address, link(2));
  const quiet = new AnomalySink();
  assert.equal([...listForEach(typed, head, { anomalies: quiet, validate: false })].length, 4);
  assert.equal(quiet.total, 0);
});

test('the node limit bounds the walk', () => {
  const { typed, head } = setup(300);
  const sink = new AnomalySink();
  const got = [...listForEach(typed, head, { anomalies: sink, limit: 10 })];
  assert.equal(got.length, 10);
  assert.equal(sink.counts.limit, 1);
});

test('without a sink the first anomaly throws (strict)', () => {
  const { typed, mem, head, link } = setup(3);
  mem.w64(link(2), link(0));
  assert.throws(() => [...listForEach(typed, head)], ValidationError);
});

test('hlistForEachEntry and hashForEachEntry walk chains, validate pprev, catch cross-bucket cycles', () => {
  const { typed, mem, item } = setup(6);
  const table = KBASE + 0x10000n;
  mem.map(table, 4 * 8);
  // bucket 0: items 0,1,2; bucket 2: items 3,4; buckets 1 and 3 empty.
  const chain = (bucket: number, items: number[]) => {
    let link = table + BigInt(bucket * 8);
    for (const i of items) {
      const node = item(i) + 24n;
      mem.w64(link, node);
      mem.w64(node + 8n, link);
      link = node;
    }
    mem.w64(link, 0n);
  };
  chain(0, [0, 1, 2]);
  chain(2, [3, 4]);
  let sink = new AnomalySink();
  const chain0 = [...hlistForEachEntry(typed, table, 'item', 'hnode', { anomalies: sink })].map((r) => r.read().s32('id'));
  assert.deepEqual(chain0, [100, 101, 102]);
  const all = [...hashForEachEntry(typed, table, 4, 'item', 'hnode', { anomalies: sink })].map((r) => r.read().s32('id'));
  assert.deepEqual(all, [100, 101, 102, 103, 104]);
  assert.equal(sink.total, 0);
  // item 4 -> item 1 (already seen in bucket 0)
  mem.w64(item(4) + 24n, item(1) + 24n);
  sink = new AnomalySink();
  const cyc = [...hashForEachEntry(typed, table, 4, 'item', 'hnode', { anomalies: sink })].map((r) => r.read().s32('id'));
  assert.deepEqual(cyc, [100, 101, 102, 103, 104]);
  assert.equal(sink.counts.cycle, 1);
  // wrong pprev
  mem.w64(item(1) + 24n + 8n, table);
  sink = new AnomalySink();
  [...hlistForEachEntry(typed, table, 'item', 'hnode', { anomalies: sink })];
  assert.equal(sink.counts['broken-link'], 1);
  // absurd bucket count
  sink = new AnomalySink();
  assert.equal([...hashForEachEntry(typed, table, 1e12, 'item', 'hnode', { anomalies: sink })].length, 0);
  assert.equal(sink.counts.invalid, 1);
});

test('a shared budget bounds many walks together, with one limit anomaly', async () => {
  const { WalkBudget } = await import('../../../src/linux/walk/common.js');
  const { typed, head } = setup(4);
  const sink = new AnomalySink();
  const budget = new WalkBudget(6);
  assert.equal([...listForEach(typed, head, { anomalies: sink, budget })].length, 4);
  assert.equal([...listForEach(typed, head, { anomalies: sink, budget })].length, 2);
  assert.equal([...listForEach(typed, head, { anomalies: sink, budget })].length, 0);
  assert.equal(sink.counts.limit, 1);
});

test('listEmpty says whether a list_head points at itself', () => {
  assert.equal(listEmpty(setup(0).typed, KBASE), true);
  const full = setup(3);
  assert.equal(listEmpty(full.typed, full.head), false);
});

test("a head whose prev is not the last node is a broken link at the head", () => {
  const { typed, mem, head, link } = setup(3);
  mem.w64(head + 8n, link(1)); // head->prev names the middle node
  const sink = new AnomalySink();
  assert.deepEqual(ids(typed, head, sink), [100, 101, 102]);
  assert.deepEqual(sink.items.map((a) => [a.kind, a.address]), [['broken-link', head]]);
  assert.match(sink.items[0]!.detail ?? '', /head prev is 0x[0-9a-f]+, expected 0x[0-9a-f]+/);
});

/** An hlist_nulls chain through item.hnode (next at +0, pprev at +8): head -> items 0..n-1 -> nulls marker. */
function nullsChain(n: number, bucket: bigint) {
  const s = setup(Math.max(n, 1));
  const node = (i: number) => s.item(i) + 24n;
  const marker = (bucket << 1n) | 1n;
  s.mem.w64(s.head, n ? node(0) : marker);
  for (let i = 0; i < n; i++) {
    s.mem.w64(node(i), i + 1 < n ? node(i + 1) : marker);
    s.mem.w64(node(i) + 8n, i === 0 ? s.head : node(i - 1));
  }
  return { ...s, node, marker };
}

test('isNullsMarker: odd values end a nulls chain, pointers do not', () => {
  assert.equal(isNullsMarker((7n << 1n) | 1n), true);
  assert.equal(isNullsMarker(1n), true);
  assert.equal(isNullsMarker(KBASE), false);
  assert.equal(isNullsMarker(0n), false);
});

test('hlistNullsForEach yields every node up to the marker, and the chain returns the marker it ended at', () => {
  const c = nullsChain(3, 5n);
  const sink = new AnomalySink();
  assert.deepEqual([...hlistNullsForEach(c.typed, c.head, { anomalies: sink })], [c.node(0), c.node(1), c.node(2)]);
  assert.equal(sink.total, 0);
  const ctx = new WalkContext(c.typed, 'test.nulls', { anomalies: sink });
  const it = hlistNullsChain(ctx, c.head, c.node(0));
  const seen: bigint[] = [];
  let r = it.next();
  for (; !r.done; r = it.next()) seen.push(r.value);
  assert.equal(seen.length, 3);
  assert.equal(r.value, c.marker, 'the marker names bucket 5');
  assert.deepEqual([...hlistNullsForEach(nullsChain(0, 2n).typed, KBASE, { anomalies: sink })], [], 'an empty bucket is just its marker');
});

test('a nulls chain: a wrong pprev is a broken link (walk goes on), a cycle and a NULL next stop it with anomalies', () => {
  const broken = nullsChain(3, 1n);
  broken.mem.w64(broken.node(2) + 8n, broken.head);
  let sink = new AnomalySink();
  assert.equal([...hlistNullsForEach(broken.typed, broken.head, { anomalies: sink })].length, 3);
  assert.deepEqual(sink.items.map((a) => [a.kind, a.address]), [['broken-link', broken.node(2)]]);

  const cyc = nullsChain(3, 1n);
  cyc.mem.w64(cyc.node(2), cyc.node(0));
  sink = new AnomalySink();
  assert.equal([...hlistNullsForEach(cyc.typed, cyc.head, { anomalies: sink })].length, 3);
  assert.equal(sink.counts.cycle, 1);
  const ctx = new WalkContext(cyc.typed, 'test.nulls', { anomalies: sink });
  const it = hlistNullsChain(ctx, cyc.head, cyc.node(0));
  let r = it.next();
  while (!r.done) r = it.next();
  assert.equal(r.value, undefined, 'a chain stopped by an anomaly returns no marker');

  const nul = nullsChain(2, 1n);
  nul.mem.w64(nul.node(1), 0n);
  sink = new AnomalySink();
  assert.equal([...hlistNullsForEach(nul.typed, nul.head, { anomalies: sink })].length, 2);
  assert.equal(sink.counts['bad-pointer'], 1);
});

test('an unreadable head is one fault anomaly and an empty walk, for every list kind', () => {
  const { typed } = setup(1);
  const nowhere = KBASE + 0x4000_0000n;
  for (const walk of [listForEach, hlistForEach, hlistNullsForEach]) {
    const sink = new AnomalySink();
    assert.deepEqual([...walk(typed, nowhere, { anomalies: sink })], []);
    assert.deepEqual(sink.items.map((a) => [a.kind, a.address]), [['fault', nowhere]], walk.name);
  }
});

/** A plain hlist through item.hnode: head -> items 0..n-1 -> NULL. */
function hlistChainOf(n: number) {
  const s = setup(Math.max(n, 1));
  const node = (i: number) => s.item(i) + 24n;
  s.mem.w64(s.head, n ? node(0) : 0n);
  for (let i = 0; i < n; i++) {
    s.mem.w64(node(i), i + 1 < n ? node(i + 1) : 0n);
    s.mem.w64(node(i) + 8n, i === 0 ? s.head : node(i));
  }
  for (let i = 1; i < n; i++) s.mem.w64(node(i) + 8n, node(i - 1));
  return { ...s, node };
}

test('an hlist: a bad pointer or an unreadable node stops the walk with that one anomaly; the limit bounds it', () => {
  let c = hlistChainOf(4);
  c.mem.w64(c.node(1), 0xdead_0000_0000_0100n);
  let sink = new AnomalySink();
  assert.deepEqual([...hlistForEach(c.typed, c.head, { anomalies: sink })], [c.node(0), c.node(1)]);
  assert.deepEqual(sink.items.map((a) => a.kind), ['bad-pointer']);

  c = hlistChainOf(4);
  c.mem.w64(c.node(1), KBASE + 0x4000_0000n);
  sink = new AnomalySink();
  assert.deepEqual([...hlistForEach(c.typed, c.head, { anomalies: sink })], [c.node(0), c.node(1)]);
  assert.deepEqual(sink.items.map((a) => a.kind), ['fault']);

  c = hlistChainOf(4);
  sink = new AnomalySink();
  assert.deepEqual([...hlistForEach(c.typed, c.head, { anomalies: sink, limit: 2 })], [c.node(0), c.node(1)]);
  assert.deepEqual(sink.items.map((a) => a.kind), ['limit']);
});

test('a nulls chain: an unreadable node is a fault and returns no marker; the limit bounds it', () => {
  const c = nullsChain(3, 4n);
  c.mem.w64(c.node(1), KBASE + 0x4000_0000n);
  const sink = new AnomalySink();
  const ctx = new WalkContext(c.typed, 'test.nulls', { anomalies: sink });
  const it = hlistNullsChain(ctx, c.head, c.node(0));
  const seen: bigint[] = [];
  let r = it.next();
  for (; !r.done; r = it.next()) seen.push(r.value);
  assert.deepEqual(seen, [c.node(0), c.node(1)]);
  assert.equal(r.value, undefined);
  assert.deepEqual(sink.items.map((a) => a.kind), ['fault']);

  const lim = new AnomalySink();
  const d = nullsChain(3, 4n);
  const lctx = new WalkContext(d.typed, 'test.nulls', { anomalies: lim, limit: 1 });
  const lit = hlistNullsChain(lctx, d.head, d.node(0));
  let lr = lit.next();
  const got: bigint[] = [];
  for (; !lr.done; lr = lit.next()) got.push(lr.value);
  assert.deepEqual(got, [d.node(0)]);
  assert.equal(lr.value, undefined, 'a chain stopped by the limit returns no marker');
  assert.deepEqual(lim.items.map((a) => a.kind), ['limit']);
});

test('entry walkers name their anomalies type.member unless told otherwise', () => {
  const c = hlistChainOf(2);
  c.mem.w64(c.node(1), 0x10n);
  let sink = new AnomalySink();
  [...hlistForEachEntry(c.typed, c.head, 'item', 'hnode', { anomalies: sink })];
  assert.equal(sink.items[0]!.where, 'item.hnode');
  sink = new AnomalySink();
  [...hlistForEachEntry(c.typed, c.head, 'item', 'hnode', { anomalies: sink, where: 'my.walk' })];
  assert.equal(sink.items[0]!.where, 'my.walk');
  sink = new AnomalySink();
  [...hashForEachEntry(c.typed, c.head, 1, 'item', 'hnode', { anomalies: sink })];
  assert.equal(sink.items[0]!.where, 'item.hnode');
});
