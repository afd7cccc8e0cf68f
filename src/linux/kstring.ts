/**
 * Bounded NUL-terminated strings through a `char *` in guest memory, read a
 * page at a time so a short string near the end of a mapping never faults on
 * the unmapped page after it. Guest memory is hostile: the bound is a hard cap.
 */
import type { VirtualMemory } from '../profile/typed.js';

const PAGE = 4096;

/** The string at `va` (at most `max` bytes); `truncated` when no NUL was met within the bound. Throws FaultError. */
export function readKernelString(mem: VirtualMemory, va: bigint, max = 256): { text: string; truncated: boolean } {
  const parts: Uint8Array[] = [];
  let got = 0;
  let cur = va;
  while (got < max) {
    const n = Math.min(PAGE - Number(BigInt.asUintN(12, cur)), max - got);
    const chunk = mem.read(cur, n);
    const nul = chunk.indexOf(0);
    if (nul >= 0) {
      parts.push(chunk.subarray(0, nul));
      return { text: Buffer.concat(parts).toString('utf8'), truncated: false };
    }
    parts.push(chunk);
    got += n;
    cur += BigInt(n);
  }
  return { text: Buffer.concat(parts).toString('utf8'), truncated: true };
}
