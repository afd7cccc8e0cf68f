/**
 * Walkers over include/linux/list.h: doubly linked `struct list_head` lists
 * and `struct hlist_head`/`hlist_node` hash chains. Bounded, cycle-checked
 * with a seen-set, pointer-checked, back-links validated for free (the next
 * node's prev is in the same 16-byte read as its next). A back-link that
 * disagrees is re-read a few times, microseconds apart, before it counts as
 * 'broken-link': on a live guest most are an update caught half-done.
 *
 * @example
 * for (const task of listForEachEntry(kernel.typed, initTask.addrOf('tasks'), 'task_struct', 'tasks', { anomalies })) {
 *   task.read().u32('pid');
 * }
 */
import type { ObjRef, Typed } from '../../profile/typed.js';
import { hex, WalkContext, type WalkOptions } from './common.js';

/**
 * How a back-link that disagreed looked on re-reading (see settleListLink).
 * 'agrees': the link points back now (fresh words of the node given);
 * 'moved': prev's next changed, the walk goes on from there; 'broken': it
 * never agreed, a real broken link.
 */
type Settled = { readonly kind: 'agrees'; readonly words: bigint[] } | { readonly kind: 'moved'; readonly next: bigint } | { readonly kind: 'broken' };

const BROKEN: Settled = { kind: 'broken' };

/**
 * Re-reads a `struct list_head` link whose back-link disagreed — `node`'s
 * prev is not `prev`, where the walk came from — a few times, a little apart
 * (WalkContext.settleLook): a live guest caught in the middle of __list_add
 * or list_del finishes within microseconds, a corrupt or tampered list stays
 * broken. It settled when, on a re-read:
 * - node's prev is prev and prev's next is still node (the update finished);
 * - prev's next is another node now (something was inserted after prev, or
 *   node was removed): the walk follows prev's next instead of node;
 * - prev itself was unlinked since the walk passed it (list_del_rcu keeps
 *   its next and poisons its prev: its prev is not `before` any more) and
 *   node's new prev points at node: node is on the list, prev is not.
 * A tampered list whose prev is still linked keeps failing, and is reported.
 * @param before prev's own prev, as the walk validated it
 */
function settleListLink(ctx: WalkContext, before: bigint, prev: bigint, node: bigint): Settled {
  for (let look = 0; ctx.settleLook(look); look++) {
    const p = ctx.peekWords(prev, 2);
    const n = ctx.peekWords(node, 2);
    if (!p || !n) return BROKEN;
    if (p[0] !== node) return settled(ctx, { kind: 'moved', next: p[0]! });
    if (n[1] === prev) return settled(ctx, { kind: 'agrees', words: n });
    if (p[1] !== before && ctx.peekWords(n[1]!, 1)?.[0] === node) return settled(ctx, { kind: 'agrees', words: n });
  }
  return BROKEN;
}

function settled(ctx: WalkContext, s: Settled): Settled {
  ctx.settled();
  return s;
}

/**
 * list_for_each(): the `struct list_head *` nodes after `head`, in order,
 * excluding the head itself. With `validate`, a back-link that disagrees is
 * re-read before it counts as 'broken-link' (settleListLink): on a live
 * guest the walk goes on over the list as it is now, nodes inserted ahead of
 * it included, the way an RCU reader in the kernel would.
 * @param head `struct list_head *`
 */
