/**
 * The real-time monitor (RTKDSM's core, from the host side): every tick it compares the watched ranges of
 * guest memory with their shadows (watch-set.ts), wakes only the watches whose ranges changed, lets them
 * re-read what changed, and streams the differences as events. QMP events pause it while the guest is
 * paused, re-bootstrap it after a reset, and end it when QEMU exits.
 *
 * Optimizations, each switchable so the benchmark can show what it buys:
 *   pageLevel    one memcmp per watched page before its ranges (--page-level; off by default: see DEFAULT_OPTIMIZATIONS)
 *   fieldFilter  only watched ranges on a changed page wake a watch      (--no-field-filter)
 *   incremental  only dirty objects are re-read, not the whole list      (--no-incremental)
 *   reuse        translations, profile and watch set kept across passes  (--no-reuse)
 *   qmpWake      QMP events wake a paused monitor instead of polling     (--no-qmp-wake)
 *
 * Bounded: the watch set has a page cap, walks have bounds, and a CPU budget (cpu-budget.ts, the process's
 * own CPU time over a window of at least 1 s) stretches the sleep between ticks so an event storm (a fork
 * bomb) cannot make the monitor take more than `cpuBudget` of a core, while one slow tick stretches nothing;
 * what it then cannot see individually the kernel's counters still count (unseen-starts events). The
 * heartbeat runs by the clock, busy or idle, so a storm cannot starve it.
 *
 * Longer than ~400 lines on purpose: the loop, its lifecycle (pause, reset, re-attach, QEMU exit) and its statistics share one state; a split would thread it through every call.
 */
import { describeError } from '../core/errors.js';
import { AttachedKernel, attachKernel } from '../linux/attach.js';
import { TableReader } from '../arch/x86-64/paging.js';
import { AnomalySink } from '../linux/anomaly.js';
import { checkCr3 } from '../profile/kernel-space.js';
import type { Kernel } from '../linux/kernel.js';
import { HaltingMemory } from '../memory/halting.js';
import type { PhysicalMemory } from '../memory/types.js';
import type { Pass } from '../linux/pass.js';
import { CpuBudget } from './cpu-budget.js';
import { EventStamper, type EventDraft, type EventSink, type MonitorEvent } from './events.js';
import { GuestView } from './guest-view.js';
import { TaskScanner } from './task-scan.js';
import type { GuestLifecycle, LifecycleSignal } from './lifecycle.js';
import { SinkSet } from './sinks/sink-set.js';
import { WatchSet, type Detection } from './watch-set.js';
import type { Watch, WatchContext } from './watcher.js';
import { buildWatches, DEFAULT_WATCHES, type WatchName } from './watches/index.js';
import { monotonicMs } from '../core/clock.js';

export interface Optimizations {
  readonly pageLevel: boolean;
  readonly fieldFilter: boolean;
  readonly incremental: boolean;
  readonly reuse: boolean;
  readonly qmpWake: boolean;
  /** Objects' ranges compared OBJECT_SLICE a tick, in turns (off: every object every tick). */
  readonly objectTurns: boolean;
}

export const ALL_OPTIMIZATIONS: Optimizations = { pageLevel: true, fieldFilter: true, incremental: true, reuse: true, qmpWake: true, objectTurns: true };

/**
 * What the monitor uses unless told otherwise. Page-level detection is off: measured on the lab guest
 * (`bench -- monitor`, and the watch-set figures in the README), comparing the ~300 watched ranges in place
 * costs less per tick than a memcmp of the ~80 pages that hold them (the ranges are sparse: a task's comm,
 * mm and cred pointers on a 9 KiB task_struct). It pays where ranges are dense; `--page-level` turns it on.
 * Objects in turns are off too: on a quiet host every object every tick costs no more CPU (4.5 vs 8.8 % of a
 * core at 2 ms, within noise) and a cred change is seen in 1.3 ms median instead of 4.9 (`bench -- monitor`,
 * 2026-12-02); `--object-turns` turns them on for hosts where cache misses make a full compare dear.
 */
export const DEFAULT_OPTIMIZATIONS: Optimizations = { ...ALL_OPTIMIZATIONS, pageLevel: false, objectTurns: false };

/** Milliseconds between ticks by default: 500 looks a second keep an idle monitor near 5–10 % of a core here. */
export const DEFAULT_INTERVAL_MS = 2;

/** Turns events into more events (policy alerts); called for every event, in order. */
export type EventHook = (event: MonitorEvent) => readonly EventDraft[];

