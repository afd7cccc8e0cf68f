/**
 * A pass: the unit of live introspection. A live guest changes between two
 * looks, so everything cached above the memory layer belongs to a pass:
 * starting one refreshes the source (Kernel.pass) and opens a new epoch in
 * which every cached page-table translation is re-checked against guest
 * memory on first use; process address spaces are cached per pass (by pgd);
 * the anomalies of every plugin run are collected for the whole pass.
 *
 * With `validate`, each run records the guest-physical pages it read (a copy
 * taken just before the first read of each page) and re-reads at the end the
 * 8-byte words it used (the fields it decoded of whole-object reads, every
 * byte of other reads): when a link among them changed under the run (a
 * pointer it followed, a list node, a page-table entry), it is retried in a
 * fresh epoch, up to `retries` times — a consistent view without pausing the
 * guest, whenever the guest lets one be taken. A changed value (a task's
 * state, a counter) leaves the row with what the field held when read, as a
 * paused guest's rows hold what it held at the pause; it is counted
 * (`changedValues`), and retried too with `strict` (linux/page-recorder.ts).
 *
 * A validated run is kept for the next passes (unless `reuse` is false):
 * when every word it read, link or value, still holds what it read, running
 * it again would read the same words and give the same rows, so the next
 * pass hands those over after one compare of the watched pages instead of
 * running the plugin (`reused`). A module list or socket table that did not
 * change costs a compare, not a walk.
 *
 * @example
 * const pass = await kernel.pass({ validate: true });
 * const { rows } = pass.run(pslist);
 * const summary = pass.end();   // anomalies per plugin, elapsed, validation
 */
import type { AddressSpace } from '../arch/address-space.js';
import { PhysReader } from '../arch/phys-reader.js';
import type { TableReader } from '../arch/x86-64/paging.js';
import type { PhysicalMemory } from '../memory/types.js';
import { AnomalySink, type Anomaly, type AnomalyKind } from './anomaly.js';
import { MAX_WATCHED_PAGES, PageRecorder } from './page-recorder.js';
import { MAX_KEPT_PAGES, MAX_USER_SPACES, PassCaches } from './pass-caches.js';
import type { Kernel } from './kernel.js';
import type { Plugin, PluginOptions, PluginResult } from './plugin.js';
import { checkOptionValues, type OptionDecls } from './schema.js';
import { checkRequirements } from './requirements.js';
import { monotonicMs } from '../core/clock.js';

export interface PassOptions {
  /** Reuse translations and caches from earlier passes, validated runs among them (default true). false: a pass that reuses nothing (and keeps no validated run). */
  readonly reuse?: boolean;
  /**
   * Optimistic validation: re-read what each run read and retry the run when a link it followed changed
   * (default retries 2); `strict` retries it when any decoded value changed too; `reuseRuns: false` runs every
   * plugin even when an earlier pass's validated run of it read nothing that changed since (what validation
   * itself costs).
   */
  readonly validate?: boolean | { readonly retries?: number; readonly strict?: boolean; readonly reuseRuns?: boolean };
  /**
   * Keep the blocks a source asks to be read in for the pass (live read: 16 KiB at a time, each read once a
   * pass; default true). The monitor turns it off: it takes a watched object's shadow from the guest right
   * after reading the object, and a block fetched earlier in the pass would make the read older than the
   * shadow, hiding a change made in between.
   */
  readonly blocks?: boolean;
}

/** What validation found for one plugin run. */
export interface RunValidation {
  /** Times the plugin ran (1 + retries; 0 when reused). */
  readonly attempts: number;
  /** The rows are an earlier pass's validated run's: every word it read was found unchanged, so the plugin did not run. */
  readonly reused?: boolean;
  readonly retries: number;
  /** Ranges (what a run read of one 4 KiB page, in 8-byte words) whose links were found changed at the end of an attempt, summed over attempts. */
  readonly changedRanges: number;
  /** Ranges of the last attempt where only values changed (never in a strict pass): the rows hold them as read. */
  readonly changedValues: number;
  /** Guest-physical address of the first changed word of each changed page, over the attempts (at most 32 per attempt): what the guest was updating. */
  readonly changedAt?: readonly number[];
  /** Pages the last attempt read. */
  readonly watchedPages: number;
  /** True when the last attempt's pages were unchanged at its end: its rows are one consistent state. */
  readonly validated: boolean;
  /** Why validation could not conclude, when it could not. */
  readonly reason?: string;
}

export interface PassResult<R extends object = Record<string, unknown>> extends PluginResult<R> {
  /** Present when the pass validates. */
  readonly validation?: RunValidation;
}

