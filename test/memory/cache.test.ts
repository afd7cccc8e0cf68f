import assert from 'node:assert/strict';
import { test } from 'node:test';
import { withPageCache } from '../../src/memory/cache.js';
import type { ReadOp } from '../../src/memory/types.js';
import { FakeMemory } from './helpers/fake-memory.js';
import { gpa } from '../../src/core/address.js';

test('second read of a page is a hit and does not reach the source', () => {
  const src = new FakeMemory(64 * 1024);
  const c = withPageCache(src, { pages: 8 });
  const a: ReadOp = { addr: gpa(0x1010), len: 16 };
  assert.deepEqual(c.readv([a]), []);
  assert.deepEqual(a.dst, src.bytes.subarray(0x1010, 0x1020));
  assert.deepEqual(src.reads, [{ addr: 0x1000, len: 4096 }], 'the source sees whole pages');
  const b: ReadOp = { addr: gpa(0x1ff0), len: 8 };
  c.readv([b]);
  assert.equal(src.reads.length, 1);
  assert.deepEqual(c.stats, { hits: 1, misses: 1, evictions: 0, invalidations: 0, pages: 1 });
  assert.deepEqual(b.dst, src.bytes.subarray(0x1ff0, 0x1ff8));
});

test('a read across pages is stitched from several pages, fetched in one batch', () => {
  const src = new FakeMemory(64 * 1024);
  const c = withPageCache(src);
  const op: ReadOp = { addr: gpa(0xff0), len: 0x2020 };
  c.readv([op, { addr: gpa(0x5000), len: 4 }]);
  assert.deepEqual(op.dst, src.bytes.subarray(0xff0, 0x3010));
  assert.equal(src.reads.length, 5);
  assert.equal(c.stats.misses, 5);
});

test('a new generation never serves old bytes', async () => {
  const src = new FakeMemory(16 * 1024);
  const c = withPageCache(src);
  const first: ReadOp = { addr: gpa(0x100), len: 4 };
  c.readv([first]);
  src.bytes[0x100] = 0xaa; // the guest writes
  const stale: ReadOp = { addr: gpa(0x100), len: 4 };
  c.readv([stale]);
  assert.equal(stale.dst![0], first.dst![0], 'same pass: cached');
  await c.refresh();
  assert.equal(src.refreshed, 1);
  const fresh: ReadOp = { addr: gpa(0x100), len: 4 };
  c.readv([fresh]);
  assert.equal(fresh.dst![0], 0xaa);
  assert.equal(c.stats.invalidations, 1);
  // The source moving on by itself (no refresh through the cache) counts as well.
  src.bytes[0x100] = 0xbb;
  src.generation++;
  const again: ReadOp = { addr: gpa(0x100), len: 1 };
  c.readv([again]);
  assert.equal(again.dst![0], 0xbb);
  assert.equal(c.generation, src.generation);
});

test('LRU bound, eviction order and flush', () => {
  const src = new FakeMemory(64 * 1024);
  const c = withPageCache(src, { pages: 2 });
  const read = (page: number) => c.readv([{ addr: gpa(page * 4096), len: 1 }]);
  read(0);
  read(1);
  read(0); // page 0 is now the most recent
  read(2); // evicts page 1
  assert.equal(c.stats.evictions, 1);
  assert.equal(c.stats.pages, 2);
  const before = src.reads.length;
  read(0);
  assert.equal(src.reads.length, before, 'page 0 survived');
  read(1);
  assert.equal(src.reads.length, before + 1, 'page 1 was evicted');
  // A batch larger than the cache still returns right bytes.
  const big: ReadOp = { addr: gpa(0), len: 5 * 4096 };
  c.readv([big]);
  assert.deepEqual(big.dst, src.bytes.subarray(0, 5 * 4096));
  c.flush();
  assert.equal(c.stats.pages, 0);
  assert.throws(() => withPageCache(src, { pages: 0 }), RangeError);
});

test('failed pages are not cached and failures keep the source ranges', () => {
  const src = new FakeMemory(16 * 1024, 0x2800);
  const c = withPageCache(src);
  const op: ReadOp = { addr: gpa(0x27f0), len: 0x20 };
  const f = c.readv([op]);
  assert.deepEqual(f.map((x) => [x.addr, x.len]), [[0x2800, 0x10]]);
  assert.deepEqual(op.dst!.subarray(0, 0x10), src.bytes.subarray(0x27f0, 0x2800));
  assert.deepEqual([...op.dst!.subarray(0x10)], new Array(0x10).fill(0));
  assert.equal(c.stats.pages, 0, 'the half-backed page is not cached');
  // Invalid requests go to the source, which reports them.
  const bad = c.readv([{ addr: gpa(-5), len: 1 }]);
  assert.equal(bad.length, 1);
});

test('close closes the source', async () => {
  const src = new FakeMemory(4096);
  const c = withPageCache(src);
  await c.close();
  assert.equal(src.closed, 1);
  assert.equal(c.mapped, undefined);
});
