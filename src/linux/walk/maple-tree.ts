/**
 * Walker over include/linux/maple_tree.h (v6.1+, VMAs in mm_struct.mm_mt):
 * every non-NULL entry with its [first, last] index range, in index order.
 *
 * Layouts (pivot/slot/meta offsets and counts) come from the profile's
 * maple_node / maple_range_64 / maple_arange_64 types. Encoded node pointers
 * (`struct maple_enode *`) carry the node type in bits 3..6 and the 256-byte
 * aligned node address above bit 8 (mte_node_type(), mte_to_node()).
 *
 * Bounded: node and entry limit, height limit (MAPLE_HEIGHT_MAX), seen-set
 * of nodes, pivots checked to be increasing and inside the parent's range,
 * dead nodes (parent pointing at themselves) reported.
 *
 * @example
 * for (const { first, last, entry } of mtForEach(kernel.typed, mm.addrOf('mm_mt'), { anomalies })) …
 */
import { ProfileError } from '../../core/errors.js';
import type { Typed } from '../../profile/typed.js';
import type { TypeDb } from '../../profile/types.js';
import { hex, WalkContext, type WalkOptions } from './common.js';

/** enum maple_type. */
export const MAPLE_DENSE = 0;
export const MAPLE_LEAF_64 = 1;
export const MAPLE_RANGE_64 = 2;
export const MAPLE_ARANGE_64 = 3;
/** MAPLE_HEIGHT_MAX in lib/maple_tree.c. */
export const MAPLE_HEIGHT_MAX = 31;
const MAPLE_NODE_MASK = 0xffn;
const ULONG_MAX = (1n << 64n) - 1n;

export interface MapleEntry {
  /** First index the entry covers. */
  readonly first: bigint;
  /** Last index (inclusive). */
  readonly last: bigint;
  /** The stored pointer (e.g. `struct vm_area_struct *`). */
  readonly entry: bigint;
}

interface NodeKind {
  readonly pivotOff: number;
  readonly pivots: number;
  readonly slotOff: number;
  readonly slots: number;
  /** Offset of maple_metadata.end, when the layout has metadata. */
  readonly metaEnd: number | undefined;
}

interface MapleLayout {
  readonly rootOff: number;
  readonly nodeSize: number;
  readonly dense: { readonly slotOff: number; readonly slots: number };
  readonly range: NodeKind;
  readonly arange: NodeKind;
}

const layouts = new WeakMap<TypeDb, MapleLayout>();

/** The maple layout of this profile (cached). Throws ProfileError when the types are missing. */
export function mapleLayout(db: TypeDb): MapleLayout {
  let l = layouts.get(db);
  if (l) return l;
  const arr = (type: string, path: string): { off: number; len: number } => {
    const f = db.field(type, path);
    const t = db.resolve(f.type);
    if (t.kind !== 'array') throw new ProfileError(`${type}.${path} is not an array in ${db.source}`, { type, field: path, tried: [db.source] });
    return { off: f.offset, len: t.length };
  };
  const kind = (type: string): NodeKind => {
    const p = arr(type, 'pivot');
    const s = arr(type, 'slot');
    return { pivotOff: p.off, pivots: p.len, slotOff: s.off, slots: s.len, metaEnd: db.tryField(type, 'meta.end')?.offset };
  };
  const d = arr('maple_node', 'slot');
  l = {
    rootOff: db.offsetOf('maple_tree', 'ma_root'),
    nodeSize: db.sizeOf('maple_node'),
    dense: { slotOff: d.off, slots: d.len },
    range: kind('maple_range_64'),
    arange: kind('maple_arange_64'),
  };
  layouts.set(db, l);
  return l;
}

/** xa_is_node() on a maple root: an internal entry above 4096. */
const isNode = (e: bigint): boolean => (e & 3n) === 2n && e > 4096n;
/** Internal (reserved) entries such as XA_ZERO_ENTRY: skipped, as the kernel's iterators do. */
const isReserved = (e: bigint): boolean => (e & 3n) === 2n && e < 4096n;

interface Pending {
  readonly enode: bigint;
  readonly min: bigint;
  readonly max: bigint;
  readonly depth: number;
  readonly parent: bigint;
}

/**
 * mt_for_each(): the non-NULL entries of a maple tree in index order.
 * @param tree `struct maple_tree *`
 */
