/**
 * A watch built from a plugin: the plugin's rows are the state, its row keys the identities across passes,
 * and a diff of two row sets gives the events. What wakes it is declared per watch: link ranges (list heads,
 * hash-table buckets, whole tables) and field ranges of each row's object, plus an optional sweep period
 * for what no range announces. Each re-run goes through the pass, so requirements are checked and anomalies
 * counted like every plugin run.
 */
import type { Plugin, PluginOptions } from '../../linux/plugin.js';
import type { EventDraft, EventType } from '../events.js';
import type { WatchRange } from '../watch-set.js';
import type { Watch, WatchChange, WatchContext } from '../watcher.js';
import { monotonicMs } from '../../core/clock.js';

export interface PluginWatchSpec<R extends object> {
  readonly name: string;
  readonly plugin: Plugin<R>;
  readonly options?: PluginOptions;
  readonly emits: readonly EventType[];
  /** Ranges that announce objects coming or going (list heads, tables). */
  sentinels(ctx: WatchContext): WatchRange[];
  /** Ranges of one row's object worth a re-run when they change (e.g. a socket's state byte). */
  rowRanges?(ctx: WatchContext, row: R): WatchRange[];
  /** Events for the difference of two row sets (prev and next are keyed by the plugin's key). */
  diff(prev: ReadonlyMap<string, R>, next: ReadonlyMap<string, R>, ctx: WatchContext): EventDraft[];
  readonly sweepMs?: number;
  /**
   * A new row caught half-made (e.g. a socket read before its owner's fd table shows it): held back and
   * re-read every HOLD_RETRY_MS until it is complete, for at most HOLD_MAX_MS, then reported as it is.
   */
  incomplete?(row: R): boolean;
  /** Diff the first read against nothing (e.g. a module already hidden when the monitor attaches). */
  readonly reportInitial?: boolean;
}

/** How often a held-back row is re-read, and for how long at most. */
const HOLD_RETRY_MS = 5;
const HOLD_MAX_MS = 250;

export class PluginWatch<R extends object> implements Watch {
  readonly name: string;
  readonly emits: readonly EventType[];
  private rows = new Map<string, R>();
  /** New rows held back as incomplete: key → the row last read and when it was first seen. */
  private held = new Map<string, { row: R; since: number }>();
  private runs = 0;
  private duplicates = 0;
  private heldTotal = 0;

  constructor(private readonly spec: PluginWatchSpec<R>) {
    this.name = spec.name;
    this.emits = spec.emits;
  }

  get sweepMs(): number | undefined {
    return this.held.size ? HOLD_RETRY_MS : this.spec.sweepMs;
  }

  init(ctx: WatchContext): void {
    this.rows = this.read(ctx);
    if (this.spec.reportInitial) for (const e of this.spec.diff(new Map(), this.rows, ctx)) ctx.emit(e);
    this.declare(ctx);
  }

  update(ctx: WatchContext, _change: WatchChange): void {
    this.rerun(ctx);
  }

  sweep(ctx: WatchContext): void {
    this.rerun(ctx);
  }

  stats(): Record<string, number> {
    return { rows: this.rows.size, runs: this.runs, duplicateKeys: this.duplicates, held: this.held.size, heldTotal: this.heldTotal };
  }

  /** Current rows, by key (for cross-views and tests). */
  current(): ReadonlyMap<string, R> {
    return this.rows;
  }

  private rerun(ctx: WatchContext): void {
    const next = this.holdBack(this.read(ctx));
    for (const e of this.spec.diff(this.rows, next, ctx)) ctx.emit(e);
    this.rows = next;
    this.declare(ctx);
  }

  /**
   * Takes new, incomplete rows out of `next` until they complete or age out. A held row that vanished is
   * put back once as last read, so a short-lived object still gets its appearance and its end reported.
   */
  private holdBack(next: Map<string, R>): Map<string, R> {
    const incomplete = this.spec.incomplete;
    if (!incomplete) return next;
    const now = monotonicMs();
    const released = new Set<string>();
    for (const [key, h] of this.held) {
      const row = next.get(key);
      if (row === undefined) {
        next.set(key, h.row);
        released.add(key);
        this.held.delete(key);
      } else if (!incomplete(row) || now - h.since >= HOLD_MAX_MS) {
        released.add(key);
        this.held.delete(key);
      } else {
        h.row = row;
        next.delete(key);
      }
    }
    for (const [key, row] of next) {
      if (this.rows.has(key) || this.held.has(key) || released.has(key) || !incomplete(row)) continue;
      this.held.set(key, { row, since: now });
      this.heldTotal++;
      next.delete(key);
    }
    return next;
  }

  private read(ctx: WatchContext): Map<string, R> {
    this.runs++;
    const result = ctx.pass.run(this.spec.plugin, this.spec.options ?? {});
    const out = new Map<string, R>();
    for (const row of result.rows) {
      const key = this.spec.plugin.key(row);
      if (out.has(key)) this.duplicates++; // a key collision would hide a change: counted, first row kept
      else out.set(key, row);
    }
    return out;
  }

  /** Updates the watched ranges to the current rows; ranges kept from before keep their shadows. */
  private declare(ctx: WatchContext): void {
    const ws = ctx.watchSet;
    for (const key of ws.keysOf(this.name)) if (key !== '' && !this.rows.has(key)) ws.remove(this.name, key);
    ws.set(this.name, '', this.spec.sentinels(ctx));
    if (!this.spec.rowRanges) return;
    for (const [key, row] of this.rows) {
      const ranges = this.spec.rowRanges(ctx, row);
      if (ranges.length) ws.set(this.name, key, ranges.map((r) => ({ ...r, kind: 'link' as const })));
      else ws.remove(this.name, key);
    }
  }
}

/** Ranges covering `len` bytes at kernel VA `va`, page by page (a table may span discontiguous pages). */
export function rangesOf(ctx: WatchContext, va: bigint, len: number, kind: WatchRange['kind'] = 'link', maxPages = 256): WatchRange[] {
  const out: WatchRange[] = [];
  let at = va;
  let left = len;
  let pages = 0;
  while (left > 0 && pages++ < maxPages) {
    const n = Math.min(left, 4096 - Number(at & 0xfffn));
    const pa = ctx.view.pa(at);
    if (pa !== undefined) out.push({ pa, len: n, kind });
    at += BigInt(n);
    left -= n;
  }
  return out;
}
