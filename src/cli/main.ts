/**
 * The `vmsight` entry point: picks the command, parses its options with the
 * global ones, renders errors as one actionable line with a distinct exit code
 * (stack traces only with --debug).
 */
import { parseArgs } from 'node:util';
import { describeError, ExitCode, UsageError } from '../core/errors.js';
import type { Command, OptionSpec } from './command.js';
import { commandEntries, findEntry, type CommandEntry } from './registry.js';
import { createOutput, type OutputFormat } from './render.js';

export const globalOptions: OptionSpec = {
  json: { type: 'boolean' },
  jsonl: { type: 'boolean' },
  csv: { type: 'boolean' },
  debug: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  profile: { type: 'string' },
};

/** The command a word names, loaded (its module is imported only now). */
export async function findCommand(name: string): Promise<Command | undefined> {
  return findEntry(name)?.load();
}

function helpText(): string {
  const width = Math.max(...commandEntries.map((c) => c.name.length), 4);
  const line = (c: CommandEntry) => `  ${c.name.padEnd(width)}  ${c.summary}`;
  const lines = [
    'vmsight: agentless introspection of Linux virtual machines',
    '',
    'usage: vmsight <command> [source] [options]',
    '',
    'commands:',
    ...commandEntries.filter((c) => !c.plugin).map(line),
    '',
    'plugins (vmsight <plugin> <source> [--pid N] [--json]; Volatility 3 names work too):',
    ...commandEntries.filter((c) => c.plugin).map(line),
    '',
    'global options: --json | --jsonl | --csv   output format (default: aligned table)',
    '                --profile FILE             an ISF (.json/.json.xz) or BTF file to use as the kernel profile',
    '                --debug                    stack traces on errors',
    '',
    'sources: a memory image path, a lab guest name, or a URI (see README: "Naming a source").',
  ];
  return lines.join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const debug = argv.includes('--debug');
  try {
    const [name, ...rest] = argv;
    if (!name || name === 'help' || name === '--help' || name === '-h') {
      const sub = name === 'help' && rest[0] ? await findCommand(rest[0]) : undefined;
      process.stdout.write((sub ? `usage: vmsight ${sub.name} ${sub.usage}\n${sub.summary}\n` : helpText()) + '\n');
      return ExitCode.ok;
    }
    if (name === '--version') {
      process.stdout.write('vmsight 0.1.0\n');
      return ExitCode.ok;
    }
    const command = await findCommand(name);
    if (!command) throw new UsageError(`unknown command '${name}'`, { hint: "run 'vmsight help' for the list" });
    // Lab guest names as sources (imported here: it pulls in the memory layer, which --help never needs).
    (await import('../lab/resolver.js')).useLabGuests();
    let parsed;
    try {
      parsed = parseArgs({
        args: rest,
        options: { ...globalOptions, ...command.options },
        allowPositionals: true,
        strict: true,
      });
    } catch (e) {
      throw new UsageError(`${name}: ${(e as Error).message.split('\n')[0]}`, {
        hint: `usage: vmsight ${command.name} ${command.usage}`,
      });
    }
    if (parsed.values['help']) {
      process.stdout.write(`usage: vmsight ${command.name} ${command.usage}\n${command.summary}\n`);
      return ExitCode.ok;
    }
    const v = parsed.values;
    const format: OutputFormat = v['json'] ? 'json' : v['jsonl'] ? 'jsonl' : v['csv'] ? 'csv' : 'table';
    const code = await command.run(
      { positionals: parsed.positionals, values: v as Record<string, string | boolean | string[] | boolean[] | undefined> },
      { out: createOutput(format), debug },
    );
    return code ?? ExitCode.ok;
  } catch (err) {
    const { line, exitCode } = describeError(err, debug);
    process.stderr.write(`vmsight: ${line}\n`);
    return exitCode;
  }
}