export interface MonitorOptions {
  readonly watches?: readonly WatchName[];
  /** Extra watches written against the watch API (src/monitor/watcher.ts). */
  readonly customWatches?: readonly Watch[];
  /** Milliseconds between ticks (default DEFAULT_INTERVAL_MS). */
  readonly intervalMs?: number;
  /** Stop after this many milliseconds. */
  readonly durationMs?: number;
  readonly optimizations?: Partial<Optimizations>;
  readonly sinks: readonly EventSink[];
  readonly hooks?: readonly EventHook[];
  readonly lifecycle?: GuestLifecycle;
  /** Largest share of one core the monitor may use under an event storm (default 0.5). */
  readonly cpuBudget?: number;
  readonly filePids?: readonly number[];
  readonly signal?: AbortSignal;
  /** How long to wait for a rebooted guest's kernel to come up (default 180 s). */
  readonly rebootTimeoutMs?: number;
  /**
   * After a sweep, look again at once for what changed during it (default true; false: at the next tick, as
   * before — for the benchmark's comparison).
   */
  readonly lookAfterSweep?: boolean;
  /** Called once the watches are initialised (tests and benchmarks start acting then). */
  readonly onReady?: () => void;
}

export type StopReason = 'duration' | 'signal' | 'qemu-exited' | 'reboot-timeout' | 'error';

export interface MonitorStats {
  ticks: number;
  idleTicks: number;
  changedTicks: number;
  passes: number;
  events: number;
  dropped: number;
  detectUs: number;
  updateUs: number;
  pagesChanged: number;
  falseSharing: number;
  sweeps: number;
  reboots: number;
  errors: number;
  /** Heartbeats run (every HEARTBEAT_MS without a QMP event source, busy or idle). */
  heartbeats: number;
  /** Sleeps stretched to keep within the CPU budget. */
  budgetStretches: number;
  /** QMP STOP/RESUME events that were a guest-halting source's own pauses (not reported as the guest's). */
  ownPauseEvents: number;
  watchedPages: number;
  watchedObjects: number;
}

export interface MonitorResult {
  readonly reason: StopReason;
  readonly detail?: string;
  readonly stats: MonitorStats;
  readonly watchStats: Record<string, Record<string, number>>;
  readonly watchTimings: Record<string, WatchTiming>;
  readonly lastSeq: number;
  readonly kernel: Kernel;
}

const NO_KEYS: ReadonlySet<string> = new Set();

/**
 * The monitor's passes read the guest directly, not through a source's pass blocks: a watch takes an
 * object's shadow right after reading it, and a block fetched earlier in the pass would make the read
 * older than the shadow (a change in between would never wake a tick).
 */
const NO_BLOCKS = { blocks: false } as const;

/**
 * Objects' ranges compared per tick with `--object-turns` (the global ones — list heads, counters, tables —
 * every tick). Measured on the loaded 2-core machine: once the watched bytes have left the caches between
 * ticks, a range cost ~370 ns (a cache and a TLB miss: each task is on its own pages), so the ~240 ranges of
 * the lab guest's 56 tasks took ~90 µs a tick; in turns of 64 a tick stayed near 25 µs, each task's fields
 * looked at every 4th tick (8 ms at the default interval). Starts and exits move the global counters, so
 * they are seen at the next tick regardless. On a quiet host the full compare costs ~23 µs: off by default.
 */
export const OBJECT_SLICE = 64;

/** How often a monitor without QMP checks that the kernel it watches still runs. */
const HEARTBEAT_MS = 2000;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * The loop's sleep: one Timeout object re-armed with refresh() and one resolver, instead of a new timer and
 * closure per tick (what a setTimeout+promise per tick allocates is most of an idle tick's garbage).
 */
class TickTimer {
  private wake: (() => void) | undefined;
  private readonly fire = (): void => {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  };
  private timer: NodeJS.Timeout | undefined;
  private armedMs = -1;
  private readonly park = (r: () => void): void => {
    this.wake = r;
  };

  sleep(ms: number): Promise<void> {
    const p = new Promise<void>(this.park);
    const whole = Math.max(1, Math.round(ms));
    if (this.timer && this.armedMs === whole) this.timer.refresh();
    else {
      if (this.timer) clearTimeout(this.timer);
      this.timer = setTimeout(this.fire, whole);
      this.armedMs = whole;
    }
    return p;
  }

  /** Drops the timer (the loop ended). */
  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.fire();
  }
}


