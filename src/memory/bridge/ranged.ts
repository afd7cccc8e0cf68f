/**
 * Splits a batch against the guest RAM layout before it crosses the bridge:
 * holes fail locally (no round trip), backed pieces go to the backend as
 * sub-reads that write straight into the caller's buffers.
 */
import { holeReason, invalidRead, type RamRange, splitRead } from '../../qemu/layout.js';
import type { ReadFailure, ReadOp } from '../types.js';

export function readvWithinLayout(
  layout: readonly RamRange[],
  ops: ReadOp[],
  backend: (pieces: ReadOp[]) => ReadFailure[],
): ReadFailure[] {
  const failures: ReadFailure[] = [];
  const pieces: ReadOp[] = [];
  for (const op of ops) {
    const bad = invalidRead(op.addr, op.len, op.dst);
    if (bad) {
      op.dst ??= new Uint8Array(0);
      failures.push({ addr: op.addr, len: op.len, reason: bad });
      continue;
    }
    const dst = op.dst ?? (op.dst = new Uint8Array(op.len));
    splitRead(
      layout,
      op.addr,
      op.len,
      (range, _blockOffset, dstOffset, n) => {
        pieces.push({ addr: op.addr + dstOffset, len: n, dst: dst.subarray(dstOffset, dstOffset + n) });
      },
      (addr, dstOffset, n) => {
        dst.fill(0, dstOffset, dstOffset + n);
        failures.push({ addr, len: n, reason: holeReason(addr) });
      },
    );
  }
  if (pieces.length) for (const f of backend(pieces)) failures.push(f);
  return failures;
}