export function* listForEach(typed: Typed, head: bigint, opts: WalkOptions = {}): Generator<bigint> {
  const ctx = new WalkContext(typed, 'list_head', opts);
  const first = ctx.readLinkWords(head, 'list head');
  if (!first) return;
  const seen = new Set<bigint>([head]);
  let before = first[1]!;
  let prev = head;
  let next = first[0]!;
  for (;;) {
    if (next === head) {
      // The head's prev as read at the start: a node added at the tail during the walk differs, so look again.
      if (!ctx.validate || first[1] === prev) return;
      const s = settleListLink(ctx, before, prev, head);
      if (s.kind === 'moved') {
        next = s.next; // nodes appended after the walk passed the tail: walk them too
        continue;
      }
      if (s.kind === 'broken') ctx.anomaly('broken-link', head, `head prev is ${hex(first[1]!)}, expected ${hex(prev)}`);
      return;
    }
    if (!ctx.checkPointer(next, () => `next of ${hex(prev)}`)) return;
    if (seen.has(next)) {
      ctx.anomaly('cycle', next, `${hex(prev)}->next leads back to an earlier node`);
      return;
    }
    let node = ctx.readLinkWords(next, () => `list node (next of ${hex(prev)})`);
    if (!node) return;
    if (ctx.validate && node[1] !== prev) {
      const s = settleListLink(ctx, before, prev, next);
      if (s.kind === 'moved') {
        next = s.next;
        continue;
      }
      if (s.kind === 'broken') ctx.anomaly('broken-link', next, `prev is ${hex(node[1]!)}, expected ${hex(prev)}`);
      else node = s.words;
    }
    if (!ctx.step(next)) return;
    seen.add(next);
    yield next;
    before = prev;
    prev = next;
    next = node[0]!;
  }
}

/**
 * list_for_each_entry(): the containing objects of every node after `head`.
 * @param head `struct list_head *`
 * @param type containing struct name, e.g. 'task_struct'
 * @param member the `struct list_head` member path, e.g. 'tasks'
 */
export function* listForEachEntry(typed: Typed, head: bigint, type: string, member: string, opts: WalkOptions = {}): Generator<ObjRef> {
  const o = { ...opts, where: opts.where ?? `${type}.${member}` };
  for (const node of listForEach(typed, head, o)) yield typed.containerOf(node, type, member);
}

/** list_empty(): true when head->next == head (a read fault counts as empty and is thrown by the read). */
export function listEmpty(typed: Typed, head: bigint): boolean {
  const b = typed.mem.read(head, 8);
  return new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true) === head;
}

/**
 * hlist_for_each(): the `struct hlist_node *` nodes of a hash chain.
 * Validates each node's pprev against the address of the link that led to it
 * (re-read before it counts, as in listForEach).
 * @param head `struct hlist_head *`
 */
export function* hlistForEach(typed: Typed, head: bigint, opts: WalkOptions = {}): Generator<bigint> {
  const ctx = new WalkContext(typed, 'hlist_head', opts);
  const first = ctx.readWords(head, 1, 'hlist head');
  if (!first) return;
  yield* hlistChain(ctx, head, first[0]!);
}

/**
 * settleListLink for hash chains: `node`'s pprev is not `link` (the address
 * of the pointer that led to it). Settled when, on a re-read, pprev is link
 * and link still holds node; when link holds another node now (the walk
 * follows it; a chain's end when it is NULL or a nulls marker); or when the
 * node holding link was unlinked since (its pprev is not `holderPprev` any
 * more, hlist_del_rcu) and node's pprev now points at node.
 * @param holderPprev pprev of the node whose `next` is at `link`, as validated; undefined when link is the head
 */
function settleHlistLink(ctx: WalkContext, holderPprev: bigint | undefined, link: bigint, node: bigint): Settled {
  for (let look = 0; ctx.settleLook(look); look++) {
    const l = ctx.peekWords(link, holderPprev === undefined ? 1 : 2);
    const n = ctx.peekWords(node, 2);
    if (!l || !n) return BROKEN;
    if (l[0] !== node) return settled(ctx, { kind: 'moved', next: l[0]! });
    if (n[1] === link) return settled(ctx, { kind: 'agrees', words: n });
    if (holderPprev !== undefined && l[1] !== holderPprev && ctx.peekWords(n[1]!, 1)?.[0] === node) return settled(ctx, { kind: 'agrees', words: n });
  }
  return BROKEN;
}