/**
 * Periodic sweeps (a plugin pass re-reading what no sentinel covers: a backstop) take at most this share of
 * wall time together: a sweep that took `c` ms runs again after max(its period, c / share-per-watch). A
 * process that starts during a sweep waits for it to end, so their share is the share of starts delayed by
 * a sweep (measured: sweeps of 10–40 ms every 0.5–2 s on the loaded machine delayed ~8 % of starts past
 * 20 ms). Sweeps under SWEEP_CHEAP_MS keep their period, and so do periods under SWEEP_BACKSTOP_MS (retries
 * of work in progress: a row held back until complete every 5 ms, an exec settling).
 */
const SWEEP_SHARE = 0.01;
const SWEEP_CHEAP_MS = 1;
const SWEEP_BACKSTOP_MS = 100;

/** Per-watch cost, for the benchmark's breakdown: counts, total and largest µs of updates and sweeps. */
export interface WatchTiming {
  updates: number;
  updateUs: number;
  updateMaxUs: number;
  sweeps: number;
  sweepUs: number;
  sweepMaxUs: number;
}

/** What the tick that is delivering events looked like, readable by a sink at write time (the benchmark's latency breakdown). */
export interface TickInfo {
  /** monotonicMs() at the start of this tick, and of the one before. */
  startedMs: number;
  previousStartedMs: number;
  /** How long the previous tick worked, and the sleep asked after it, ms. */
  previousBusyMs: number;
  previousSleepMs: number;
  /** Watches the previous tick swept (a periodic re-read: a plugin pass). */
  previousSweeps: string;
  /** The watch this tick swept before the look that is delivering events ('' when none). */
  sweptBefore: string;
}

export class Monitor {
  private kernel: AttachedKernel;
  private readonly opts: Optimizations;
  private readonly stamper = new EventStamper();
  private readonly intervalMs: number;
  private watches: Watch[] = [];
  private view!: GuestView;
  private watchSet!: WatchSet;
  private lastTick = Date.now();
  private paused = false;
  private stopRequested: StopReason | undefined;
  private readonly lastSweep = new Map<string, number>();
  /** Recent cost of each watch's sweep, ms (sets how often it may run: SWEEP_SHARE). */
  private readonly sweepCost = new Map<string, number>();
  /** Watches that sweep (the share is split among them). */
  private sweepers = 1;
  private bannerShadow: Buffer | undefined;
  private readonly beat: { at: number; jiffies: bigint | undefined; still: number } = { at: 0, jiffies: undefined, still: 0 };
  private readonly sinks: SinkSet;
  private backPressure = false;
  private readonly timer = new TickTimer();
  private sweptNow = '';
  readonly timings = new Map<string, WatchTiming>();
  readonly tickInfo: TickInfo = { startedMs: 0, previousStartedMs: 0, previousBusyMs: 0, previousSleepMs: 0, previousSweeps: '', sweptBefore: '' };
  readonly stats: MonitorStats = {
    ticks: 0,
    idleTicks: 0,
    changedTicks: 0,
    passes: 0,
    events: 0,
    dropped: 0,
    detectUs: 0,
    updateUs: 0,
    pagesChanged: 0,
    falseSharing: 0,
    sweeps: 0,
    reboots: 0,
    errors: 0,
    heartbeats: 0,
    budgetStretches: 0,
    ownPauseEvents: 0,
    watchedPages: 0,
    watchedObjects: 0,
  };

  constructor(
    kernel: AttachedKernel,
    private readonly options: MonitorOptions,
  ) {
    this.kernel = kernel;
    this.opts = { ...DEFAULT_OPTIMIZATIONS, ...options.optimizations };
    this.intervalMs = Math.max(0, options.intervalMs ?? DEFAULT_INTERVAL_MS);
    this.sinks = new SinkSet(options.sinks);
  }

  /** The watch set (for benchmarks and tests: its shape, a detect in a tight loop). */
  get watched(): WatchSet | undefined {
    return this.watchSet;
  }

  /** The kernel being watched (a new one after a guest reboot). */
  get current(): AttachedKernel {
    return this.kernel;
  }

  /** Asks the loop to stop after the current tick. */
  stop(reason: StopReason = 'signal'): void {
    this.stopRequested ??= reason;
  }

