/**
 * Maple tree types (64-bit layout as in include/linux/maple_tree.h, with
 * the anonymous unions BTF shows) and a builder of nodes in synthetic memory.
 */
import type { TypeId } from '../../../src/profile/types.js';
import type { FakeMemory, TypeBuilder } from './synthetic.js';

/** `meta: false` gives the layout without maple_metadata (the first maple trees, before v6.0's metadata). */
export function mapleTypes(b: TypeBuilder, opts: { meta?: boolean } = {}): void {
  const withMeta = opts.meta ?? true;
  const meta = b.struct('maple_metadata', 2, [['end', b.u8, 0], ['gap', b.u8, 1]]);
  const pnode = b.ptr(b.declare('maple_pnode'));
  const slots = (n: number): TypeId => b.array(b.voidp, n);
  const pivots = (n: number): TypeId => b.array(b.ulong, n);
  const rangeTail = withMeta
    ? b.struct('', 128, [['slot', slots(16), 0], ['', b.struct('', 128, [['pad', slots(15), 0], ['meta', meta, 120]]), 0]], 'union')
    : b.struct('', 128, [['slot', slots(16), 0]]);
  b.struct('maple_range_64', 256, [['parent', pnode, 0], ['pivot', pivots(15), 8], ['', rangeTail, 128]]);
  b.struct('maple_arange_64', 256, [
    ['parent', pnode, 0],
    ['pivot', pivots(9), 8],
    ['slot', slots(10), 80],
    ['gap', pivots(10), 160],
    ...(withMeta ? ([['meta', meta, 240]] as const) : []),
  ]);
  const dense = b.struct('', 256, [['parent', pnode, 0], ['slot', slots(31), 8]]);
  b.struct('maple_node', 256, [['', dense, 0]], 'union');
  b.struct('maple_tree', 16, [['ma_lock', b.uint, 0], ['ma_flags', b.uint, 4], ['ma_root', b.voidp, 8]]);
}

export const LEAF_64 = 1;
export const RANGE_64 = 2;
export const ARANGE_64 = 3;

export const enode = (node: bigint, type: number): bigint => node | (BigInt(type) << 3n) | 4n;

/**
 * Writes one node: `slots` are [last index (pivot), entry] pairs; the last
 * pair's pivot should equal the node's max. Metadata end is set for nodes
 * that do not fill their pivots.
 */
export function writeNode(mem: FakeMemory, addr: bigint, type: number, parent: bigint, slots: readonly (readonly [bigint, bigint])[]): void {
  mem.map(addr, 256);
  mem.write(addr, new Uint8Array(256));
  mem.w64(addr, parent);
  const arange = type === ARANGE_64;
  const pivotCount = arange ? 9 : 15;
  const slotOff = arange ? 80n : 128n;
  slots.forEach(([pivot, entry], i) => {
    if (i < pivotCount) mem.w64(addr + 8n + 8n * BigInt(i), pivot);
    mem.w64(addr + slotOff + 8n * BigInt(i), entry);
  });
  if (arange) mem.w8(addr + 240n, slots.length - 1);
  else if (slots.length <= 15) mem.w8(addr + 248n, slots.length - 1);
}
