/**
 * The row schema and option declarations of the plugin contract. Plugins declare them; renderers (cli/) and
 * the monitor consume them. They belong to linux/ because the contract is defined here.
 *
 * Both are typed from the declaration: a column's key must be a key of the plugin's row type (a typo does not
 * compile), and a declared option's value has its declared type inside `run` (OptionValues of the declaration).
 */
import type { ParseArgsConfig } from 'node:util';
import { UsageError } from '../core/errors.js';

export type ColumnKind = 'int' | 'hex' | 'str' | 'bool' | 'float' | 'bytes';

/**
 * A column of rows of type R. Renderers take the widened `Column` (key: any string); its default is `any`
 * rather than Record<string, unknown> because keyof makes Column contravariant in R, and only `any` lets
 * every Column<Row> widen to it.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export interface Column<R extends object = any> {
  /** Key in the row object. */
  readonly key: keyof R & string;
  /** Header shown in tables (defaults to key). */
  readonly title?: string;
  readonly kind: ColumnKind;
  /** A float column's digits after the point in tables and CSV (kmsg times: 6, as dmesg prints them); JSON keeps the number. */
  readonly decimals?: number;
  /** Only in JSON (a list a table or CSV already shows joined in another column, such as psaux's argv beside args). */
  readonly jsonOnly?: boolean;
}

/** Declared command-line options, in node:util parseArgs form. */
export type OptionSpec = NonNullable<ParseArgsConfig['options']>;

/**
 * What `vmsight <plugin> --help` and `plugins --json` show about an option: one line of `description`, and
 * `byDefault`, what happens when it is not given (documentation only: parseArgs never sees a default, so an
 * absent option stays absent for the plugin). `valueName` names a string option's value (PID, DIR, …).
 */
export interface OptionHelp {
  readonly description?: string;
  readonly byDefault?: string;
  readonly valueName?: string;
}

/** One plugin option: a flag, a string (one of `choices` when given), or a repeatable string. */
export type OptionDecl =
  | ({ readonly type: 'boolean'; readonly short?: string } & OptionHelp)
  | ({ readonly type: 'string'; readonly multiple?: boolean; readonly choices?: readonly string[]; readonly short?: string; readonly required?: boolean } & OptionHelp);
export type OptionDecls = { readonly [name: string]: OptionDecl };

/** The value a declaration parses to: boolean flags, strings (narrowed to the choices), arrays when repeatable. */
export type OptionValue<D extends OptionDecl> = D extends { type: 'boolean' }
  ? boolean
  : D extends { choices: readonly (infer C extends string)[] }
    ? D extends { multiple: true } ? C[] : C
    : D extends { multiple: true } ? string[] : string;

/** The parsed options of a declaration: every option may be absent. */
export type OptionValues<O extends OptionDecls> = { readonly [K in keyof O]?: OptionValue<O[K]> };

/** Keeps the literal types of an option declaration (so OptionValues can be derived from it). */
export function defineOptions<const O extends OptionDecls>(options: O): O {
  return options;
}

/**
 * Checks option values against their declarations: an enumerated option's value must be one of its choices,
 * a flag a boolean, a string a string. Throws UsageError naming the option, the bad value and the valid ones.
 * Returns the values typed by the declaration.
 */
export function checkOptionValues<O extends OptionDecls>(owner: string, decls: O | undefined, values: Record<string, unknown>): OptionValues<O> {
  for (const [name, d] of Object.entries(decls ?? {})) {
    const v = values[name];
    if (v === undefined) {
      if ('required' in d && d.required) throw new UsageError(`${owner}: --${name} is required`);
      continue;
    }
    if (d.type === 'boolean') {
      if (typeof v !== 'boolean') throw new UsageError(`${owner}: --${name} is a flag and takes no value`);
      continue;
    }
    const list = Array.isArray(v) ? v : [v];
    if (!d.multiple && Array.isArray(v)) throw new UsageError(`${owner}: --${name} takes one value`);
    for (const item of list) {
      if (typeof item !== 'string') throw new UsageError(`${owner}: --${name} expects a value`);
      if (d.choices && !d.choices.includes(item))
        throw new UsageError(`${owner}: unknown --${name} '${item}'; valid: ${d.choices.join(', ')}`);
    }
  }
  return values as OptionValues<O>;
}