  async run(): Promise<MonitorResult> {
    const started = monotonicMs();
    const onAbort = () => this.stop('signal');
    this.options.signal?.addEventListener('abort', onAbort);
    let reason: StopReason = 'signal';
    let detail: string | undefined;
    try {
      await this.initWatches();
      this.emit(
        {
          type: 'monitor-started',
          watch: 'monitor',
          data: {
            technique: this.kernel.memory.technique.name,
            class: this.kernel.memory.technique.class,
            release: this.kernel.profile.release,
            watches: this.watches.map((w) => w.name),
            intervalMs: this.intervalMs,
            optimizations: { ...this.opts },
            watchedPages: this.watchSet.pageCount,
            lifecycle: this.options.lifecycle?.qmpSocket ?? `none (${this.options.lifecycle?.qmpUnavailable ?? 'not asked'})`,
          },
        },
        { from: this.lastTick, to: this.lastTick },
      );
      await this.endHalt();
      this.options.onReady?.();
      const budget = new CpuBudget(Math.min(Math.max(this.options.cpuBudget ?? 0.5, 0.01), 1));
      for (;;) {
        if (this.stopRequested) break;
        if (this.options.durationMs !== undefined && monotonicMs() - started >= this.options.durationMs) {
          this.stop('duration');
          break;
        }
        const signals = this.options.lifecycle?.take();
        const outcome = signals?.length ? await this.handleSignals(signals) : undefined;
        if (outcome) {
          reason = outcome.reason;
          detail = outcome.detail;
          this.stopRequested = outcome.reason;
          break;
        }
        if (this.paused) {
          if (this.opts.qmpWake && this.options.lifecycle?.qmpSocket) await this.options.lifecycle.wait(200);
          else await sleep(Math.max(this.intervalMs, 10));
          continue;
        }
        const t0 = monotonicMs();
        const info = this.tickInfo;
        info.previousStartedMs = info.startedMs;
        info.startedMs = t0;
        this.sweptNow = '';
        info.sweptBefore = '';
        const work = this.tick(t0);
        if (work) await work;
        if (this.kernel.memory instanceof HaltingMemory) await this.endHalt();
        // By the clock, busy or idle: a storm cannot starve it.
        if (!this.options.lifecycle?.qmpSocket && monotonicMs() - this.beat.at >= HEARTBEAT_MS) await this.heartbeat();
        const busy = monotonicMs() - t0;
        // Under an event storm the ticks and the sinks' work can take more than the budget: sleep longer.
        const rest = budget.rest(this.intervalMs);
        this.stats.budgetStretches = budget.stretched;
        info.previousBusyMs = busy;
        info.previousSleepMs = rest;
        info.previousSweeps = this.sweptNow;
        if (this.backPressure || this.sinks.hasDrops()) await this.afterTick();
        await this.timer.sleep(rest);
      }
      reason = this.stopRequested ?? reason;
    } catch (e) {
      if (await this.qemuGone()) {
        reason = 'qemu-exited';
        detail = 'QEMU exited';
      } else {
        reason = 'error';
        detail = describeError(e).line;
        this.stats.errors++;
      }
    } finally {
      this.timer.close();
      this.options.signal?.removeEventListener('abort', onAbort);
    }
    const watchStats: Record<string, Record<string, number>> = {};
    for (const w of this.watches) watchStats[w.name] = w.stats?.() ?? {};
    this.stats.ownPauseEvents = this.options.lifecycle?.ownEvents ?? 0;
    this.stats.watchedPages = this.watchSet?.pageCount ?? 0;
    this.stats.watchedObjects = this.watchSet?.objectCount ?? 0;
    this.emit(
      { type: 'monitor-stopped', watch: 'monitor', data: { reason, ...(detail ? { detail } : {}), ...numbers(this.stats) } },
      { from: this.lastTick, to: Date.now() },
    );
    const watchTimings = Object.fromEntries(this.timings);
    return { reason, ...(detail ? { detail } : {}), stats: this.stats, watchStats, watchTimings, lastSeq: this.stamper.lastSeq, kernel: this.kernel };
  }

  // ------------------------------------------------------------------ ticks

  private async initWatches(): Promise<void> {
    this.view = new GuestView(this.kernel);
    this.watchSet = new WatchSet(this.view);
    this.watches = [...buildWatches(this.options.watches ?? DEFAULT_WATCHES, { ...(this.options.filePids ? { filePids: this.options.filePids } : {}) }), ...(this.options.customWatches ?? [])];
    this.sweepers = Math.max(1, this.watches.filter((w) => w.sweep !== undefined).length);
    const pass = await this.kernel.pass(NO_BLOCKS);
    const ctx = this.context(pass, { from: pass.startedAt, to: pass.startedAt });
    for (const w of this.watches) {
      w.init(ctx);
      this.lastSweep.set(w.name, monotonicMs());
    }
    pass.end();
    this.bannerShadow = this.readBanner();
    this.lastTick = pass.startedAt;
  }