/** A run whose rows are handed over as they come (Pass.stream). */
export interface StreamedRun<R extends object> {
  /** The rows, once. */
  readonly rows: Iterable<R>;
  /** After the rows are consumed: what run() would return, without the rows kept. */
  done(): PassResult<R> & { readonly rowCount: number };
}

export interface PassRunSummary {
  readonly plugin: string;
  readonly rows: number;
  readonly anomalies: number;
  readonly anomalyCounts: Partial<Record<AnomalyKind, number>>;
  readonly elapsedMs: number;
  readonly validation?: RunValidation;
}

export interface PassSummary {
  readonly generation: number;
  readonly startedAt: number;
  readonly elapsedMs: number;
  readonly reuse: boolean;
  /** Every anomaly of the pass, by kind, and their total. */
  readonly anomalyCounts: Partial<Record<AnomalyKind, number>>;
  readonly anomalies: number;
  /** Back-links that disagreed at first and agreed on a re-read (AnomalySink.settled): torn reads healed, not anomalies. */
  readonly settled: number;
  readonly runs: readonly PassRunSummary[];
  /** Process address spaces the pass used. */
  readonly userSpaces: number;
  /** Totals over the runs, when the pass validates. */
  readonly validation?: {
    readonly runs: number;
    readonly retries: number;
    readonly changedRanges: number;
    readonly changedValues: number;
    /** Runs whose rows an earlier pass's validated run gave (RunValidation.reused). */
    readonly reused: number;
    /** True when every run validated. */
    readonly validated: boolean;
  };
}

export interface Pass {
  readonly kernel: Kernel;
  /** The source generation this pass reads. */
  readonly generation: number;
  /** Date.now() at the start. */
  readonly startedAt: number;
  /** Everything read in this pass. */
  readonly anomalies: AnomalySink;
  /** Checks the plugin's requirements (ProfileError naming the first missing one), runs it. */
  run<R extends object, O extends OptionDecls>(plugin: Plugin<R, O>, options?: PluginOptions): PassResult<R>;
  /**
   * Like run, but hands the rows over as the plugin yields them and keeps none (a listing of 100k rows is
   * written as it comes): iterate `rows` once, then `done()` gives the run's anomalies and time (its `rows`
   * empty, `rowCount` the number handed over). A validating pass cannot stream (a retry would repeat rows
   * already handed over): it runs the plugin first, then hands over the rows it kept.
   */
  stream<R extends object, O extends OptionDecls>(plugin: Plugin<R, O>, options?: PluginOptions): StreamedRun<R>;
  /** A process address space, cached for this pass (by pgd). FaultError when the pgd is not mapped. */
  userSpace(pgd: bigint, name?: string): AddressSpace;
  /** Anomaly counts of everything read, per plugin too; elapsed; validation. */
  end(): PassSummary;
}

const DEFAULT_RETRIES = 2;

/** The page-table reader behind the kernel space, when it is a real one (synthetic test kernels have none). */
export function tablesOf(kernel: Kernel): TableReader | undefined {
  return (kernel.space as { translator?: { tables?: TableReader } }).translator?.tables;
}

/** The source under any page cache (validation must see guest memory, not cached copies). */
function uncached(mem: PhysicalMemory): PhysicalMemory {
  let m = mem;
  for (let guard = 0; guard < 8 && 'inner' in m && typeof (m as { flush?: unknown }).flush === 'function'; guard++) m = (m as unknown as { inner: PhysicalMemory }).inner;
  return m;
}

/** What one run of a plugin gave. */
interface Run<R> {
  readonly rows: R[];
  readonly sink: AnomalySink;
}

/** Option values as a key: a kept run is reused only under the same values. */
function optionsKey(values: unknown): string {
  return JSON.stringify(values, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v));
}

function mergeAnomalies(into: AnomalySink, from: AnomalySink): void {
  for (const [k, n] of Object.entries(from.counts) as [AnomalyKind, number][]) into.counts[k] = (into.counts[k] ?? 0) + n;
  const room = Math.max(0, 1000 - into.items.length);
  into.items.push(...from.items.slice(0, room));
  into.dropped += from.dropped + Math.max(0, from.items.length - room);
  into.settled += from.settled;
}

/** A pass over `kernel`, started now on the source's current generation (Kernel.pass refreshes first). */
export class KernelPass implements Pass {
  readonly generation: number;
  readonly startedAt = Date.now();
  readonly anomalies = new AnomalySink();
  private readonly t0 = monotonicMs();
  private readonly runs: PassRunSummary[] = [];
  private readonly used = new Set<bigint>();
  private readonly retries: number | undefined;
  /** Validation retries a run for a changed value too, not only for a changed link. */
  private readonly strict: boolean;
  private readonly reuse: boolean;
  /** Validated runs are kept, and handed over while nothing they read changed. */
  private readonly reuseRuns: boolean;
  private ended: PassSummary | undefined;

