/**
 * Convenience reads over any PhysicalMemory. Zero-copy when the source maps
 * guest memory; otherwise one batched read. These throw FaultError; callers
 * that want partial results use `readv` directly.
 */
import { FaultError } from '../core/errors.js';
import type { MappedRegion, PhysicalMemory, PhysRange, ReadOp } from './types.js';
import { gpa } from '../core/address.js';

/** Finds the mapped region holding [addr, addr+len), or undefined. Regions are sorted. */
export function findRegion(regions: readonly MappedRegion[], addr: number, len: number): MappedRegion | undefined {
  let lo = 0;
  let hi = regions.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const r = regions[mid]!;
    if (addr < r.start) hi = mid - 1;
    else if (addr >= r.start + r.bytes.length) lo = mid + 1;
    else return addr + len <= r.start + r.bytes.length ? r : undefined;
  }
  return undefined;
}

/** True when [addr, addr+len) lies inside one backed range. */
export function isBacked(ranges: readonly PhysRange[], addr: number, len: number): boolean {
  for (const r of ranges) if (addr >= r.start && addr + len <= r.end) return true;
  return false;
}

/**
 * Reads `len` bytes at guest-physical `addr`. Returns a view into mapped memory
 * when possible (do not keep it across passes of a live source), else a copy.
 */
export function readPhys(mem: PhysicalMemory, addr: number, len: number): Uint8Array {
  const regions = mem.mapped?.();
  if (regions) {
    const r = findRegion(regions, addr, len);
    if (r) return r.bytes.subarray(addr - r.start, addr - r.start + len);
  }
  const op: ReadOp = { addr: gpa(addr), len };
  const failures = mem.readv([op]);
  if (failures.length) {
    const f = failures[0]!;
    throw new FaultError('physical', f.addr, f.reason);
  }
  return op.dst!;
}

/** Reads into a caller-owned buffer (always a copy). */
export function readPhysInto(mem: PhysicalMemory, addr: number, dst: Uint8Array): void {
  const failures = mem.readv([{ addr: gpa(addr), len: dst.length, dst }]);
  if (failures.length) throw new FaultError('physical', failures[0]!.addr, failures[0]!.reason);
}

export function dataView(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export function readU64Phys(mem: PhysicalMemory, addr: number): bigint {
  return dataView(readPhys(mem, addr, 8)).getBigUint64(0, true);
}

export function readU32Phys(mem: PhysicalMemory, addr: number): number {
  return dataView(readPhys(mem, addr, 4)).getUint32(0, true);
}

/** Decodes a NUL-terminated Latin-1/UTF-8 string from bytes (stops at the first NUL). */
export function cString(bytes: Uint8Array): string {
  const end = bytes.indexOf(0);
  return Buffer.from(bytes.buffer, bytes.byteOffset, end < 0 ? bytes.length : end).toString('utf8');
}
