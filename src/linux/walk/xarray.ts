/**
 * Walker over include/linux/xarray.h (and the radix tree, which is the same
 * structure since v4.20: `struct radix_tree_root` is `struct xarray`):
 * every present entry with its index, in index order.
 *
 * Entry encoding: an internal entry has low bits 10; above 4096 it is a node
 * (xa_to_node() = entry - 2), below it a sibling/retry/zero marker (skipped).
 * Layout (xa_node shift/offset/parent/slots and XA_CHUNK_SIZE) comes from the
 * profile. Bounded: node limit, seen-set, child shift must be the parent's
 * minus XA_CHUNK_SHIFT, back-links (parent, offset) validated.
 *
 * @example
 * for (const { index, entry } of xaForEach(kernel.typed, xarrayVa, { anomalies })) …
 */
import type { Typed } from '../../profile/typed.js';
import type { TypeDb } from '../../profile/types.js';
import { ProfileError } from '../../core/errors.js';
import { hex, WalkContext, type WalkOptions } from './common.js';

export interface XaEntry {
  /** First index of the entry (a multi-index entry covers 2^shift indices from here). */
  readonly index: bigint;
  readonly entry: bigint;
}

interface XaLayout {
  readonly headOff: number;
  readonly nodeSize: number;
  readonly shiftOff: number;
  readonly offsetOff: number;
  readonly parentOff: number;
  readonly slotsOff: number;
  readonly slots: number;
  readonly chunkShift: number;
}

const layouts = new WeakMap<TypeDb, XaLayout>();

/** The xarray layout of this profile (cached). Throws ProfileError when xa_node is missing. */
export function xaLayout(db: TypeDb): XaLayout {
  let l = layouts.get(db);
  if (l) return l;
  const slots = db.field('xa_node', 'slots');
  const t = db.resolve(slots.type);
  if (t.kind !== 'array' || t.length < 2 || (t.length & (t.length - 1)) !== 0) {
    throw new ProfileError(`xa_node.slots in ${db.source} is not a power-of-two array`, { type: 'xa_node', field: 'slots', tried: [db.source] });
  }
  l = {
    headOff: db.offsetOf('xarray', 'xa_head'),
    nodeSize: db.sizeOf('xa_node'),
    shiftOff: db.offsetOf('xa_node', 'shift'),
    offsetOff: db.offsetOf('xa_node', 'offset'),
    parentOff: db.offsetOf('xa_node', 'parent'),
    slotsOff: slots.offset,
    slots: t.length,
    chunkShift: Math.log2(t.length),
  };
  layouts.set(db, l);
  return l;
}

const isInternal = (e: bigint): boolean => (e & 3n) === 2n;
const isNode = (e: bigint): boolean => isInternal(e) && e > 4096n;

interface Frame {
  readonly node: bigint;
  readonly base: bigint;
  readonly shift: number;
  readonly dv: DataView;
  next: number;
}

/**
 * xa_for_each(): present entries in index order.
 * @param xa `struct xarray *` (or `struct radix_tree_root *`)
 */
export function* xaForEach(typed: Typed, xa: bigint, opts: WalkOptions = {}): Generator<XaEntry> {
  const lay = xaLayout(typed.db);
  const ctx = new WalkContext(typed, 'xarray', opts);
  const h = ctx.readWords(xa + BigInt(lay.headOff), 1, 'xarray.xa_head');
  if (!h) return;
  const head = h[0]!;
  if (head === 0n) return;
  if (!isNode(head)) {
    if (!isInternal(head)) yield { index: 0n, entry: head };
    return;
  }
  const seen = new Set<bigint>();
  const stack: Frame[] = [];
  /** Reads and checks one node; undefined (anomaly recorded) when it cannot be walked. */
  const open = (node: bigint, base: bigint, want: number, parent: bigint, offset: number): Frame | undefined => {
    if (!ctx.checkPointer(node, () => `xa_node under ${hex(parent)}`)) return undefined;
    if (seen.has(node)) {
      ctx.anomaly('cycle', node, `node reached twice (last from ${hex(parent)})`);
      return undefined;
    }
    seen.add(node);
    if (!ctx.step(node)) return undefined;
    const bytes = ctx.readBytes(node, lay.nodeSize, 'xa_node');
    if (!bytes) return undefined;
    const dv = new DataView(bytes.buffer, bytes.byteOffset, lay.nodeSize);
    const shift = bytes[lay.shiftOff]!;
    if (shift % lay.chunkShift !== 0 || shift >= 64 || (want >= 0 && shift !== want)) {
      ctx.anomaly('invalid', node, `shift ${shift} (expected ${want >= 0 ? want : `a multiple of ${lay.chunkShift}`})`);
      return undefined;
    }
    if (ctx.validate) {
      const back = dv.getBigUint64(lay.parentOff, true);
      if (back !== parent) ctx.anomaly('broken-link', node, `parent is ${hex(back)}, expected ${hex(parent)}`);
      else if (parent !== 0n && bytes[lay.offsetOff] !== offset) {
        ctx.anomaly('broken-link', node, `offset is ${bytes[lay.offsetOff]}, expected ${offset}`);
      }
    }
    return { node, base, shift, dv, next: 0 };
  };
  const root = open(head - 2n, 0n, -1, 0n, 0);
  if (root) stack.push(root);
  while (stack.length) {
    const f = stack[stack.length - 1]!;
    if (f.next >= lay.slots) {
      stack.pop();
      continue;
    }
    const i = f.next++;
    const e = f.dv.getBigUint64(lay.slotsOff + i * 8, true);
    if (e === 0n) continue;
    const index = f.base + (BigInt(i) << BigInt(f.shift));
    if (isNode(e) && f.shift > 0) {
      const child = open(e - 2n, index, f.shift - lay.chunkShift, f.node, i);
      if (ctx.limited) return;
      if (child) stack.push(child);
    } else if (!isInternal(e)) {
      yield { index, entry: e };
    }
  }
}
