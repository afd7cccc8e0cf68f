/** Options and helpers shared by the commands that open a source or attach to a kernel. */
import { UsageError } from '../../core/errors.js';
import type { AttachOptions } from '../../linux/attach.js';
import type { OptionSpec, ParsedArgs } from '../command.js';

/** --technique, --halting and --no-cache, accepted by every command that reads a source. */
export const sourceOptions: OptionSpec = {
  technique: { type: 'string' },
  halting: { type: 'boolean' },
  'no-cache': { type: 'boolean' },
};

/** The source argument (first positional), or a usage error. */
export function requireSource(args: ParsedArgs, usage: string): string {
  const spec = args.positionals[0];
  if (!spec) throw new UsageError('missing <source>', { hint: `usage: ${usage}` });
  return spec;
}

export function attachOptions(args: ParsedArgs): AttachOptions {
  const v = args.values;
  return {
    ...(typeof v['technique'] === 'string' ? { technique: v['technique'] } : {}),
    ...(v['halting'] ? { halting: true } : {}),
    ...(typeof v['profile'] === 'string' ? { profileFile: v['profile'] } : {}),
    ...(v['no-cache'] ? { cache: false as const } : {}),
  };
}
