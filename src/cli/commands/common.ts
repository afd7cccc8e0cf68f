/** Options and helpers shared by the commands that open a source or attach to a kernel. */
import { UsageError } from '../../core/errors.js';
import { openSource, type OpenedSource } from '../../memory/open.js';
import type { AttachOptions } from '../../linux/attach.js';
import type { OptionSpec, ParsedArgs } from '../command.js';
import { monotonicMs } from '../../core/clock.js';

/** --technique and --halting, accepted by every command that reads a source. */
export const sourceOptions: OptionSpec = {
  technique: { type: 'string' },
  halting: { type: 'boolean' },
};

/** The source options plus --no-cache, for the commands that build a kernel profile (attachKernel). */
export const attachOptionSpec: OptionSpec = { ...sourceOptions, 'no-cache': { type: 'boolean' } };

/** The source argument (first positional), or a usage error showing the usage. */
export function requireSource(args: ParsedArgs, usage: string): string {
  const spec = args.positionals[0];
  if (!spec) throw new UsageError('missing <source>', { hint: `usage: ${usage.startsWith('vmsight') ? usage : `vmsight ${usage}`}` });
  return spec;
}

export const DURATION_UNITS_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** A duration such as `500ms`, `30s`, `10m`, `2h`, `1d` (a bare number is seconds), in milliseconds. */
export function parseDuration(text: string, what: string): number {
  const m = /^([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)?$/.exec(text.trim());
  if (!m) throw new UsageError(`${what} ${JSON.stringify(text)}: expected a duration such as 500ms, 30s, 10m, 2h`);
  return Number(m[1]) * DURATION_UNITS_MS[m[2] ?? 's']!;
}

/** A string option's value, when given. */
export function stringOption(args: ParsedArgs, key: string): string | undefined {
  const v = args.values[key];
  return typeof v === 'string' ? v : undefined;
}

/** Opens `spec` (honouring --technique/--halting), runs `fn`, and always closes the source. */
export async function withSource<T>(args: ParsedArgs, spec: string, fn: (opened: OpenedSource, openMs: number) => Promise<T>): Promise<T> {
  const t0 = monotonicMs();
  const technique = stringOption(args, 'technique');
  const opened = await openSource(spec, {
    ...(technique !== undefined ? { technique } : {}),
    ...(args.values['halting'] === true ? { halting: true } : {}),
  });
  const openMs = monotonicMs() - t0;
  try {
    return await fn(opened, openMs);
  } finally {
    await opened.memory.close();
  }
}


export function attachOptions(args: ParsedArgs): AttachOptions {
  const v = args.values;
  return {
    ...(typeof v['technique'] === 'string' ? { technique: v['technique'] } : {}),
    ...(v['halting'] ? { halting: true } : {}),
    ...(profileOption(args) !== undefined ? { profileFile: profileOption(args)! } : {}),
    ...(v['no-cache'] ? { cache: false as const } : {}),
  };
}

/** The --profile FILE option, when given. */
export function profileOption(args: ParsedArgs): string | undefined {
  const v = args.values['profile'];
  return typeof v === 'string' ? v : undefined;
}
