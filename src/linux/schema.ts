/**
 * The row schema and option declarations of the plugin contract. Plugins declare them; renderers (cli/) and
 * the monitor consume them. They belong to linux/ because the contract is defined here.
 */
import type { ParseArgsConfig } from 'node:util';

export type ColumnKind = 'int' | 'hex' | 'str' | 'bool' | 'float' | 'bytes';

export interface Column {
  /** Key in the row object. */
  readonly key: string;
  /** Header shown in tables (defaults to key). */
  readonly title?: string;
  readonly kind: ColumnKind;
}

/** Declared command-line options, in node:util parseArgs form. */
export type OptionSpec = NonNullable<ParseArgsConfig['options']>;
