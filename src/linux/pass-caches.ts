/**
 * What passes keep from one to the next when they reuse (linux/pass.ts):
 * process address spaces by pgd (their translations re-checked per epoch),
 * and each plugin's last validated run, handed over while every word it read
 * still holds.
 */
import type { AddressSpace } from '../arch/address-space.js';
import type { AnomalySink } from './anomaly.js';
import type { PageRecorder } from './page-recorder.js';
import type { Plugin } from './plugin.js';

/** A validated run kept for reuse: what it read (its recorder) and what it gave. */
export interface KeptRun {
  readonly recorder: PageRecorder;
  readonly rows: readonly object[];
  readonly sink: AnomalySink;
}

/** Caches that outlive one pass (when passes reuse): process address spaces by pgd, validated runs by plugin and option values. */
export class PassCaches {
  readonly userSpaces = new Map<bigint, AddressSpace>();
  /** Kept runs, oldest first; a run handed over moves to the end (a monitor's pass reads every plugin in turn). */
  private readonly runs = new Map<string, KeptRun>();
  private keptPages = 0;

  /** The kept run of a plugin under these option values, if any. */
  keptRun(plugin: Plugin<any, any>, optionsKey: string): KeptRun | undefined {
    const key = this.runKey(plugin, optionsKey);
    const run = this.runs.get(key);
    if (run !== undefined) {
      this.runs.delete(key);
      this.runs.set(key, run);
    }
    return run;
  }

  /** Forgets a kept run (its recorder's storage handed on). */
  dropRun(plugin: Plugin<any, any>, optionsKey: string): void {
    this.drop(this.runKey(plugin, optionsKey));
  }

  /** Keeps a run, forgetting the oldest ones while the count or the pages they hold would exceed the bounds. */
  keepRun(plugin: Plugin<any, any>, optionsKey: string, run: KeptRun): void {
    const key = this.runKey(plugin, optionsKey);
    this.drop(key);
    const pages = run.recorder.pages.size;
    for (const oldest of this.runs.keys()) {
      if (this.runs.size < MAX_KEPT_RUNS && this.keptPages + pages <= MAX_KEPT_PAGES_IN_ALL) break;
      this.drop(oldest);
    }
    this.runs.set(key, run);
    this.keptPages += pages;
  }

  get keptRuns(): number {
    return this.runs.size;
  }

  private drop(key: string): void {
    const run = this.runs.get(key);
    if (run === undefined) return;
    this.keptPages -= run.recorder.pages.size;
    run.recorder.release();
    this.runs.delete(key);
  }

  private runKey(plugin: Plugin<any, any>, optionsKey: string): string {
    let id = pluginIds.get(plugin);
    if (id === undefined) pluginIds.set(plugin, (id = nextPluginId++));
    return `${id}\0${optionsKey}`;
  }
}

/** A number per plugin object for run keys, shared by every kernel's caches (two plugins of one name stay apart). */
const pluginIds = new WeakMap<Plugin<any, any>, number>();
let nextPluginId = 0;

/**
 * Most validated runs kept (every plugin of a full pass, and some under other option values), the most pages
 * one may have read to be kept, and the most all kept runs hold (4 KiB copies each: 1024 pages are 4 MiB, 16384 are 64 MiB).
 */
const MAX_KEPT_RUNS = 64;
export const MAX_KEPT_PAGES = 1024;
const MAX_KEPT_PAGES_IN_ALL = 16384;

/** Most process address spaces kept (each holds a ~50 KB translation cache: 50 MB at most). */
export const MAX_USER_SPACES = 1024;