  /**
   * One look. An idle tick (nothing changed, nothing due) is synchronous and allocates nothing: it returns
   * undefined; a tick with work returns its promise.
   */
  private tick(t0: number): Promise<void> | undefined {
    this.stats.ticks++;
    if (!this.opts.reuse) return this.fullPass(Date.now());
    // A live source needs no refresh to be compared: the watch set reads it directly. A snapshot or a
    // halting source shows the guest only after one (a new snapshot, a new pause).
    const tech = this.kernel.memory.technique;
    const perTick = !tech.live || tech.haltsGuest;
    if (perTick) return this.refreshedTick(t0);
    return this.look(t0, false);
  }

  private async refreshedTick(t0: number): Promise<void> {
    await this.kernel.memory.refresh?.();
    await this.look(t0, true);
  }

  private look(t0: number, perTick: boolean): Promise<void> | undefined {
    const det = this.watchSet.detect({ pageLevel: this.opts.pageLevel, fieldFilter: this.opts.fieldFilter, objectSlice: this.opts.objectTurns ? OBJECT_SLICE : Infinity });
    this.stats.pagesChanged += det.pagesChanged;
    this.stats.falseSharing += det.falseSharing;
    let due = false;
    for (const w of this.watches) if (this.isDue(w, t0)) due = true;
    this.stats.detectUs += (monotonicMs() - t0) * 1000;
    if (!det.structural.size && !det.dirty.size && !due) {
      this.stats.idleTicks++;
      this.lastTick = Date.now();
      return undefined;
    }
    return this.changed(det, t0, perTick);
  }

  private isDue(w: Watch, now: number): boolean {
    let every = w.sweepMs;
    if (every === undefined || w.sweep === undefined) return false;
    const cost = this.sweepCost.get(w.name) ?? 0;
    // Only the periodic backstops are capped: a short period is a watch waiting on work in progress (a row
    // held back until complete, an exec settling) and must come back soon.
    if (cost >= SWEEP_CHEAP_MS && every >= SWEEP_BACKSTOP_MS) every = Math.max(every, cost / (SWEEP_SHARE / this.sweepers));
    return now - (this.lastSweep.get(w.name) ?? 0) >= every;
  }



  private async changed(det: Detection, t0: number, perTick: boolean): Promise<void> {
    const now = Date.now();
    if (!this.bannerUnchanged()) {
      await this.reboot('the kernel banner changed');
      return;
    }
    this.stats.changedTicks++;
    const t1 = monotonicMs();
    const pass = perTick ? this.kernel.startPass(NO_BLOCKS) : await this.kernel.pass(NO_BLOCKS);
    this.stats.passes++;
    const ctx = this.context(pass, { from: this.lastTick, to: now });
    // Changed objects first, every watch; then at most one periodic sweep per tick (a sweep is a plugin
    // pass, milliseconds): what changed is never queued behind a sweep, and sweeps do not pile up in one tick.
    const sweep = this.updateChanged(ctx, det, t0, true);
    if (sweep) {
      this.stats.sweeps++;
      this.sweptNow = sweep.name;
      const u0 = monotonicMs();
      try {
        sweep.sweep!(ctx);
      } catch (e) {
        this.watchFailed(ctx, sweep, e);
      }
      this.timed(sweep.name, true, u0);
      const done = monotonicMs();
      // The cost that sets the next period: the mean of the last and the ones before, so one slow sweep (a GC) does not stretch it for long.
      this.sweepCost.set(sweep.name, ((this.sweepCost.get(sweep.name) ?? done - u0) + (done - u0)) / 2);
      this.lastSweep.set(sweep.name, done);
      // A sweep takes milliseconds: what changed meanwhile is looked for now, not after the sleep that
      // follows (a live source only: a snapshot or a halting source shows nothing new within the tick).
      if (!perTick && this.options.lookAfterSweep !== false) {
        const again = this.watchSet.detect({ pageLevel: this.opts.pageLevel, fieldFilter: this.opts.fieldFilter, objectSlice: this.opts.objectTurns ? OBJECT_SLICE : Infinity });
        this.stats.pagesChanged += again.pagesChanged;
        this.stats.falseSharing += again.falseSharing;
        if (again.structural.size || again.dirty.size) {
          const later = Date.now();
          this.tickInfo.sweptBefore = sweep.name;
          const ctx2 = this.context(pass, { from: now, to: later });
          this.updateChanged(ctx2, again, t0, false);
          this.anomalyEvent(pass, ctx);
          pass.end();
          this.stats.updateUs += (monotonicMs() - t1) * 1000;
          this.lastTick = later;
          return;
        }
      }
    }
    this.anomalyEvent(pass, ctx);
    pass.end();
    this.stats.updateUs += (monotonicMs() - t1) * 1000;
    this.lastTick = now;
  }

