/**
 * What every bounded walker shares (R7): the options (anomaly sink, node
 * limit, back-link validation), pointer sanity, and fault-tolerant reads of
 * small pointer groups. A walker never throws for an anomaly mid-walk: it
 * records it and stops (or skips) — unless no sink was given, in which case
 * the anomaly is thrown as a ValidationError (strict mode: never silent).
 */
import { FaultError, ValidationError } from '../../core/errors.js';
import type { AnomalyKind, AnomalySink } from '../anomaly.js';
import type { Typed } from '../../profile/typed.js';

export interface WalkOptions {
  /** Where anomalies go. Omitted: strict mode, the first anomaly throws ValidationError. */
  readonly anomalies?: AnomalySink;
  /** Most nodes visited before stopping with a 'limit' anomaly (default 100 000). */
  readonly limit?: number;
  /**
   * Check back-links (list next->prev, hlist pprev, rb parent) and record
   * 'broken-link' when they disagree. Default true: it costs no extra read.
   */
  readonly validate?: boolean;
  /** Names the walk in anomalies, e.g. 'task_struct.tasks'. */
  readonly where?: string;
  /** Pointer sanity check; default `isKernelPointer`. */
  readonly isValidPointer?: (va: bigint) => boolean;
  /**
   * A node budget shared by many walks (e.g. every thread list of one plugin
   * run), so nested walks over hostile data stay bounded as a whole.
   */
  readonly budget?: WalkBudget;
}

/** Nodes left for a group of walks; the first walk to run out records one 'limit' anomaly. */
export class WalkBudget {
  exhausted = false;
  constructor(public remaining: number = DEFAULT_RUN_BUDGET) {}
}

/** Default budget of nodes for one plugin run across all its walks. */
export const DEFAULT_RUN_BUDGET = 1 << 21;

export const DEFAULT_WALK_LIMIT = 100_000;

/** Lowest kernel-half address under 5-level paging; 4-level kernel addresses are above it too. */
const KERNEL_HALF = 0xff00_0000_0000_0000n;
const U64 = (1n << 64n) - 1n;

/**
 * A plausible kernel pointer: in the kernel half of the address space,
 * 8-byte aligned, not the all-ones poison. (List poison values such as
 * LIST_POISON1 = 0xdead000000000100 fall in the user half and fail here.)
 */
export function isKernelPointer(va: bigint): boolean {
  return va >= KERNEL_HALF && va < U64 && (va & 7n) === 0n;
}

/** One walk's bookkeeping: counts nodes, records anomalies, reads pointers without throwing. */
export class WalkContext {
  readonly where: string;
  readonly limit: number;
  readonly validate: boolean;
  private readonly sink: AnomalySink | undefined;
  private readonly valid: (va: bigint) => boolean;
  private readonly budget: WalkBudget | undefined;
  visited = 0;
  /** Set once the node limit stopped the walk. */
  limited = false;

  constructor(
    readonly typed: Typed,
    defaultWhere: string,
    opts: WalkOptions = {},
  ) {
    this.where = opts.where ?? defaultWhere;
    this.limit = opts.limit ?? DEFAULT_WALK_LIMIT;
    this.validate = opts.validate ?? true;
    this.sink = opts.anomalies;
    this.valid = opts.isValidPointer ?? isKernelPointer;
    this.budget = opts.budget;
  }

  /** Records an anomaly (or throws it in strict mode). */
  anomaly(kind: AnomalyKind, address: bigint | undefined, detail: string): void {
    if (!this.sink) throw new ValidationError(this.where, address ?? 0n, `${kind}: ${detail}`);
    this.sink.add(address === undefined ? { kind, where: this.where, detail } : { kind, where: this.where, address, detail });
  }

  /** Counts one visited node; false (with a 'limit' anomaly) once the bound is reached. */
  step(at: bigint): boolean {
    if (this.budget) {
      if (this.budget.remaining <= 0) {
        if (!this.budget.exhausted) this.anomaly('limit', at, 'the run\'s node budget is spent');
        this.budget.exhausted = true;
        this.limited = true;
        return false;
      }
      this.budget.remaining--;
    }
    if (this.visited >= this.limit) {
      if (!this.limited) this.anomaly('limit', at, `stopped after ${this.limit} nodes`);
      this.limited = true;
      return false;
    }
    this.visited++;
    return true;
  }

  /** Pointer sanity; records 'bad-pointer' naming `what` when it fails. */
  checkPointer(va: bigint, what: string): boolean {
    if (this.valid(va)) return true;
    this.anomaly('bad-pointer', va, `${what} 0x${va.toString(16)} is not a kernel pointer`);
    return false;
  }

  /**
   * `count` little-endian u64 words at `va`, or undefined after recording a
   * 'fault'. The words are decoded at once, so a live view cannot change under us.
   */
  readWords(va: bigint, count: number, what: string): bigint[] | undefined {
    let b: Uint8Array;
    try {
      b = this.typed.mem.read(va, count * 8);
    } catch (e) {
      if (!(e instanceof FaultError)) throw e;
      this.anomaly('fault', va, `${what}: ${e.message}`);
      return undefined;
    }
    if (b.length < count * 8) {
      this.anomaly('fault', va, `${what}: short read of ${b.length} of ${count * 8} bytes`);
      return undefined;
    }
    const dv = new DataView(b.buffer, b.byteOffset, count * 8);
    const out = new Array<bigint>(count);
    for (let i = 0; i < count; i++) out[i] = dv.getBigUint64(i * 8, true);
    return out;
  }

  /** Raw bytes at `va`, or undefined after recording a 'fault'. */
  readBytes(va: bigint, len: number, what: string): Uint8Array | undefined {
    try {
      const b = this.typed.mem.read(va, len);
      if (b.length >= len) return b;
      this.anomaly('fault', va, `${what}: short read of ${b.length} of ${len} bytes`);
    } catch (e) {
      if (!(e instanceof FaultError)) throw e;
      this.anomaly('fault', va, `${what}: ${e.message}`);
    }
    return undefined;
  }
}

export const hex = (v: bigint): string => `0x${v.toString(16)}`;
