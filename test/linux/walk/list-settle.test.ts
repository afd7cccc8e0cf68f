/**
 * Back-links that disagree on a live guest (walk/list.ts settleListLink,
 * settleHlistLink): synthetic memory that a "guest" changes after a given
 * number of reads. A link caught mid-update that heals after k reads is no
 * anomaly (and is counted as settled); one that never heals — corruption,
 * a sloppy unlink by a rootkit — is still a broken link, after a bounded
 * number of re-reads.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AnomalySink } from '../../../src/linux/anomaly.js';
import { hlistForEach, listForEach, listForEachEntry } from '../../../src/linux/walk/list.js';
import { FakeMemory, KBASE, TypeBuilder, typedOver } from '../helpers/synthetic.js';

const POISON2 = 0xdead_0000_0000_0122n;

/** FakeMemory whose "guest" runs `then` once `at` has been read `after` times. */
class ChangingMemory extends FakeMemory {
  private hooks: { at: bigint; after: number; seen: number; then: () => void }[] = [];
  readsOf = new Map<bigint, number>();

  when(at: bigint, after: number, then: () => void): void {
    this.hooks.push({ at, after, seen: 0, then });
  }

  override read(va: bigint, len: number): Uint8Array {
    const out = super.read(va, len);
    this.readsOf.set(va, (this.readsOf.get(va) ?? 0) + 1);
    for (const h of this.hooks) {
      if (h.seen < 0 || va > h.at || h.at >= va + BigInt(len)) continue;
      if (++h.seen >= h.after) {
        h.seen = -1;
        h.then();
      }
    }
    return out;
  }
}

/** struct item { int id; struct list_head link; } at KBASE + 0x100*(i+1); head at KBASE; room for 8 more items. */
function setup(n: number) {
  const b = new TypeBuilder();
  const { listHead } = b.listTypes();
  b.struct('item', 48, [['id', b.int_, 0], ['link', listHead, 8]]);
  const mem = new ChangingMemory();
  const typed = typedOver(b.db(), mem);
  const head = KBASE;
  const item = (i: number) => KBASE + 0x100n * BigInt(i + 1);
  const link = (i: number) => item(i) + 8n;
  mem.map(KBASE, 0x100 * (n + 10));
  const order = Array.from({ length: n }, (_, i) => i);
  const at = (k: number) => (k < 0 || k >= order.length ? head : link(order[k]!));
  mem.w64(head, at(0));
  mem.w64(head + 8n, at(n - 1));
  for (let k = 0; k < n; k++) {
    mem.w32(item(k), 100 + k);
    mem.w64(at(k), at(k + 1));
    mem.w64(at(k) + 8n, at(k - 1));
  }
  for (let i = n; i < n + 8; i++) mem.w32(item(i), 100 + i);
  return { typed, mem, head, item, link };
}

const walk = (s: ReturnType<typeof setup>, sink: AnomalySink) => [...listForEachEntry(s.typed, s.head, 'item', 'link', { anomalies: sink })].map((r) => r.read().s32('id'));

test('a back-link caught mid-update that heals on the 2nd read is no anomaly, and is counted as settled', () => {
  const s = setup(4);
  s.mem.w64(s.link(2) + 8n, s.link(0)); // 2->prev not yet fixed
  s.mem.when(s.link(2), 1, () => s.mem.w64(s.link(2) + 8n, s.link(1))); // the guest finishes right after our first read
  const sink = new AnomalySink();
  assert.deepEqual(walk(s, sink), [100, 101, 102, 103]);
  assert.equal(sink.total, 0);
  assert.equal(sink.settled, 1);
});

test('a back-link that heals only after k re-reads (the guest needs a while) is no anomaly either', () => {
  for (const k of [2, 3, 4]) {
    const s = setup(4);
    s.mem.w64(s.link(2) + 8n, s.link(0));
    s.mem.when(s.link(2), k, () => s.mem.w64(s.link(2) + 8n, s.link(1)));
    const sink = new AnomalySink();
    assert.deepEqual(walk(s, sink), [100, 101, 102, 103], `healed after ${k} reads`);
    assert.equal(sink.total, 0, `healed after ${k} reads`);
  }
});

