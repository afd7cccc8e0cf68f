/**
 * A plugin is one file exporting a typed declaration: its requirements as
 * data (checked before it runs), its row schema, a stable key per row (the
 * monitor diffs rows by key), and a synchronous generator over the kernel.
 * Plugins never import other plugins; shared logic lives in linux/.
 */
import { checkOptionValues, type Column, type OptionDecls, type OptionValues } from './schema.js';
import type { Anomaly, AnomalyKind, AnomalySink } from './anomaly.js';
import type { Kernel } from './kernel.js';

export { checkRequirements } from './requirements.js';

export type { Column, ColumnKind, OptionDecl, OptionDecls, OptionSpec, OptionValues } from './schema.js';
export { checkOptionValues, defineOptions } from './schema.js';

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

/** Option values as they come from a caller (parseArgs or a library user), before checking. */
export type PluginOptions = Record<string, string | boolean | string[] | undefined>;

export interface PluginContext<O extends OptionDecls = OptionDecls> {
  /** The options, typed by the plugin's declaration (checked against it before run). */
  readonly options: OptionValues<O>;
  readonly anomalies: AnomalySink;
}

export interface Plugin<R extends object = Record<string, unknown>, O extends OptionDecls = OptionDecls> {
  /** vmsight name, e.g. 'pslist'. */
  readonly name: string;
  /** Volatility-style names users know, e.g. 'linux.pslist.PsList'. */
  readonly aliases?: readonly string[];
  readonly version: string;
  readonly summary: string;
  readonly requires: Requirements;
  /**
   * CLI options beyond the global ones, e.g. { ...PID_OPTION, family: { type: 'string', choices: [...] } };
   * their values reach `run` typed by this declaration.
   */
  readonly options?: O;
  readonly columns: readonly Column<R>[];
  /** A stable identity for a row across passes (for diffing and events). */
  key(row: R): string;
  run(kernel: Kernel, ctx: PluginContext<O>): Iterable<R>;
}

/**
 * Declares a plugin: `definePlugin<Row>()({ ... })`. The row type is given, the option types are inferred
 * from the `options` literal (two calls because TypeScript cannot infer one type argument and take another).
 */
export function definePlugin<R extends object>() {
  return <const O extends OptionDecls = {}>(p: Plugin<R, O>): Plugin<R, O> => p;
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
export function runPlugin<R extends object, O extends OptionDecls>(plugin: Plugin<R, O>, kernel: Kernel, options: PluginOptions = {}): PluginResult<R> {
  checkOptionValues(plugin.name, plugin.options, options); // a bad option value fails before the kernel is touched
  const pass = kernel.startPass();
  try {
    return pass.run(plugin, options);
  } finally {
    pass.end();
  }
}