  constructor(
    readonly kernel: Kernel,
    private readonly caches: PassCaches,
    options: PassOptions = {},
  ) {
    this.generation = kernel.memory.generation;
    this.reuse = options.reuse !== false;
    const v = options.validate;
    this.retries = v === undefined || v === false ? undefined : v === true ? DEFAULT_RETRIES : Math.max(0, Math.min(16, Math.floor(v.retries ?? DEFAULT_RETRIES)));
    this.strict = typeof v === 'object' && v.strict === true;
    this.reuseRuns = this.reuse && !(typeof v === 'object' && v.reuseRuns === false);
    const tables = tablesOf(kernel);
    if (!this.reuse) {
      caches.userSpaces.clear();
      kernel.space.flush?.();
      tables?.flush();
    }
    // Whatever was cached is checked again before use in this pass (a memory image never changes).
    if ((kernel.memory.technique as { live?: boolean } | undefined)?.live !== false) tables?.newEpoch();
    // Blocks a source asks to be read in are kept for this pass only: it starts with none.
    if (options.blocks === false) tables?.phys.endPass();
    else tables?.phys.beginPass();
  }

  userSpace(pgd: bigint, name?: string): AddressSpace {
    let s = this.caches.userSpaces.get(pgd);
    if (s === undefined) {
      s = this.kernel.createUserSpace(pgd, name);
      if (this.caches.userSpaces.size >= MAX_USER_SPACES) this.caches.userSpaces.clear();
      this.caches.userSpaces.set(pgd, s);
    }
    this.used.add(pgd);
    return s;
  }

  run<R extends object, O extends OptionDecls>(plugin: Plugin<R, O>, options: PluginOptions = {}): PassResult<R> {
    checkRequirements(this.kernel, plugin);
    const values = checkOptionValues(plugin.name, plugin.options, options);
    const t0 = monotonicMs();
    const once = (): { rows: R[]; sink: AnomalySink } => {
      const sink = new AnomalySink();
      return { rows: [...plugin.run(this.kernel, { options: values, anomalies: sink })], sink };
    };
    let out: { rows: R[]; sink: AnomalySink };
    let validation: RunValidation | undefined;
    if (this.retries === undefined) out = once();
    else ({ out, validation } = this.validated(plugin, optionsKey(values), once, this.retries));
    return this.finish(plugin.name, out.rows, out.rows.length, out.sink, t0, validation);
  }

  stream<R extends object, O extends OptionDecls>(plugin: Plugin<R, O>, options: PluginOptions = {}): StreamedRun<R> {
    if (this.retries !== undefined) {
      const result = this.run(plugin, options);
      return { rows: result.rows, done: () => ({ ...result, rowCount: result.rows.length }) };
    }
    checkRequirements(this.kernel, plugin);
    const values = checkOptionValues(plugin.name, plugin.options, options);
    const t0 = monotonicMs();
    const sink = new AnomalySink();
    let count = 0;
    let finished: (PassResult<R> & { rowCount: number }) | undefined;
    const kernel = this.kernel;
    // The plugin's own generator, counted as it is read: an iterator over it rather than a generator around
    // it, whose suspend and resume per row were ~5 ms of a 94k-row listing.
    let inner: Iterator<R> | undefined;
    const source = (): Iterator<R> => (inner ??= plugin.run(kernel, { options: values, anomalies: sink })[Symbol.iterator]());
    const rows: IterableIterator<R> = {
      next(): IteratorResult<R> {
        const r = source().next();
        if (!r.done) count++;
        return r;
      },
      return(value?: unknown): IteratorResult<R> {
        return inner?.return?.(value) ?? { done: true, value: undefined };
      },
      [Symbol.iterator]() {
        return this;
      },
    };
    return {
      rows,
      done: () => (finished ??= { ...this.finish(plugin.name, [], count, sink, t0, undefined), rowCount: count }),
    };
  }

  /** Records a finished run in the pass (anomalies merged, a summary line) and returns its result. */
  private finish<R extends object>(plugin: string, rows: R[], rowCount: number, sink: AnomalySink, t0: number, validation: RunValidation | undefined): PassResult<R> {
    mergeAnomalies(this.anomalies, sink);
    const result: PassResult<R> = {
      plugin,
      rows,
      anomalies: sink.items as readonly Anomaly[],
      anomalyCounts: sink.counts,
      elapsedMs: monotonicMs() - t0,
      ...(validation ? { validation } : {}),
    };
    this.runs.push({
      plugin,
      rows: rowCount,
      anomalies: sink.total,
      anomalyCounts: { ...sink.counts },
      elapsedMs: result.elapsedMs,
      ...(validation ? { validation } : {}),
    });
    return result;
  }

