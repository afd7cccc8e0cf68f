/**
 * Help text from the option declarations themselves: `vmsight <command> --help` lists the command's own
 * options (type, choices, default, what each does), then the source options it accepts, then the global
 * ones. Light on purpose: nothing here imports analysis code, so `--help` stays a cold start.
 */
import type { OptionHelp, OptionSpec } from '../linux/schema.js';
import type { Command } from './command.js';

/** The techniques `--technique` accepts (classes; an implementation name such as qemu-shm works too). */
export const TECHNIQUE_CLASSES = ['live-map', 'live-read', 'guest-halting', 'halt-snapshot', 'live-snapshot', 'debugger-stub', 'monitor-read', 'file'] as const;

type Described = OptionSpec[string] & OptionHelp & { readonly choices?: readonly string[] };

/** What the shared options do; a command's own options describe themselves in their declarations. */
const SHARED_HELP: Readonly<Record<string, OptionHelp>> = {
  json: { description: 'one JSON document (README "JSON output")' },
  jsonl: { description: 'one JSON object per row' },
  csv: { description: 'comma-separated rows with a header line' },
  profile: { valueName: 'FILE', description: 'an ISF (.json/.json.xz) or BTF file to use as the kernel profile', byDefault: "built from the guest's own memory" },
  debug: { description: 'stack traces on errors, step timings' },
  help: { description: 'this help' },
  quiet: { description: 'no progress line on stderr', byDefault: 'a progress line on a terminal for operations over a second' },
  technique: {
    valueName: 'TECHNIQUE',
    description: `how to read guest memory: ${TECHNIQUE_CLASSES.join(', ')} (or an implementation name; see \`vmsight sources\`)`,
    byDefault: 'the fastest that fits the source',
  },
  halting: { description: 'pause the guest for each pass (consistent reads), resume after' },
  'no-cache': { description: 'rebuild the kernel profile instead of using the profile cache' },
  validate: { description: 're-read what the run read and retry when the guest changed it meanwhile' },
};

/** The options every command takes (renderers, --profile, --debug, --quiet, --help). */
export const GLOBAL_OPTION_NAMES = ['json', 'jsonl', 'csv', 'profile', 'debug', 'quiet', 'help'] as const;
/** The options of commands that read a source, listed apart from the command's own. */
const SOURCE_OPTION_NAMES = new Set(['technique', 'halting', 'no-cache', 'validate']);

/** One option as a help line's left side: `--pid PID[,PID…]`, `--family FAMILY`, `--threads`. */
function optionFlag(name: string, o: Described): string {
  const short = o.short ? `-${o.short}, ` : '';
  return o.type === 'boolean' ? `${short}--${name}` : `${short}--${name} ${o.valueName ?? 'VALUE'}`;
}

/** The right side: what it does, its choices, whether it repeats, and what happens without it. */
function optionText(name: string, o: Described): string {
  const help = { ...SHARED_HELP[name], ...pickHelp(o) };
  const parts = [help.description ?? (o.type === 'boolean' ? 'flag' : 'takes a value (see usage)')];
  if (o.choices) parts.push(`one of: ${o.choices.join(', ')}`);
  if (o.type === 'string' && o.multiple && !/repeatable/.test(parts[0]!)) parts.push('repeatable');
  if (help.byDefault) parts.push(`default: ${help.byDefault}`);
  return parts.join('; ');
}

function pickHelp(o: OptionHelp): OptionHelp {
  return {
    ...(o.description ? { description: o.description } : {}),
    ...(o.byDefault ? { byDefault: o.byDefault } : {}),
    ...(o.valueName ? { valueName: o.valueName } : {}),
  };
}

/** A string option's value name as the command's usage line spells it (`--for DURATION`), for options that declare none. */
function usageValueName(usage: string, name: string): string | undefined {
  const m = new RegExp(`--${name.replace(/[-]/g, '\\-')} (<[^>]+>|[A-Za-z0-9_|.]+)(?=[\\s\\]|]|$)`).exec(usage);
  return m && !m[1]!.startsWith('-') ? m[1] : undefined;
}

