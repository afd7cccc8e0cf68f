/**
 * What every `vmsight <command>` file exports. Commands are listed explicitly
 * in `registry.ts` (no scanning), parsed with node:util parseArgs, and render
 * through `render.ts` so every command speaks table, --json, --jsonl and --csv.
 */
import type { OptionSpec } from '../linux/schema.js';
import type { Output } from './render.js';

export type { OptionSpec } from '../linux/schema.js';

export interface ParsedArgs {
  positionals: string[];
  values: Record<string, string | boolean | string[] | boolean[] | undefined>;
}

export interface CommandContext {
  out: Output;
  debug: boolean;
}

export interface Command {
  /** Words that select the command, e.g. 'info' or 'lab'. */
  readonly name: string;
  readonly aliases?: readonly string[];
  /** One line for `vmsight help`. */
  readonly summary: string;
  /** Usage text after the command name, e.g. '<source> [--json]'. */
  readonly usage: string;
  /** Extra options beyond the global ones (--json, --jsonl, --csv, --debug, --help, --profile). */
  readonly options?: OptionSpec;
  /** Returns the exit code (0 when omitted). Throw VmsightError for failures. */
  run(args: ParsedArgs, ctx: CommandContext): Promise<number | void>;
}
