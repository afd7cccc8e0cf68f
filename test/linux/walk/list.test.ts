import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ValidationError } from '../../../src/core/errors.js';
import { AnomalySink } from '../../../src/linux/anomaly.js';
import { hlistForEachEntry, listForEach, listForEachEntry } from '../../../src/linux/walk/list.js';
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
