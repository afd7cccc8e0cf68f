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

/** A validated run kept for reuse: what it read (its recorder), under which option values, and what it gave. */
export interface KeptRun {
  readonly optionsKey: string;
  readonly recorder: PageRecorder;
  readonly rows: readonly object[];
  readonly sink: AnomalySink;
}

/** Caches that outlive one pass (when passes reuse): process address spaces by pgd, validated runs by plugin. */
export class PassCaches {
  readonly userSpaces = new Map<bigint, AddressSpace>();
  readonly validatedRuns = new Map<Plugin<any, any>, KeptRun>();

  /** Forgets a plugin's kept run (its recorder's storage handed on). */
  dropRun(plugin: Plugin<any, any>): void {
    this.validatedRuns.get(plugin)?.recorder.release();
    this.validatedRuns.delete(plugin);
  }

  keepRun(plugin: Plugin<any, any>, run: KeptRun): void {
    this.dropRun(plugin);
    if (this.validatedRuns.size >= MAX_KEPT_RUNS) this.dropRun(this.validatedRuns.keys().next().value!);
    this.validatedRuns.set(plugin, run);
  }

  dropRuns(): void {
    for (const plugin of [...this.validatedRuns.keys()]) this.dropRun(plugin);
  }
}

/** Most validated runs kept, and the most pages one may have read to be kept (4 KiB copies each: 64 MiB in all). */
const MAX_KEPT_RUNS = 16;
export const MAX_KEPT_PAGES = 1024;

/** Most process address spaces kept (each holds a ~50 KB translation cache: 50 MB at most). */
export const MAX_USER_SPACES = 1024;