test('a back-link that never heals is a broken link, after a bounded number of re-reads', () => {
  const s = setup(4);
  s.mem.w64(s.link(2) + 8n, s.link(0));
  const sink = new AnomalySink();
  const t0 = performance.now();
  assert.deepEqual(walk(s, sink), [100, 101, 102, 103]);
  assert.deepEqual(sink.items.map((a) => [a.kind, a.address]), [['broken-link', s.link(2)]]);
  assert.equal(sink.settled, 0);
  assert.ok(s.mem.readsOf.get(s.link(2))! <= 6, `node 2 read ${s.mem.readsOf.get(s.link(2))} times`);
  assert.ok(performance.now() - t0 < 200, 'waits are bounded');
});

test('a list whose every back-link is wrong costs bounded re-reads and reports each link', () => {
  const s = setup(0);
  const n = 400;
  const node = (i: number) => KBASE + 0x10000n + 0x20n * BigInt(i);
  s.mem.map(node(0), 0x20 * (n + 1));
  s.mem.w64(s.head, node(0));
  s.mem.w64(s.head + 8n, node(n - 1));
  for (let i = 0; i < n; i++) {
    s.mem.w64(node(i), i + 1 < n ? node(i + 1) : s.head);
    s.mem.w64(node(i) + 8n, node(i)); // points at itself: never right
  }
  const sink = new AnomalySink();
  const t0 = performance.now();
  assert.equal([...listForEach(s.typed, s.head, { anomalies: sink })].length, n);
  assert.equal(sink.counts['broken-link'], n);
  assert.ok(performance.now() - t0 < 500, `took ${(performance.now() - t0).toFixed(0)} ms`);
});

test('a node inserted after the walk read its predecessor: the walk follows the new link, no anomaly', () => {
  const s = setup(3);
  // __list_add(new = item 3, prev = 0, next = 1), done by the guest after we read node 0: node 1's prev first.
  s.mem.when(s.link(0), 1, () => {
    s.mem.w64(s.link(1) + 8n, s.link(3));
    s.mem.w64(s.link(3), s.link(1));
    s.mem.w64(s.link(3) + 8n, s.link(0));
  });
  s.mem.when(s.link(1), 1, () => s.mem.w64(s.link(0), s.link(3))); // prev->next last: seen on the re-read
  const sink = new AnomalySink();
  assert.deepEqual(walk(s, sink), [100, 103, 101, 102]);
  assert.equal(sink.total, 0);
});

test('a node appended at the tail during the walk: no broken link at the head, and walked when the walk had not passed the tail', () => {
  const s = setup(3);
  // list_add_tail(new = item 3) once the walk has read the last node (an RCU reader there would not see it either).
  s.mem.when(s.link(2), 1, () => {
    s.mem.w64(s.link(3), s.head);
    s.mem.w64(s.link(3) + 8n, s.link(2));
    s.mem.w64(s.link(2), s.link(3));
    s.mem.w64(s.head + 8n, s.link(3));
  });
  const sink = new AnomalySink();
  assert.deepEqual(walk(s, sink), [100, 101, 102]);
  assert.equal(sink.total, 0);
  // Appended before the walk got there: the head's prev read at the start is stale, not broken.
  const t = setup(3);
  t.mem.when(t.link(0), 1, () => {
    t.mem.w64(t.link(3), t.head);
    t.mem.w64(t.link(3) + 8n, t.link(2));
    t.mem.w64(t.link(2), t.link(3));
    t.mem.w64(t.head + 8n, t.link(3));
  });
  const sink2 = new AnomalySink();
  assert.deepEqual(walk(t, sink2), [100, 101, 102, 103]);
  assert.equal(sink2.total, 0);
});