  /**
   * Updates the watches whose ranges changed; returns the first watch whose sweep is due among the others
   * (when `sweeps`), for the caller to run: changed objects are never queued behind a sweep.
   */
  private updateChanged(ctx: WatchContext, det: Detection, t0: number, sweeps: boolean): Watch | undefined {
    let sweep: Watch | undefined;
    for (const w of this.watches) {
      const structural = det.structural.has(w.name);
      const dirty = det.dirty.get(w.name);
      if (structural || dirty) {
        const u0 = monotonicMs();
        try {
          w.update(ctx, { structural, dirty: dirty ?? NO_KEYS });
        } catch (e) {
          this.watchFailed(ctx, w, e);
        }
        this.timed(w.name, false, u0);
        if (this.isDue(w, t0)) this.lastSweep.set(w.name, monotonicMs()); // an update re-read it
      } else if (sweeps && !sweep && this.isDue(w, t0)) sweep = w;
    }
    return sweep;
  }

  private timed(watch: string, sweep: boolean, from: number): void {
    const us = (monotonicMs() - from) * 1000;
    let t = this.timings.get(watch);
    if (!t) this.timings.set(watch, (t = { updates: 0, updateUs: 0, updateMaxUs: 0, sweeps: 0, sweepUs: 0, sweepMaxUs: 0 }));
    if (sweep) {
      t.sweeps++;
      t.sweepUs += us;
      t.sweepMaxUs = Math.max(t.sweepMaxUs, us);
    } else {
      t.updates++;
      t.updateUs += us;
      t.updateMaxUs = Math.max(t.updateMaxUs, us);
    }
  }

  /** --no-reuse: every tick is a fresh pass that re-walks every watch with nothing kept. */
  private async fullPass(now: number): Promise<void> {
    const pass = await this.kernel.pass({ reuse: false, blocks: false });
    this.stats.passes++;
    this.watchSet.clear();
    const ctx = this.context(pass, { from: this.lastTick, to: now });
    const t1 = monotonicMs();
    for (const w of this.watches) {
      try {
        w.update(ctx, { structural: true, dirty: new Set() });
      } catch (e) {
        this.watchFailed(ctx, w, e);
      }
    }
    pass.end();
    this.stats.updateUs += (monotonicMs() - t1) * 1000;
    this.lastTick = now;
  }

  private context(pass: Pass, window: MonitorEvent['window']): WatchContext {
    return {
      kernel: this.kernel,
      view: this.view,
      watchSet: this.watchSet,
      pass,
      anomalies: pass.anomalies,
      window,
      incremental: this.opts.incremental,
      emit: (d) => this.emit(d, window),
    };
  }

  private watchFailed(ctx: WatchContext, w: Watch, e: unknown): void {
    this.stats.errors++;
    ctx.emit({ type: 'anomaly', watch: w.name, data: { what: 'watch update failed; retried next change', error: describeError(e).line } });
  }

  /** One anomaly event per pass that met anomalies (torn reads, corrupt structures), with counts by kind. */
  private anomalyEvent(pass: Pass, ctx: WatchContext): void {
    const counts = pass.anomalies.counts;
    const total = Object.values(counts).reduce((a, b) => a + (b ?? 0), 0);
    if (!total) return;
    ctx.emit({ type: 'anomaly', watch: 'monitor', data: { what: 'anomalies met in this pass', total, counts: { ...counts } as Record<string, number> } });
  }

  // ------------------------------------------------------------------ events

  private emit(draft: EventDraft, window: MonitorEvent['window']): void {
    const e = this.stamper.stamp(draft, window);
    this.deliver(e);
    for (const hook of this.options.hooks ?? []) for (const more of hook(e)) this.deliver(this.stamper.stamp(more, window));
  }

  private deliver(e: MonitorEvent): void {
    this.stats.events++;
    if (!this.sinks.write(e)) this.backPressure = true;
  }

