/**
 * A plugin is one file exporting a typed declaration: its requirements as
 * data (checked before it runs), its row schema, a stable key per row (the
 * monitor diffs rows by key), and a synchronous generator over the kernel.
 * Plugins never import other plugins; shared logic lives in linux/.
 */
import type { Column, OptionSpec } from './schema.js';
import type { Anomaly, AnomalyKind, AnomalySink } from './anomaly.js';
import type { Kernel } from './kernel.js';

export { checkRequirements } from './requirements.js';

export type { Column, ColumnKind, OptionSpec } from './schema.js';

/** Distinct kinds of "no value", instead of null (Volatility's lesson). */
export type AbsentKind = 'unreadable' | 'not-applicable' | 'not-available' | 'unparsable';
export interface Absent {
  readonly absent: AbsentKind;
  readonly reason?: string;
}
export const absent = (kind: AbsentKind, reason?: string): Absent => (reason ? { absent: kind, reason } : { absent: kind });
export function isAbsent(v: unknown): v is Absent {
  return typeof v === 'object' && v !== null && 'absent' in v;
}

export interface Requirements {
  /** Kernel symbols that must resolve. */
  readonly symbols?: readonly string[];
  /** Types that must exist in the profile. */
  readonly types?: readonly string[];
  /** Struct members that must exist: [type, 'path.to.field']. */
  readonly fields?: readonly (readonly [string, string])[];
  /** Alternatives: at least one of each group must exist (e.g. mm_mt or mmap). */
  readonly anyOf?: readonly (readonly (readonly [string, string])[])[];
}

export type PluginOptions = Record<string, string | boolean | string[] | undefined>;

export interface PluginContext {
  readonly options: PluginOptions;
  readonly anomalies: AnomalySink;
}

export interface Plugin<R extends object = Record<string, unknown>> {
  /** vmsight name, e.g. 'pslist'. */
  readonly name: string;
  /** Volatility-style names users know, e.g. 'linux.pslist.PsList'. */
  readonly aliases?: readonly string[];
  readonly version: string;
  readonly summary: string;
  readonly requires: Requirements;
  /** CLI options beyond the global ones, e.g. { pid: { type: 'string', multiple: true } }. */
  readonly options?: OptionSpec;
  readonly columns: readonly Column[];
  /** A stable identity for a row across passes (for diffing and events). */
  key(row: R): string;
  run(kernel: Kernel, ctx: PluginContext): Iterable<R>;
}

export function definePlugin<R extends object>(p: Plugin<R>): Plugin<R> {
  return p;
}

export interface PluginResult<R extends object = Record<string, unknown>> {
  readonly plugin: string;
  readonly rows: R[];
  readonly anomalies: readonly Anomaly[];
  readonly anomalyCounts: Partial<Record<AnomalyKind, number>>;
  readonly elapsedMs: number;
}

/**
 * Runs a plugin to completion in a one-run pass on the source's current
 * generation (requirements checked first; cached translations re-checked
 * against guest memory), collecting rows and the anomalies met on the way.
 * For a fresh look at a live guest use `(await kernel.pass()).run(plugin)`.
 */
export function runPlugin<R extends object>(plugin: Plugin<R>, kernel: Kernel, options: PluginOptions = {}): PluginResult<R> {
  const pass = kernel.startPass();
  try {
    return pass.run(plugin, options);
  } finally {
    pass.end();
  }
}