  private validated<R extends object>(plugin: Plugin<R, any>, key: string, once: () => Run<R>, retries: number): { out: Run<R>; validation: RunValidation } {
    const tables = tablesOf(this.kernel);
    if (tables === undefined) {
      return { out: once(), validation: { attempts: 1, retries: 0, changedRanges: 0, changedValues: 0, watchedPages: 0, validated: false, reason: 'this kernel space reads no guest-physical memory to watch' } };
    }
    const phys = tables.phys;
    const fresh = new PhysReader(uncached(phys.mem));
    // A pass that does not reuse runs leaves the kept one for the next that does (it is compared before use).
    const kept = this.reuseRuns ? this.caches.keptRun(plugin, key) : undefined;
    if (kept !== undefined) {
      if (kept.recorder.unchanged(fresh)) {
        const sink = new AnomalySink();
        mergeAnomalies(sink, kept.sink);
        const validation = { attempts: 0, retries: 0, changedRanges: 0, changedValues: 0, watchedPages: kept.recorder.pages.size, validated: true, reused: true };
        return { out: { rows: [...(kept.rows as R[])], sink }, validation };
      }
      this.caches.dropRun(plugin, key);
    }
    let changedRanges = 0;
    const changedAt: number[] = [];
    for (let attempt = 1; ; attempt++) {
      // Every translation the run uses is re-checked inside it, so the page-table entries it
      // relies on are read (and watched) too, not taken from an earlier run of this pass.
      tables.newEpoch();
      // A retry re-reads everything: page-cached copies and this pass's blocks dropped too.
      if (attempt > 1) {
        (phys.mem as { flush?: () => void }).flush?.();
        phys.dropPassBlocks();
      }
      const rec = new PageRecorder(phys, this.kernel.space);
      const outer = phys.recorder;
      const typed = this.kernel.typed;
      const outerFields = typed.fields;
      phys.recorder = rec;
      typed.fields = rec;
      let out: Run<R>;
      try {
        out = once();
      } finally {
        phys.recorder = outer;
        typed.fields = outerFields;
      }
      const changed = rec.changed(fresh, this.strict);
      changedRanges += changed;
      changedAt.push(...rec.changedAt);
      const base = { attempts: attempt, retries: attempt - 1, changedRanges, changedValues: rec.changedValues, watchedPages: rec.pages.size, ...(changedAt.length ? { changedAt } : {}) };
      const overflow = rec.overflow;
      if (changed === 0 && rec.changedValues === 0 && !overflow && this.reuseRuns && rec.pages.size <= MAX_KEPT_PAGES) {
        // Kept only when every value held too (a run whose counters moved would be stale next pass: compared, it misses).
        this.caches.keepRun(plugin, key, { recorder: rec, rows: [...out.rows], sink: out.sink });
      } else rec.release();
      if (overflow) return { out, validation: { ...base, validated: false, reason: `the run read more than ${MAX_WATCHED_PAGES} pages; only those were checked` } };
      if (changed === 0) return { out, validation: { ...base, validated: true } };
      if (attempt > retries) return { out, validation: { ...base, validated: false, reason: `guest memory kept changing (${changed} pages in the last attempt)` } };
    }
  }

  end(): PassSummary {
    if (this.ended) return this.ended;
    const runs = this.runs;
    const validatedRuns = runs.filter((r) => r.validation);
    this.ended = {
      generation: this.generation,
      startedAt: this.startedAt,
      elapsedMs: monotonicMs() - this.t0,
      reuse: this.reuse,
      anomalyCounts: { ...this.anomalies.counts },
      anomalies: this.anomalies.total,
      settled: this.anomalies.settled,
      runs: [...runs],
      userSpaces: this.used.size,
      ...(this.retries !== undefined
        ? {
            validation: {
              runs: validatedRuns.length,
              retries: validatedRuns.reduce((a, r) => a + r.validation!.retries, 0),
              changedRanges: validatedRuns.reduce((a, r) => a + r.validation!.changedRanges, 0),
              changedValues: validatedRuns.reduce((a, r) => a + r.validation!.changedValues, 0),
              reused: validatedRuns.filter((r) => r.validation!.reused).length,
              validated: validatedRuns.every((r) => r.validation!.validated),
            },
          }
        : {}),
    };
    this.kernel.passEnded(this);
    return this.ended;
  }
}
