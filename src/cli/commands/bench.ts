/**
 * `vmsight bench tradeoffs [options]`: the VMI trade-off study. The study
 * lives in src/bench/, a layer above the CLI, so this command imports nothing
 * from it: it runs bench/main in a child Node process (the built file, or the
 * source through tsx when vmsight runs from source), passes the options on,
 * forwards SIGINT/SIGTERM (the study then resumes the guest and cleans up)
 * and returns the child's exit code.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { UsageError } from '../../core/errors.js';
import type { Command, OptionSpec } from '../command.js';

const STRING_OPTIONS = ['out', 'guest', 'kernel', 'techniques', 'passes', 'phase-seconds', 'bench-seconds', 'repeats', 'kinds', 'rates', 'consistency-passes'] as const;
const BOOLEAN_OPTIONS = ['quick', 'keep', 'interleave', 'paced-control'] as const;

const options: OptionSpec = Object.fromEntries([...STRING_OPTIONS.map((k) => [k, { type: 'string' as const }]), ...BOOLEAN_OPTIONS.map((k) => [k, { type: 'boolean' as const }])]);

/** node arguments that run bench/main: the compiled file next to this one, else the TypeScript source through tsx. */
function benchEntry(): string[] {
  const built = fileURLToPath(new URL('../../bench/main.js', import.meta.url));
  if (existsSync(built)) return [built];
  const source = fileURLToPath(new URL('../../bench/main.ts', import.meta.url));
  if (existsSync(source)) return ['--import', 'tsx', source];
  throw new UsageError('the benchmarks are not built', { hint: 'run npm run build, or npm run bench -- tradeoffs from the source tree' });
}

export const command: Command = {
  name: 'bench',
  summary: 'run the VMI trade-off study (frequency, host cost, guest impact, consistency of every technique)',
  usage: `tradeoffs [--quick] [--out DIR] [--guest NAME | --kernel 6.1] [--keep] [--techniques id,id] [--passes N]
        [--phase-seconds S] [--bench-seconds S] [--repeats N] [--kinds cpu,mem,fork,net,file] [--rates 1,10,100,max]
        [--consistency-passes N] [--interleave] [--paced-control]   (other suites: npm run bench -- memory|translate|profile|plugins|pass)`,
  options,
  async run(args, ctx) {
    if (args.positionals[0] !== 'tradeoffs' || args.positionals.length > 1) throw new UsageError(`bench ${args.positionals.join(' ')}: the command runs 'bench tradeoffs'; the other suites run with npm run bench -- SUITE`);
    const forward: string[] = [];
    for (const k of STRING_OPTIONS) if (typeof args.values[k] === 'string') forward.push(`--${k}`, args.values[k] as string);
    for (const k of BOOLEAN_OPTIONS) if (args.values[k] === true) forward.push(`--${k}`);
    if (ctx.debug) forward.push('--debug');
    const child = spawn(process.execPath, [...benchEntry(), 'tradeoffs', ...forward], { stdio: 'inherit' });
    const pass = (s: NodeJS.Signals) => child.kill(s);
    process.on('SIGINT', pass);
    process.on('SIGTERM', pass);
    try {
      return await new Promise<number>((resolve, reject) => {
        child.on('error', reject);
        child.on('exit', (code, signal) => resolve(code ?? (signal === 'SIGINT' ? 130 : 143)));
      });
    } finally {
      process.off('SIGINT', pass);
      process.off('SIGTERM', pass);
    }
  },
};
