/**
 * Reading a process's user memory through its own page tables (mm->pgd):
 * argv (mm->arg_start..arg_end) and the environment (env_start..env_end),
 * as /proc/<pid>/cmdline and /proc/<pid>/environ show them. Lengths are
 * guest data: bounded, and a range cut at the bound is a 'truncated' anomaly.
 * Pages that are not present (never touched, swapped out) read as zeros and
 * are a 'fault' anomaly: the result is partial, never an exception.
 *
 * @example
 * const mm = readObject(kernel, 'mm_struct', task.ptr('mm'), anomalies, 'task_struct.mm');
 * const argv = processArgv(kernel, mm, anomalies);   // ['/bin/vmi-args', '--alpha', ...]
 */
import { FaultError } from '../core/errors.js';
import type { AddressSpace } from '../arch/address-space.js';
import type { ObjValue } from '../profile/typed.js';
import type { AnomalySink } from './anomaly.js';
import type { Kernel } from './kernel.js';
import { absent, type Absent } from './plugin.js';
import { gva } from '../core/address.js';

/** Bound on argv/environ bytes read per process (the kernel's own limit is ARG_MAX-like, 2 MiB+). */
export const MAX_ARGS_BYTES = 256 * 1024;
/** Highest user-space address (4-level: 2^47; 5-level: 2^56). */
const USER_TOP = 1n << 56n;

/** The address space of a process from its `struct mm_struct` value (cached per pass); undefined (anomaly) when mm->pgd is unusable. */
export function processSpace(k: Kernel, mm: ObjValue, anomalies: AnomalySink): AddressSpace | undefined {
  const pgd = mm.ptr('pgd');
  try {
    // Cached by pgd for the pass (Kernel.userSpace); its translations are re-checked each pass.
    return k.userSpace(pgd, `mm 0x${mm.address.toString(16)}`);
  } catch (e) {
    if (!(e instanceof FaultError)) throw e;
    anomalies.add({ kind: 'fault', where: 'mm_struct.pgd', address: pgd, detail: e.message });
    return undefined;
  }
}

/**
 * Bytes of [start, end) in a user address space, bounded by `max`.
 * @returns the bytes (zeros where unreadable), or Absent when the range is impossible
 */
export function readUserRange(
  space: AddressSpace,
  start: bigint,
  end: bigint,
  anomalies: AnomalySink,
  where: string,
  max = MAX_ARGS_BYTES,
): Uint8Array | Absent {
  if (end < start || end > USER_TOP) {
    anomalies.add({ kind: 'invalid', where, address: start, detail: `range 0x${start.toString(16)}..0x${end.toString(16)} is not a user range` });
    return absent('unparsable', 'invalid user range');
  }
  let len = end - start;
  if (len > BigInt(max)) {
    anomalies.add({ kind: 'truncated', where, address: start, detail: `${len} bytes, read ${max}` });
    len = BigInt(max);
  }
  const op = { va: gva(start), len: Number(len) };
  const failures = space.readv([op]);
  for (const f of failures) anomalies.add({ kind: 'fault', where, address: f.va, detail: `${f.len} bytes unreadable: ${f.reason}` });
  return (op as { dst?: Uint8Array }).dst ?? new Uint8Array(0);
}

/** Splits a NUL-separated block (argv, environ) as /proc does; a missing final NUL keeps the tail. */
export function splitNul(b: Uint8Array): string[] {
  const out: string[] = [];
  let at = 0;
  for (let i = 0; i < b.length; i++) {
    if (b[i] === 0) {
      out.push(Buffer.from(b.buffer, b.byteOffset + at, i - at).toString('utf8'));
      at = i + 1;
    }
  }
  if (at < b.length) out.push(Buffer.from(b.buffer, b.byteOffset + at, b.length - at).toString('utf8'));
  return out;
}

function nulRange(k: Kernel, mm: ObjValue, from: string, to: string, anomalies: AnomalySink, space?: AddressSpace): string[] | Absent {
  const s = space ?? processSpace(k, mm, anomalies);
  if (!s) return absent('unreadable', 'mm->pgd unusable');
  const start = mm.u64(from);
  const end = mm.u64(to);
  if (start === 0n && end === 0n) return [];
  const b = readUserRange(s, start, end, anomalies, `mm_struct.${from}`);
  return b instanceof Uint8Array ? splitNul(b) : b;
}

/** /proc/<pid>/cmdline as an argv array. */
export function processArgv(k: Kernel, mm: ObjValue, anomalies: AnomalySink, space?: AddressSpace): string[] | Absent {
  return nulRange(k, mm, 'arg_start', 'arg_end', anomalies, space);
}

/** /proc/<pid>/environ as NAME=value strings. */
export function processEnviron(k: Kernel, mm: ObjValue, anomalies: AnomalySink, space?: AddressSpace): string[] | Absent {
  return nulRange(k, mm, 'env_start', 'env_end', anomalies, space);
}
