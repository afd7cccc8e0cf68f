/** xarray / xa_node / idr types (64 slots) and a node writer for synthetic memory. */
import type { FakeMemory, TypeBuilder } from './synthetic.js';

/** `idrBase: false` leaves idr_base out (kernels before v4.16); `rtOffset` moves idr_rt inside struct idr. */
export function xarrayTypes(b: TypeBuilder, opts: { idrBase?: boolean; rtOffset?: number } = {}): void {
  const node = b.declare('xa_node');
  const xa = b.struct('xarray', 16, [['xa_lock', b.uint, 0], ['xa_flags', b.uint, 4], ['xa_head', b.voidp, 8]]);
  b.define(node, 576, [
    ['shift', b.u8, 0],
    ['offset', b.u8, 1],
    ['count', b.u8, 2],
    ['nr_values', b.u8, 3],
    ['parent', b.ptr(node), 8],
    ['array', b.ptr(xa), 16],
    ['slots', b.array(b.voidp, 64), 40],
  ]);
  const rt = opts.rtOffset ?? 0;
  if (opts.idrBase === false) b.struct('idr', rt + 24, [['idr_rt', xa, rt], ['idr_next', b.uint, rt + 16]]);
  else b.struct('idr', rt + 24, [['idr_rt', xa, rt], ['idr_base', b.uint, rt + 16], ['idr_next', b.uint, rt + 20]]);
}

/** Writes an xa_node; `slots` maps slot index → raw slot value. Returns the internal (encoded) pointer. */
export function writeXaNode(mem: FakeMemory, addr: bigint, shift: number, offset: number, parent: bigint, slots: ReadonlyMap<number, bigint>): bigint {
  mem.map(addr, 576);
  mem.write(addr, new Uint8Array(576));
  mem.w8(addr, shift);
  mem.w8(addr + 1n, offset);
  mem.w64(addr + 8n, parent);
  for (const [i, v] of slots) mem.w64(addr + 40n + 8n * BigInt(i), v);
  return addr + 2n;
}