export function* mtForEach(typed: Typed, tree: bigint, opts: WalkOptions = {}): Generator<MapleEntry> {
  const lay = mapleLayout(typed.db);
  const ctx = new WalkContext(typed, 'maple_tree', opts);
  const r = ctx.readWords(tree + BigInt(lay.rootOff), 1, 'maple_tree.ma_root');
  if (!r) return;
  const root = r[0]!;
  if (root === 0n) return;
  if (!isNode(root)) {
    // A single entry stored in the root covers index 0 only.
    if (!isReserved(root)) yield { first: 0n, last: 0n, entry: root };
    return;
  }
  const seen = new Set<bigint>();
  const stack: Pending[] = [{ enode: root, min: 0n, max: ULONG_MAX, depth: 1, parent: 0n }];
  while (stack.length) {
    const p = stack.pop()!;
    const addr = p.enode & ~MAPLE_NODE_MASK;
    const type = Number((p.enode >> 3n) & 0xfn);
    if (!ctx.checkPointer(addr, () => `maple node in ${hex(p.parent)}`)) continue;
    if (type > MAPLE_ARANGE_64) {
      ctx.anomaly('invalid', addr, `encoded node ${hex(p.enode)} has unknown type ${type}`);
      continue;
    }
    if (p.depth > MAPLE_HEIGHT_MAX) {
      ctx.anomaly('invalid', addr, `tree higher than ${MAPLE_HEIGHT_MAX}: subtree skipped`);
      continue;
    }
    if (seen.has(addr)) {
      ctx.anomaly('cycle', addr, `node reached twice (last from ${hex(p.parent)})`);
      continue;
    }
    seen.add(addr);
    if (!ctx.step(addr)) return;
    const bytes = ctx.readBytes(addr, lay.nodeSize, 'maple_node');
    if (!bytes) continue;
    const dv = new DataView(bytes.buffer, bytes.byteOffset, lay.nodeSize);
    const word = (off: number): bigint => dv.getBigUint64(off, true);
    // ma_dead_node(): a removed node's parent points at itself (a live guest raced us).
    if ((word(0) & ~MAPLE_NODE_MASK) === addr) {
      ctx.anomaly('invalid', addr, 'dead node (parent points to itself): the tree changed during the walk');
      continue;
    }
    if (type === MAPLE_DENSE) {
      for (let i = 0; i < lay.dense.slots; i++) {
        const index = p.min + BigInt(i);
        if (index > p.max) break;
        const e = word(lay.dense.slotOff + i * 8);
        if (e !== 0n && !isReserved(e)) yield { first: index, last: index, entry: e };
      }
      continue;
    }
    const k = type === MAPLE_ARANGE_64 ? lay.arange : lay.range;
    const pivot = (i: number): bigint => word(k.pivotOff + i * 8);
    const end = dataEnd(k, type, pivot, bytes, p.max);
    if (end >= k.slots) {
      ctx.anomaly('invalid', addr, `node end ${end} is beyond its ${k.slots} slots`);
      continue;
    }
    const children: Pending[] = [];
    let lo = p.min;
    for (let i = 0; i <= end; i++) {
      // mas_safe_pivot(): a slot past the pivot array ends at the node's max;
      // so does a last slot whose pivot was left 0.
      const piv = i < k.pivots ? pivot(i) : p.max;
      const hi = i === end && i > 0 && piv === 0n ? p.max : piv;
      if (hi < lo || hi > p.max) {
        ctx.anomaly('invalid', addr, `pivot ${i} = ${hex(hi)} outside ${hex(lo)}..${hex(p.max)}`);
        break;
      }
      const e = word(k.slotOff + i * 8);
      if (e !== 0n) {
        if (type === MAPLE_LEAF_64) {
          if (!isReserved(e)) yield { first: lo, last: hi, entry: e };
        } else children.push({ enode: e, min: lo, max: hi, depth: p.depth + 1, parent: addr });
      }
      if (hi === p.max) break;
      lo = hi + 1n;
    }
    for (let i = children.length - 1; i >= 0; i--) stack.push(children[i]!);
  }
}

/**
 * ma_data_end(): the offset of the last used slot. arange nodes keep it in
 * their metadata; range/leaf nodes imply it by the last pivot (0: see the
 * metadata; equal to max: the pivot array's end; else every slot is used).
 */
function dataEnd(k: NodeKind, type: number, pivot: (i: number) => bigint, bytes: Uint8Array, max: bigint): number {
  const meta = (): number => {
    if (k.metaEnd !== undefined) return bytes[k.metaEnd]!;
    // No metadata in this layout: the first zero pivot after slot 0 ends the data.
    for (let i = 1; i < k.pivots; i++) if (pivot(i) === 0n) return i - 1;
    return k.pivots;
  };
  if (type === MAPLE_ARANGE_64) return meta();
  const last = pivot(k.pivots - 1);
  if (last === 0n) return meta();
  if (last === max) return k.pivots - 1;
  return k.pivots;
}
