/**
 * The watch API: what a watch (processes, modules, sockets, …, or one of your own) implements to be driven
 * by the monitor. A watch keeps its own state between passes, declares in the watch set the guest-physical
 * ranges whose change should wake it (`link` ranges: objects came or went; `field` ranges: one object
 * changed), and turns differences into event drafts. It never sleeps, never writes guest memory, and bounds
 * every walk; what it could not read goes into the pass's anomalies.
 *
 * @example A watch that reports changes of one global counter:
 * ```ts
 * const watch: Watch = {
 *   name: 'nr-threads',
 *   emits: ['anomaly'],
 *   init(ctx) { this.last = read(ctx); ctx.watchSet.set('nr-threads', '', [{ pa: ctx.view.pa(ctx.kernel.symbol('nr_threads'))!, len: 4, kind: 'link' }]); },
 *   update(ctx) { const now = read(ctx); if (now !== this.last) ctx.emit({ type: 'anomaly', watch: 'nr-threads', data: { from: this.last, to: now } }); this.last = now; },
 * };
 * ```
 * See examples/watch-nr-threads.ts for a complete one.
 */
import type { AnomalySink } from '../linux/anomaly.js';
import type { Kernel } from '../linux/kernel.js';
import type { Pass } from '../linux/pass.js';
import type { EventDraft, EventType } from './events.js';
import type { GuestView } from './guest-view.js';
import type { WatchSet } from './watch-set.js';

/** What a watch sees of the monitor during one pass. */
export interface WatchContext {
  readonly kernel: Kernel;
  readonly view: GuestView;
  readonly watchSet: WatchSet;
  /** The current pass: run plugins through it (requirements checked, anomalies counted). */
  readonly pass: Pass;
  readonly anomalies: AnomalySink;
  /** Host ms since the epoch: start of the previous and the current pass. */
  readonly window: { readonly from: number; readonly to: number };
  /** Incremental re-extraction on: re-read only the dirty objects. Off: re-walk on any change. */
  readonly incremental: boolean;
  emit(draft: EventDraft): void;
}

/** Why a watch is updated. */
export interface WatchChange {
  /** A link range (or a sentinel) changed, or a full re-walk is asked for. */
  readonly structural: boolean;
  /** Objects whose field ranges changed. */
  readonly dirty: ReadonlySet<string>;
}

export interface Watch {
  /** The --watch name, e.g. 'processes'. */
  readonly name: string;
  readonly emits: readonly EventType[];
  /** Reads the current state and declares its ranges; emits nothing (the state at attach is no change). */
  init(ctx: WatchContext): void;
  /** Re-reads what changed and emits the differences. */
  update(ctx: WatchContext, change: WatchChange): void;
  /**
   * Periodic work that no range change can announce (cross-views, tables that are not watched range by
   * range), at most every `sweepMs`.
   */
  sweep?(ctx: WatchContext): void;
  readonly sweepMs?: number;
  /** Counters for reports (objects watched, walks, re-reads, misses). */
  stats?(): Record<string, number>;
}