  /** Back-pressure from a slow sink, and the drops of sinks that could not take an event, as events. */
  private async afterTick(): Promise<void> {
    if (this.backPressure) {
      this.backPressure = false;
      await this.sinks.drain();
    }
    const drops = this.sinks.dropReport();
    if (!drops.length) return;
    const now = Date.now();
    for (const d of drops) {
      this.stats.dropped += d.count;
      this.emit({ type: 'dropped', watch: 'monitor', severity: 'medium', data: { sink: d.sink, count: d.count } }, { from: this.lastTick, to: now });
    }
  }

  /** Flushes and closes every sink (once); the failures, one line each. */
  async closeSinks(): Promise<string[]> {
    const failures = await this.sinks.close();
    return failures.map((f) => `${f.sink}: ${f.error.message}`);
  }

  // ------------------------------------------------------------------ lifecycle

  private async handleSignals(signals: readonly LifecycleSignal[]): Promise<{ reason: StopReason; detail: string } | undefined> {
    const window = { from: this.lastTick, to: Date.now() };
    for (const s of signals) {
      switch (s) {
        case 'paused':
          if (!this.paused) this.emit({ type: 'guest-paused', watch: 'monitor' }, window);
          this.paused = true;
          break;
        case 'resumed':
          if (this.paused) this.emit({ type: 'guest-resumed', watch: 'monitor' }, window);
          this.paused = false;
          break;
        case 'reset':
          // QEMU may report more than one RESET for one reboot: one that comes when the vCPUs already run
          // the kernel we attached to is no new boot.
          if ((await this.vcpusRunCurrent()) !== true) await this.reboot('QEMU reported a guest reset');
          break;
        case 'panicked':
          this.emit({ type: 'anomaly', watch: 'monitor', severity: 'critical', data: { what: 'the guest kernel panicked (QMP GUEST_PANICKED)' } }, window);
          break;
        case 'shutdown':
        case 'gone':
          if (!this.options.lifecycle?.qemuAlive() || s === 'gone') return { reason: 'qemu-exited', detail: 'QEMU exited' };
          break;
      }
    }
    return undefined;
  }

  /**
   * Without QMP no RESET event says the guest rebooted, and the old kernel's memory may survive untouched:
   * when jiffies stop moving for two heartbeats, try once to attach a new kernel (one that differs).
   */
  private async heartbeat(): Promise<void> {
    if (this.options.lifecycle?.qmpSocket) return;
    const t = monotonicMs();
    if (t - this.beat.at < HEARTBEAT_MS) return;
    this.beat.at = t;
    this.stats.heartbeats++;
    const va = this.kernel.hasSymbol('jiffies_64') ? this.kernel.symbol('jiffies_64') : this.kernel.hasSymbol('jiffies') ? this.kernel.symbol('jiffies') : undefined;
    const now = va === undefined ? undefined : this.view.u64(va);
    if (now === undefined || now !== this.beat.jiffies) {
      this.beat.jiffies = now;
      this.beat.still = 0;
      return;
    }
    if (++this.beat.still < 2) return;
    this.beat.still = 0;
    await this.reboot('the kernel stopped counting jiffies', true);
  }

  /** Do the vCPUs run the attached kernel (CR3 is its DTB, or a PGD sharing its kernel half)? */
  private async vcpusRunCurrent(): Promise<boolean | undefined> {
    let cpus;
    try {
      cpus = (await this.kernel.memory.hints?.())?.cpus;
    } catch {
      return undefined;
    }
    const tables = new TableReader(this.kernel.memory);
    const checks = (cpus ?? []).map((c) => checkCr3(tables, this.kernel.space.dtb, c)).filter((c) => c !== undefined);
    return checks.length ? checks.some((c) => c.agrees) : undefined;
  }

  /** A halting source pauses the guest for a pass: resume it once the tick is done, not at the next one. */
  private async endHalt(): Promise<void> {
    const mem = this.kernel.memory;
    if (mem instanceof HaltingMemory && mem.passOpen) await mem.end();
  }

  /** True when QEMU is gone (a failing source is then the exit, not an error); waits up to 1 s for it. */
  private async qemuGone(): Promise<boolean> {
    const life = this.options.lifecycle;
    if (!life) return false;
    for (let i = 0; i < 10; i++) {
      if (!life.qemuAlive() || life.take().includes('gone')) return true;
      await sleep(100);
    }
    return false;
  }

