/**
 * Splits a batch against the guest RAM layout before it crosses the bridge:
 * holes fail locally (no round trip), backed pieces go to the backend as
 * sub-reads that write straight into the caller's buffers.
 */
import { type RamRange, readDestination, splitReadFillingHoles } from '../../qemu/layout.js';
import type { ReadFailure, ReadOp } from '../types.js';
import { gpa } from '../../core/address.js';

export function readvWithinLayout(
  layout: readonly RamRange[],
  ops: ReadOp[],
  backend: (pieces: ReadOp[]) => ReadFailure[],
): ReadFailure[] {
  const failures: ReadFailure[] = [];
  const pieces: ReadOp[] = [];
  for (const op of ops) {
    const dst = readDestination(op, failures);
    if (!dst) continue;
    splitReadFillingHoles(layout, op.addr, op.len, dst, failures, (_range, _blockOffset, dstOffset, n) => {
      pieces.push({ addr: gpa(op.addr + dstOffset), len: n, dst: dst.subarray(dstOffset, dstOffset + n) });
    });
  }
  if (pieces.length) for (const f of backend(pieces)) failures.push(f);
  return failures;
}