/** Aligned `flag  text` lines for these options. */
export function optionLines(spec: OptionSpec, names: readonly string[], indent = '  ', usage = ''): string[] {
  const rows = names.filter((n) => spec[n]).map((n) => {
    const fromUsage = usageValueName(usage, n);
    const o = { ...(fromUsage ? { valueName: fromUsage } : {}), ...pickHelp(SHARED_HELP[n] ?? {}), ...(spec[n] as Described) } as Described;
    return [optionFlag(n, o), optionText(n, o)] as const;
  });
  let width = 0;
  for (const [flag] of rows) width = Math.max(width, flag.length);
  return rows.map(([flag, text]) => `${indent}${flag.padEnd(width)}  ${text}`);
}

/** A declared option as `plugins --json` lists it. */
export interface OptionInfo {
  name: string;
  type: 'boolean' | 'string';
  multiple: boolean;
  choices: readonly string[] | null;
  default: string | null;
  description: string | null;
}

export function optionInfo(name: string, o: Described): OptionInfo {
  return {
    name,
    type: o.type,
    multiple: o.type === 'string' && o.multiple === true,
    choices: o.choices ?? null,
    default: o.byDefault ?? null,
    description: o.description ?? null,
  };
}

/** `vmsight <command> --help`: usage, summary, Volatility names, then its options, source options, global options. */
export function commandHelp(command: Command, globals: OptionSpec): string {
  const spec: OptionSpec = command.options ?? {};
  const own = Object.keys(spec).filter((n) => !SOURCE_OPTION_NAMES.has(n) && !(n in globals));
  const source = Object.keys(spec).filter((n) => SOURCE_OPTION_NAMES.has(n));
  const lines = [`usage: vmsight ${command.name} ${command.usage}`, command.summary];
  if (command.aliases?.length) lines.push(`also known as: ${command.aliases.join(', ')}`);
  if (own.length) lines.push('', 'options:', ...optionLines(spec, own, '  ', command.usage));
  if (source.length) lines.push('', 'source options:', ...optionLines(spec, source));
  lines.push('', 'global options:', ...optionLines(globals, GLOBAL_OPTION_NAMES));
  return lines.join('\n');
}

/** Edit distance (insert, delete, substitute, transpose adjacent), case-insensitive, in O(|a|·|b|) time and O(|b|) memory. */
export function editDistance(a: string, b: string): number {
  a = a.toLowerCase();
  b = b.toLowerCase();
  let prev2: number[] = [];
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, prev2[j - 2]! + 1);
      cur.push(d);
    }
    prev2 = prev;
    prev = cur;
  }
  return prev[b.length]!;
}

/**
 * The names closest to a mistyped one, best first (at most three). Each candidate is a name with the words
 * that select it (its aliases, e.g. Volatility names): a word close enough suggests the name it selects.
 * Close enough: within a third of the longer word's length (at least 1), or the typed word ends a dotted
 * Volatility name (`PsList` → pslist).
 */
export function suggestNames(typed: string, candidates: readonly { name: string; words: readonly string[] }[]): string[] {
  const scored: { name: string; d: number }[] = [];
  for (const c of candidates) {
    let best = Infinity;
    for (const w of [c.name, ...c.words]) {
      const tail = w.includes('.') ? w.slice(w.lastIndexOf('.') + 1) : undefined;
      const d = Math.min(editDistance(typed, w), tail !== undefined ? editDistance(typed, tail) : Infinity);
      const limit = Math.max(1, Math.floor(Math.max(typed.length, tail?.length ?? w.length) / 3));
      if (d <= limit) best = Math.min(best, d);
    }
    if (best < Infinity) scored.push({ name: c.name, d: best });
  }
  scored.sort((x, y) => x.d - y.d || x.name.localeCompare(y.name));
  return scored.slice(0, 3).map((s) => s.name);
}
