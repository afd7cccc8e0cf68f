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

/**
 * Waits (ms) before the second, third… re-read of a back-link that
 * disagreed: at most ~1.3 ms per link, for at most SETTLE_LINKS links of
 * one walk (a persistent broken link is reported after them).
 */
const SETTLE_WAITS_MS = [0.02, 0.2, 1] as const;
const SETTLE_LINKS = 4;
const SETTLE_MAX = 1024;
/** Atomics.wait needs a shared word to wait on; nothing ever wakes it (a plain timed sleep). */
const SLEEPER = new Int32Array(new SharedArrayBuffer(4));

/**
 * Blocks the thread for `ms` (fractions allowed) without spinning, so the
 * guest's vCPU thread can have the core: the wait between two looks at
 * something a live guest was caught updating. Synchronous, as walks are.
 */
export function sleepBriefly(ms: number): void {
  Atomics.wait(SLEEPER, 0, 0, Math.max(0, Math.min(ms, 10)));
}

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

/**
 * What a read or pointer is, for an anomaly: a string, or a function that makes it (a walk names every node
 * by its neighbour's address, and formatting that for each of 10k nodes that read fine was 2% of a run).
 */
export type Describe = string | (() => string);

function described(what: Describe): string {
  return typeof what === 'function' ? what() : what;
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
  /** Re-reads of back-links that disagreed (settleLook). */
  settles = 0;

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
  checkPointer(va: bigint, what: Describe): boolean {
    if (this.valid(va)) return true;
    this.anomaly('bad-pointer', va, `${described(what)} 0x${va.toString(16)} is not a kernel pointer`);
    return false;
  }

  /**
   * `count` little-endian u64 words at `va`, or undefined after recording a
   * 'fault'. The words are decoded at once, so a live view cannot change under us.
   */
  readWords(va: bigint, count: number, what: Describe): bigint[] | undefined {
    let b: Uint8Array;
    try {
      b = this.typed.mem.read(va, count * 8);
    } catch (e) {
      if (!(e instanceof FaultError)) throw e;
      this.anomaly('fault', va, `${described(what)}: ${e.message}`);
      return undefined;
    }
    if (b.length < count * 8) {
      this.anomaly('fault', va, `${described(what)}: short read of ${b.length} of ${count * 8} bytes`);
      return undefined;
    }
    const dv = new DataView(b.buffer, b.byteOffset, count * 8);
    const out = new Array<bigint>(count);
    for (let i = 0; i < count; i++) out[i] = dv.getBigUint64(i * 8, true);
    return out;
  }

  /**
   * A list or hash-chain node's two words, [next, prev] (prev: `prev` or
   * `pprev`). In an optimistic pass only `next` is watched for change: the
   * back-link is read only to be checked, and the walk checks it itself,
   * re-reading it until it agrees (settleLook) — a neighbour's insertion
   * changing it later alters nothing the walk returned.
   */
  readLinkWords(va: bigint, what: Describe): bigint[] | undefined {
    const rec = this.typed.fields;
    if (rec === undefined) return this.readWords(va, 2, what);
    const w = rec.fetching(() => this.readWords(va, 2, what));
    if (w) rec.used(va, 0, 8, true);
    return w;
  }

  /**
   * `count` words at `va` re-read for a second look (settling a link), or
   * undefined when unreadable or not a plausible pointer — without an
   * anomaly: the first look already recorded what it found. A 'moved' next
   * found this way is read again, watched, when the walk goes on from it.
   */
  peekWords(va: bigint, count: number): bigint[] | undefined {
    if (!this.valid(va)) return undefined;
    let b: Uint8Array;
    try {
      // A second look sees the guest now, not a block this pass kept (live read: arch/pass-blocks.ts).
      (this.typed.mem as { lookAgain?: (va: bigint, len: number) => void }).lookAgain?.(va, count * 8);
      // Not watched by an optimistic pass: a second look is a check, its words feed no result.
      const rec = this.typed.fields;
      b = rec === undefined ? this.typed.mem.read(va, count * 8) : rec.fetching(() => this.typed.mem.read(va, count * 8));
    } catch (e) {
      if (!(e instanceof FaultError)) throw e;
      return undefined;
    }
    if (b.length < count * 8) return undefined;
    const dv = new DataView(b.buffer, b.byteOffset, count * 8);
    const out = new Array<bigint>(count);
    for (let i = 0; i < count; i++) out[i] = dv.getBigUint64(i * 8, true);
    return out;
  }

  /**
   * Before look `look` (0, 1, …) at a back-link that disagreed: false when
   * this walk may look no more. The first look is immediate; later ones wait
   * a little first (the guest's vCPU finishing a list_add/list_del it was
   * caught in: microseconds of guest time, but the vCPU thread needs to run),
   * blocking the thread rather than spinning, so a shared host core goes to
   * the guest. Bounded per walk: SETTLE_LOOKS looks per link, SETTLE_LINKS
   * links with waits, then links are judged on their first re-read alone
   * (a hostile guest's many broken links cost one extra read each), and
   * after SETTLE_MAX re-reads on no re-read at all. Memory that does not
   * change while read (an image, a paused guest) gets no waits.
   */
  settleLook(look: number): boolean {
    if (look === 0) {
      if (this.settles >= SETTLE_MAX) return false;
      this.settles++;
      return true;
    }
    if (look > SETTLE_WAITS_MS.length || this.settles > SETTLE_LINKS) return false;
    // An image or a paused guest reads the same on every look: waiting cannot heal anything there.
    if (this.typed.mem.changesUnderUs === false) return false;
    sleepBriefly(SETTLE_WAITS_MS[look - 1]!);
    return true;
  }

  /** A back-link that disagreed agreed on a re-read: counted in the sink (a torn read healed, not an anomaly). */
  settled(): void {
    if (this.sink) this.sink.settled++;
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
