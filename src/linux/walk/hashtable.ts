/**
 * Walkers over include/linux/hashtable.h: arrays of `struct hlist_head`
 * buckets (mount_hashtable, pid/inode hashes). The bucket array is read in
 * one batch; a node seen twice across buckets is a cycle.
 */
import type { ObjRef, Typed } from '../../profile/typed.js';
import { WalkContext, type WalkOptions } from './common.js';
import { hlistChain } from './list.js';

/** Largest bucket array accepted (hostile sizes): 16 Mi buckets. */
export const MAX_BUCKETS = 1 << 24;

/**
 * hash_for_each(): every node of every bucket.
 * @param table `struct hlist_head *` (first bucket)
 * @param buckets number of buckets (validated against MAX_BUCKETS)
 * @returns `struct hlist_node *` addresses with their bucket index
 */
export function* hashForEach(typed: Typed, table: bigint, buckets: number, opts: WalkOptions = {}): Generator<{ node: bigint; bucket: number }> {
  const ctx = new WalkContext(typed, 'hlist_head[]', opts);
  if (!Number.isInteger(buckets) || buckets < 0 || buckets > MAX_BUCKETS) {
    ctx.anomaly('invalid', table, `bucket count ${buckets} outside 0..${MAX_BUCKETS}`);
    return;
  }
  const seen = new Set<bigint>();
  const CHUNK = 4096; // buckets per batched read
  for (let base = 0; base < buckets; base += CHUNK) {
    const n = Math.min(CHUNK, buckets - base);
    const heads = ctx.readWords(table + BigInt(base * 8), n, `buckets ${base}..${base + n - 1}`);
    if (!heads) continue;
    for (let i = 0; i < n; i++) {
      if (heads[i] === 0n) continue;
      for (const node of hlistChain(ctx, table + BigInt((base + i) * 8), heads[i]!, seen)) yield { node, bucket: base + i };
      if (ctx.limited) return;
    }
  }
}

/** hash_for_each() with container_of(): the objects of every bucket. */
export function* hashForEachEntry(
  typed: Typed,
  table: bigint,
  buckets: number,
  type: string,
  member: string,
  opts: WalkOptions = {},
): Generator<ObjRef> {
  const o = { ...opts, where: opts.where ?? `${type}.${member}` };
  for (const { node } of hashForEach(typed, table, buckets, o)) yield typed.containerOf(node, type, member);
}
