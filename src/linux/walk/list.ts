/**
 * Walkers over include/linux/list.h: doubly linked `struct list_head` lists
 * and `struct hlist_head`/`hlist_node` hash chains. Bounded, cycle-checked
 * with a seen-set, pointer-checked, back-links validated for free (the next
 * node's prev is in the same 16-byte read as its next).
 *
 * @example
 * for (const task of listForEachEntry(kernel.typed, initTask.addrOf('tasks'), 'task_struct', 'tasks', { anomalies })) {
 *   task.read().u32('pid');
 * }
 */
import type { ObjRef, Typed } from '../../profile/typed.js';
import { hex, WalkContext, type WalkOptions } from './common.js';

/**
 * list_for_each(): the `struct list_head *` nodes after `head`, in order,
 * excluding the head itself.
 * @param head `struct list_head *`
 */
export function* listForEach(typed: Typed, head: bigint, opts: WalkOptions = {}): Generator<bigint> {
  const ctx = new WalkContext(typed, 'list_head', opts);
  const first = ctx.readWords(head, 2, 'list head');
  if (!first) return;
  const seen = new Set<bigint>([head]);
  let prev = head;
  let next = first[0]!;
  while (next !== head) {
    if (!ctx.checkPointer(next, `next of ${hex(prev)}`)) return;
    if (seen.has(next)) {
      ctx.anomaly('cycle', next, `${hex(prev)}->next leads back to an earlier node`);
      return;
    }
    const node = ctx.readWords(next, 2, `list node (next of ${hex(prev)})`);
    if (!node) return;
    if (ctx.validate && node[1] !== prev) ctx.anomaly('broken-link', next, `prev is ${hex(node[1]!)}, expected ${hex(prev)}`);
    if (!ctx.step(next)) return;
    seen.add(next);
    yield next;
    prev = next;
    next = node[0]!;
  }
  if (ctx.validate && first[1] !== prev) ctx.anomaly('broken-link', head, `head prev is ${hex(first[1]!)}, expected ${hex(prev)}`);
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
 * Validates each node's pprev against the address of the link that led to it.
 * @param head `struct hlist_head *`
 */
export function* hlistForEach(typed: Typed, head: bigint, opts: WalkOptions = {}): Generator<bigint> {
  const ctx = new WalkContext(typed, 'hlist_head', opts);
  const first = ctx.readWords(head, 1, 'hlist head');
  if (!first) return;
  yield* hlistChain(ctx, head, first[0]!);
}

/** Walks one chain from its first node; `link` is the address of the pointer that holds `node`. */
export function* hlistChain(ctx: WalkContext, link: bigint, node: bigint, seen = new Set<bigint>()): Generator<bigint> {
  while (node !== 0n) {
    if (!ctx.checkPointer(node, `hlist next at ${hex(link)}`)) return;
    if (seen.has(node)) {
      ctx.anomaly('cycle', node, `link at ${hex(link)} leads back to an earlier node`);
      return;
    }
    const w = ctx.readWords(node, 2, 'hlist node');
    if (!w) return;
    if (ctx.validate && w[1] !== link) ctx.anomaly('broken-link', node, `pprev is ${hex(w[1]!)}, expected ${hex(link)}`);
    if (!ctx.step(node)) return;
    seen.add(node);
    yield node;
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
 * led to it.
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
  while (!isNullsMarker(node)) {
    if (!ctx.checkPointer(node, `hlist_nulls next at ${hex(link)}`)) return undefined;
    if (seen.has(node)) {
      ctx.anomaly('cycle', node, `link at ${hex(link)} leads back to an earlier node`);
      return undefined;
    }
    const w = ctx.readWords(node, 2, 'hlist_nulls node');
    if (!w) return undefined;
    if (ctx.validate && w[1] !== link) ctx.anomaly('broken-link', node, `pprev is ${hex(w[1]!)}, expected ${hex(link)}`);
    if (!ctx.step(node)) return undefined;
    seen.add(node);
    yield node;
    link = node; // hlist_nulls_node.next is at offset 0
    node = w[0]!;
  }
  return node;
}
