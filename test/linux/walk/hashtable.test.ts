/**
 * hash_for_each() over bucket arrays (walk/hashtable.ts): hostile bucket counts, tables longer than one
 * batched read of buckets, a batch that cannot be read, and no reads after the node limit.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AnomalySink } from '../../../src/linux/anomaly.js';
import { hashForEach, MAX_BUCKETS } from '../../../src/linux/walk/hashtable.js';
import { FakeMemory, KBASE, TypeBuilder, typedOver } from '../helpers/synthetic.js';

const TABLE = KBASE + 0x10_0000n;
/** Node of chain entry i: 16-byte hlist_nodes at KBASE + 0x40·(i+1). */
const NODE = (i: number) => KBASE + 0x40n * BigInt(i + 1);

/** A table of `buckets` heads; `chains` maps a bucket to the nodes chained from it. */
function table(buckets: number, chains: ReadonlyMap<number, number[]>) {
  const mem = new FakeMemory();
  mem.map(TABLE, buckets * 8);
  mem.map(KBASE, 0x8000);
  for (const [bucket, nodes] of chains) {
    let link = TABLE + BigInt(bucket * 8);
    for (const i of nodes) {
      mem.w64(link, NODE(i));
      mem.w64(NODE(i) + 8n, link);
      link = NODE(i);
    }
    mem.w64(link, 0n);
  }
  return { mem, typed: typedOver(new TypeBuilder().db(), mem) };
}

test('a bucket count that is negative, fractional, not a number or above MAX_BUCKETS is one invalid anomaly', () => {
  const { typed } = table(1, new Map([[0, [0]]]));
  for (const n of [-1, 1.5, Number.NaN, MAX_BUCKETS + 1]) {
    const sink = new AnomalySink();
    assert.deepEqual([...hashForEach(typed, TABLE, n, { anomalies: sink })], [], String(n));
    assert.deepEqual(sink.items.map((a) => [a.kind, a.address]), [['invalid', TABLE]], String(n));
  }
  const none = new AnomalySink();
  assert.deepEqual([...hashForEach(typed, TABLE, 0, { anomalies: none })], []);
  assert.equal(none.total, 0, 'zero buckets is an empty table, not an anomaly');
});

test('MAX_BUCKETS itself is accepted (the unmapped buckets are faults, not an invalid count)', () => {
  const { typed } = table(1, new Map());
  const sink = new AnomalySink();
  assert.deepEqual([...hashForEach(typed, TABLE + 0x1000_0000n, MAX_BUCKETS, { anomalies: sink })], []);
  assert.equal(sink.counts.invalid, undefined);
  assert.equal(sink.counts.fault, MAX_BUCKETS / 4096, 'one fault per batch of 4096 buckets');
});

test('buckets past the first batch of 4096 are walked, with their own index and link', () => {
  const { typed } = table(5000, new Map([[3, [0, 1]], [4100, [2]], [4999, [3]]]));
  const sink = new AnomalySink();
  assert.deepEqual([...hashForEach(typed, TABLE, 5000, { anomalies: sink })], [
    { node: NODE(0), bucket: 3 },
    { node: NODE(1), bucket: 3 },
    { node: NODE(2), bucket: 4100 },
    { node: NODE(3), bucket: 4999 },
  ]);
  assert.equal(sink.total, 0, 'every pprev matched its bucket address');
});

test('an unreadable batch of buckets is a fault naming its bucket range; the other batches are walked', () => {
  const { mem, typed } = table(5000, new Map([[3, [0]], [4100, [2]]]));
  mem.unmap(TABLE + 4096n * 8n);
  const sink = new AnomalySink();
  assert.deepEqual([...hashForEach(typed, TABLE, 5000, { anomalies: sink })], [{ node: NODE(0), bucket: 3 }]);
  assert.deepEqual(sink.items.map((a) => [a.kind, a.address]), [['fault', TABLE + 4096n * 8n]]);
  assert.match(sink.items[0]!.detail ?? '', /^buckets 4096\.\.4999: /);
});

test('after the node limit no further bucket is read', () => {
  const { mem, typed } = table(3, new Map([[0, [0]], [1, [1]], [2, [2]]]));
  const sink = new AnomalySink();
  mem.reads = 0;
  assert.deepEqual([...hashForEach(typed, TABLE, 3, { anomalies: sink, limit: 1 })], [{ node: NODE(0), bucket: 0 }]);
  assert.equal(sink.counts.limit, 1);
  assert.equal(mem.reads, 3, 'the buckets, node 0, and node 1 (which hit the limit): not node 2');
});