test('the node the walk came from was unlinked (list_del_rcu) after it passed: no anomaly, the walk goes on', () => {
  const s = setup(4);
  // Delete node 1 once the walk read it: 0->next = 2, 2->prev = 0, 1->prev poisoned, 1->next kept (RCU).
  s.mem.when(s.link(1), 1, () => {
    s.mem.w64(s.link(0), s.link(2));
    s.mem.w64(s.link(2) + 8n, s.link(0));
    s.mem.w64(s.link(1) + 8n, POISON2);
  });
  const sink = new AnomalySink();
  assert.deepEqual(walk(s, sink), [100, 101, 102, 103]);
  assert.equal(sink.total, 0);
});

test('a sloppy unlink (prev skips a node, the node after still points back at the hidden one) stays a broken link', () => {
  const s = setup(4);
  // Hide node 1: 0->next = 2, but 2->prev still names 1 (and 1 still points at its neighbours).
  s.mem.w64(s.link(0), s.link(2));
  const sink = new AnomalySink();
  assert.deepEqual(walk(s, sink), [100, 102, 103]);
  assert.deepEqual(sink.items.map((a) => [a.kind, a.address]), [['broken-link', s.link(2)]]);
});

test('hlist: a pprev that heals after k reads is no anomaly; one that never heals is a broken link', () => {
  const s = setup(0);
  const table = KBASE + 0x20000n;
  const node = (i: number) => KBASE + 0x21000n + 0x20n * BigInt(i);
  s.mem.map(table, 8);
  s.mem.map(node(0), 0x20 * 4);
  s.mem.w64(table, node(0));
  for (let i = 0; i < 3; i++) {
    s.mem.w64(node(i), i + 1 < 3 ? node(i + 1) : 0n);
    s.mem.w64(node(i) + 8n, i === 0 ? table : node(i - 1));
  }
  s.mem.w64(node(2) + 8n, table); // wrong pprev
  s.mem.when(node(2), 3, () => s.mem.w64(node(2) + 8n, node(1)));
  let sink = new AnomalySink();
  assert.deepEqual([...hlistForEach(s.typed, table, { anomalies: sink })], [node(0), node(1), node(2)]);
  assert.equal(sink.total, 0);
  assert.equal(sink.settled, 1);
  s.mem.w64(node(2) + 8n, table);
  sink = new AnomalySink();
  assert.deepEqual([...hlistForEach(s.typed, table, { anomalies: sink })], [node(0), node(1), node(2)]);
  assert.deepEqual(sink.items.map((a) => [a.kind, a.address]), [['broken-link', node(2)]]);
});

test('hlist: a node inserted at the head after the walk read the head is followed', () => {
  const s = setup(0);
  const table = KBASE + 0x20000n;
  const node = (i: number) => KBASE + 0x21000n + 0x20n * BigInt(i);
  s.mem.map(table, 8);
  s.mem.map(node(0), 0x20 * 4);
  s.mem.w64(table, node(0));
  s.mem.w64(node(0), 0n);
  s.mem.w64(node(0) + 8n, table);
  // hlist_add_head_rcu(node 1): n->next = first, n->pprev = head, first->pprev = &n->next, head->first = n.
  s.mem.when(table, 1, () => {
    s.mem.w64(node(1), node(0));
    s.mem.w64(node(1) + 8n, table);
    s.mem.w64(node(0) + 8n, node(1));
    s.mem.w64(table, node(1));
  });
  const sink = new AnomalySink();
  assert.deepEqual([...hlistForEach(s.typed, table, { anomalies: sink })], [node(1), node(0)]);
  assert.equal(sink.total, 0);
});

test('memory that does not change while read (an image, a paused guest) gets one re-read and no waits', () => {
  const s = setup(4);
  Object.defineProperty(s.mem, 'changesUnderUs', { value: false });
  s.mem.w64(s.link(2) + 8n, s.link(0));
  // Would heal on the 3rd read: a live guest's later looks would see it, an image's never do.
  s.mem.when(s.link(2), 3, () => s.mem.w64(s.link(2) + 8n, s.link(1)));
  const sink = new AnomalySink();
  walk(s, sink);
  assert.equal(sink.counts['broken-link'], 1);
  assert.equal(sink.settled, 0);
  assert.ok(s.mem.readsOf.get(s.link(2))! <= 2, `${s.mem.readsOf.get(s.link(2))} reads of the link`);
});