  private forks(k: Kernel): number {
    try {
      return Number(k.space.readU64(k.symbol('total_forks')));
    } catch {
      return Number.MAX_SAFE_INTEGER;
    }
  }

  private readBanner(): Buffer | undefined {
    try {
      const va = this.kernel.symbol('linux_banner');
      const pa = this.view.pa(va);
      const b = pa === undefined ? undefined : this.view.bytes(pa, 64);
      return b ? Buffer.from(b) : undefined;
    } catch {
      return undefined;
    }
  }

  private bannerUnchanged(): boolean {
    if (!this.bannerShadow) return true;
    const now = this.readBanner();
    return now !== undefined && now.equals(this.bannerShadow);
  }

  /**
   * The guest rebooted (a reset, or the banner we attached to is gone): wait until a kernel can be
   * attached again on the same memory source, then start over with a guest-rebooted event.
   */
  private async reboot(why: string, once = false): Promise<void> {
    const memory = this.kernel.memory;
    const deadline = monotonicMs() + (this.options.rebootTimeoutMs ?? 180_000);
    const before = { release: this.kernel.profile.release, kaslr: this.kernel.profile.kaslr.virtualShift, forks: this.forks(this.kernel) };
    let lastError = '';
    for (let attempt = 0; monotonicMs() < deadline && !this.stopRequested && !(once && attempt > 0); attempt++) {
      if (!once) await sleep(500);
      if (this.options.lifecycle && !this.options.lifecycle.qemuAlive()) {
        this.stop('qemu-exited');
        return;
      }
      try {
        await memory.refresh?.();
        // attachKernel owns (and on failure closes) the memory it is given: lend it a view whose close
        // does nothing, and hand the real one to the kernel that succeeds.
        const attached = await attachKernel(borrowed(memory), { cache: false, requireRunningKernel: true });
        const k = new AttachedKernel(memory, attached.report.kernelSpace, attached.profile, attached.report);
        // Anything we read while the old kernel was still there is no new boot: a new boot has a new KASLR
        // shift, another banner, or (KASLR off, same kernel) a fork counter that started again from zero.
        const differs = k.profile.kaslr.virtualShift !== before.kaslr || k.profile.banner !== this.kernel.profile.banner || this.forks(k) < before.forks;
        // (requireRunningKernel: the old kernel's memory survives a reset until overwritten, and only the
        // kernel the vCPUs run is attached.)
        // Too early in the new boot there is no confirmed vmcoreinfo (release unknown) or the direct map
        // is not randomized yet: wait for a kernel with its first process (pid 1) on the task list.
        const fresh = differs && k.profile.release !== 'unknown' && kernelUp(k);
        if (!fresh) continue;
        const old = this.kernel;
        this.kernel = k;
        try {
          // Early in the new boot some structures are not there yet (no init task, no TCP tables): retry.
          await this.initWatches();
        } catch (e) {
          this.kernel = old;
          throw e;
        }
        this.stats.reboots++;
        this.emit(
          {
            type: 'guest-rebooted',
            watch: 'monitor',
            severity: 'medium',
            data: { why, release: k.profile.release, kaslrShift: `0x${k.profile.kaslr.virtualShift.toString(16)}`, previousRelease: before.release },
          },
          { from: this.lastTick, to: Date.now() },
        );
        return;
      } catch (e) {
        lastError = describeError(e).line; // the new kernel is not up yet
      }
    }
    if (!this.stopRequested && !once) {
      this.stop('reboot-timeout');
      this.emit({ type: 'anomaly', watch: 'monitor', data: { what: 'the rebooted guest did not come up in time', lastError } }, { from: this.lastTick, to: Date.now() });
    }
  }
}

/** The kernel has its init process (pid 1) on a task list that walks cleanly. */
function kernelUp(k: Kernel): boolean {
  try {
    const scan = new TaskScanner(k, new GuestView(k)).scan(new AnomalySink(), false);
    return scan.complete && scan.tasks.some((t) => t.pid === 1);
  } catch {
    return false;
  }
}

/** The same source, except that close() leaves it open (for an attach that may fail and close what it was given). */
function borrowed(memory: PhysicalMemory): PhysicalMemory {
  return new Proxy(memory, {
    get(target, prop) {
      if (prop === 'close') return async () => undefined;
      const v: unknown = Reflect.get(target, prop, target);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

function numbers(s: MonitorStats): Record<string, number> {
  return Object.fromEntries(Object.entries(s).map(([k, v]) => [k, Math.round(v * 1000) / 1000]));
}
