/**
 * Walkers over include/linux/rbtree.h: `struct rb_root` / `struct rb_node`
 * red-black trees, in order (rb_first() then rb_next()), iteratively with
 * an explicit, depth-bounded stack. Each child's parent pointer
 * (__rb_parent_color & ~3) is validated against the node that led to it.
 *
 * @example
 * for (const vma of rbtreeInorderEntry(kernel.typed, mm.addrOf('mm_rb'), 'vm_area_struct', 'vm_rb', { anomalies })) …
 */
import type { ObjRef, Typed } from '../../profile/typed.js';
import { hex, WalkContext, type WalkOptions } from './common.js';

/** A red-black tree of n nodes is at most 2·log2(n+1) deep; 96 covers any real tree. */
export const MAX_RB_DEPTH = 96;

// struct rb_node { unsigned long __rb_parent_color; struct rb_node *rb_right, *rb_left; } (fixed since v2.6.18)
const RIGHT = 1;
const LEFT = 2;

/**
 * In-order `struct rb_node *` addresses of a tree.
 * @param root `struct rb_root *` (or `struct rb_root_cached *`, whose first member is the rb_root)
 */
export function* rbtreeInorder(typed: Typed, root: bigint, opts: WalkOptions = {}): Generator<bigint> {
  const ctx = new WalkContext(typed, 'rb_root', opts);
  const r = ctx.readWords(root, 1, 'rb_root');
  if (!r) return;
  const seen = new Set<bigint>();
  const stack: { node: bigint; right: bigint }[] = [];
  let cur = r[0]!;
  let parent = 0n;
  for (;;) {
    while (cur !== 0n) {
      if (!ctx.checkPointer(cur, () => `child of ${hex(parent)}`)) break;
      if (seen.has(cur)) {
        ctx.anomaly('cycle', cur, `child of ${hex(parent)} is an earlier node`);
        break;
      }
      if (stack.length >= MAX_RB_DEPTH) {
        ctx.anomaly('invalid', cur, `tree deeper than ${MAX_RB_DEPTH}: subtree skipped`);
        break;
      }
      const w = ctx.readWords(cur, 3, 'rb_node');
      if (!w) break;
      seen.add(cur);
      const p = w[0]! & ~3n;
      if (ctx.validate && p !== parent) ctx.anomaly('broken-link', cur, `parent is ${hex(p)}, expected ${hex(parent)}`);
      stack.push({ node: cur, right: w[RIGHT]! });
      parent = cur;
      cur = w[LEFT]!;
    }
    const top = stack.pop();
    if (!top) return;
    if (!ctx.step(top.node)) return;
    yield top.node;
    parent = top.node;
    cur = top.right;
  }
}

/** rbtree_postorder/inorder with container_of(): the objects of a tree, in key order. */
export function* rbtreeInorderEntry(typed: Typed, root: bigint, type: string, member: string, opts: WalkOptions = {}): Generator<ObjRef> {
  const o = { ...opts, where: opts.where ?? `${type}.${member}` };
  for (const node of rbtreeInorder(typed, root, o)) yield typed.containerOf(node, type, member);
}