/** Walks one chain from its first node; `link` is the address of the pointer that holds `node`. */
export function* hlistChain(ctx: WalkContext, link: bigint, node: bigint, seen = new Set<bigint>()): Generator<bigint> {
  let holderPprev: bigint | undefined;
  while (node !== 0n) {
    if (!ctx.checkPointer(node, () => `hlist next at ${hex(link)}`)) return;
    if (seen.has(node)) {
      ctx.anomaly('cycle', node, `link at ${hex(link)} leads back to an earlier node`);
      return;
    }
    let w = ctx.readLinkWords(node, 'hlist node');
    if (!w) return;
    if (ctx.validate && w[1] !== link) {
      const s = settleHlistLink(ctx, holderPprev, link, node);
      if (s.kind === 'moved') {
        node = s.next;
        continue;
      }
      if (s.kind === 'broken') ctx.anomaly('broken-link', node, `pprev is ${hex(w[1]!)}, expected ${hex(link)}`);
      else w = s.words;
    }
    if (!ctx.step(node)) return;
    seen.add(node);
    yield node;
    holderPprev = w[1]!;
    link = node; // hlist_node.next is at offset 0
    node = w[0]!;
  }
}

/**
 * hlist_for_each_entry(): the containing objects of a hash chain.
 * @param head `struct hlist_head *`
 */
export function* hlistForEachEntry(typed: Typed, head: bigint, type: string, member: string, opts: WalkOptions = {}): Generator<ObjRef> {
  const o = { ...opts, where: opts.where ?? `${type}.${member}` };
  for (const node of hlistForEach(typed, head, o)) yield typed.containerOf(node, type, member);
}

/**
 * True for the end marker of an hlist_nulls chain (include/linux/list_nulls.h):
 * a "nulls" value with bit 0 set, which carries the owning bucket's id
 * instead of NULL so RCU readers can tell when a node moved chains.
 */
export function isNullsMarker(v: bigint): boolean {
  return (v & 1n) === 1n;
}

/**
 * hlist_nulls_for_each(): the `struct hlist_nulls_node *` nodes of a nulls
 * chain, which ends at an odd marker rather than NULL (a NULL `next` is a
 * 'bad-pointer' anomaly). Validates each node's pprev against the link that
 * led to it, re-reading one that disagrees before it counts (settleHlistLink).
 * @param head `struct hlist_nulls_head *`
 */
export function* hlistNullsForEach(typed: Typed, head: bigint, opts: WalkOptions = {}): Generator<bigint> {
  const ctx = new WalkContext(typed, 'hlist_nulls_head', opts);
  const first = ctx.readWords(head, 1, 'hlist_nulls head');
  if (!first) return;
  yield* hlistNullsChain(ctx, head, first[0]!);
}

/**
 * Walks one nulls chain from its first node; `link` is the address of the
 * pointer that holds `node`. Returns the end marker it stopped at (undefined
 * when an anomaly stopped it), so callers can check it names their bucket.
 * `seen` may be shared by the chains of one table.
 */
export function* hlistNullsChain(ctx: WalkContext, link: bigint, node: bigint, seen = new Set<bigint>()): Generator<bigint, bigint | undefined> {
  let holderPprev: bigint | undefined;
  while (!isNullsMarker(node)) {
    if (!ctx.checkPointer(node, () => `hlist_nulls next at ${hex(link)}`)) return undefined;
    if (seen.has(node)) {
      ctx.anomaly('cycle', node, `link at ${hex(link)} leads back to an earlier node`);
      return undefined;
    }
    let w = ctx.readLinkWords(node, 'hlist_nulls node');
    if (!w) return undefined;
    if (ctx.validate && w[1] !== link) {
      const s = settleHlistLink(ctx, holderPprev, link, node);
      if (s.kind === 'moved') {
        node = s.next;
        continue;
      }
      if (s.kind === 'broken') ctx.anomaly('broken-link', node, `pprev is ${hex(w[1]!)}, expected ${hex(link)}`);
      else w = s.words;
    }
    if (!ctx.step(node)) return undefined;
    seen.add(node);
    yield node;
    holderPprev = w[1]!;
    link = node; // hlist_nulls_node.next is at offset 0
    node = w[0]!;
  }
  return node;
}
