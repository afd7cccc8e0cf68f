/**
 * The `vmsight` entry point: picks the command, parses its options with the
 * global ones, renders errors as one actionable line with a distinct exit code
 * (stack traces only with --debug).
 */
import { parseArgs } from 'node:util';
import { describeError, ExitCode, UsageError } from '../core/errors.js';
import type { Command, OptionSpec } from './command.js';
import { commandEntries, findEntry, type CommandEntry } from './registry.js';
import { commandHelp, GLOBAL_OPTION_NAMES, optionLines, suggestNames } from './help.js';
import { createOutput, type OutputFormat } from './render.js';
import { setProgressRenderer } from '../core/progress.js';
import { terminalProgress, type ProgressStream } from './progress.js';
import { fstatSync, writeSync } from 'node:fs';

export const globalOptions: OptionSpec = {
  json: { type: 'boolean' },
  jsonl: { type: 'boolean' },
  csv: { type: 'boolean' },
  debug: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  profile: { type: 'string' },
  quiet: { type: 'boolean', short: 'q' },
};

/** The source options as the top-level help lists them (their texts live in help.ts). */
const SOURCE_HELP_SPEC: OptionSpec = { technique: { type: 'string' }, halting: { type: 'boolean' }, 'no-cache': { type: 'boolean' } };

/** The renderers: asking for two at once is a usage error, not a silent pick. */
const RENDERERS = ['json', 'jsonl', 'csv'] as const;

/** An unknown command word as a usage error that suggests the nearest names (commands, plugins, Volatility names). */
function unknownCommand(name: string): UsageError {
  const near = suggestNames(name, commandEntries.map((c) => ({ name: c.name, words: c.aliases ?? [] })));
  const hint = near.length ? `did you mean ${near.join(' or ')}? ('vmsight help' lists every command)` : "run 'vmsight help' for the list";
  return new UsageError(`unknown command '${name}'`, { hint });
}

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
    'global options (every command; at most one renderer, default: an aligned table):',
    ...optionLines(globalOptions, GLOBAL_OPTION_NAMES),
    '',
    'source options (commands that read a source; `vmsight <command> --help` lists each one\'s own):',
    ...optionLines(SOURCE_HELP_SPEC, Object.keys(SOURCE_HELP_SPEC)),
    '',
    'sources: a memory image path, a lab guest name, or a URI (see README: "Naming a source").',
  ];
  return lines.join('\n');
}

/** Thrown by the next write once stdout's reader has gone: unwinds the command, so its sources close (guests resume). */
class StdoutClosed extends Error {}

let stdoutGone = false;
let stdoutGuarded = false;

/**
 * Watches stdout for a reader that went away (`| head`): EPIPE then ends the command quietly, as every Unix
 * tool does, instead of an unhandled 'error' event. Installed once per process; late EPIPEs stay handled.
 */
function guardStdout(): void {
  if (stdoutGuarded) return;
  stdoutGuarded = true;
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE' || e.code === 'ERR_STREAM_DESTROYED') stdoutGone = true;
    else throw e;
  });
}

/**
 * True when stdout is a file, or a device that is no terminal (/dev/null): what Node writes synchronously
 * anyway (a SyncWriteStream). Its output is written with fs.writeSync: through the stream each chunk also
 * left objects behind until the event loop's next turn, which a listing of 94k rows never gives it, and
 * the scavenges copying them cost kallsyms ~30 ms. Pipes and terminals keep the stream (a full pipe waits
 * in it, EPIPE ends the command quietly).
 */
function stdoutIsSyncFile(): boolean {
  try {
    const st = fstatSync(1);
    return st.isFile() || (st.isCharacterDevice() && process.stdout.isTTY !== true);
  } catch {
    return false;
  }
}

let stdoutSync: boolean | undefined;

function writeStdout(s: string): void {
  if (stdoutGone) throw new StdoutClosed('stdout closed');
  if ((stdoutSync ??= stdoutIsSyncFile())) writeAllSync(1, s);
  else process.stdout.write(s);
}

/** All of `s` to fd, as UTF-8: a write to a file may take only part of it (a full disk, a signal). */
function writeAllSync(fd: number, s: string): void {
  let done = writeSync(fd, s);
  const total = Buffer.byteLength(s);
  if (done >= total) return;
  const bytes = Buffer.from(s);
  while (done < total) done += writeSync(fd, bytes, done, total - done);
}

export async function main(argv: string[]): Promise<number> {
  const debug = argv.includes('--debug');
  guardStdout();
  try {
    return await dispatch(argv, debug, writeStdout);
  } catch (err) {
    if (err instanceof StdoutClosed || stdoutGone) return ExitCode.ok;
    const { line, exitCode } = describeError(err, debug);
    process.stderr.write(`vmsight: ${line}\n`);
    return exitCode;
  }
}

/**
 * parseArgs with the command's options, in the user's words: a negative number after a string option is its
 * value (`--limit -1`, for the command to judge), and parse errors become one plain line.
 */
export function parseCommandLine(command: Command, args: readonly string[]) {
  const options: OptionSpec = { ...globalOptions, ...command.options };
  const joined: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const next = args[i + 1];
    const spec = a.startsWith('--') && !a.includes('=') ? options[a.slice(2)] : undefined;
    if (spec?.type === 'string' && next !== undefined && /^-(\d|0x)/i.test(next)) {
      joined.push(`${a}=${next}`);
      i++;
    } else joined.push(a);
  }
  const usage = { hint: `usage: vmsight ${command.name} ${command.usage}` };
  try {
    return parseArgs({ args: joined, options, allowPositionals: true, strict: true });
  } catch (e) {
    const message = (e as Error).message;
    const option = /'(-[^' ]+)/.exec(message)?.[1] ?? '';
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') throw new UsageError(`${command.name}: unknown option ${option}`, usage);
    if (/argument missing|ambiguous/.test(message)) throw new UsageError(`${command.name}: ${option} needs a value`, usage);
    if (/does not take an argument/.test(message)) throw new UsageError(`${command.name}: ${option} takes no value`, usage);
    throw new UsageError(`${command.name}: ${message.split('\n')[0]}`, usage);
  }
}

async function dispatch(argv: string[], debug: boolean, write: (s: string) => void): Promise<number> {
  const [name, ...rest] = argv;
  if (!name) {
    // Nothing asked: a usage error (scripts that lost their arguments must not see success).
    process.stderr.write(helpText() + '\n');
    return ExitCode.usage;
  }
  if (name === 'help' || name === '--help' || name === '-h') {
    const sub = name === 'help' && rest[0] ? await findCommand(rest[0]) : undefined;
    if (name === 'help' && rest[0] && !sub) throw unknownCommand(rest[0]);
    write((sub ? commandHelp(sub, globalOptions) : helpText()) + '\n');
    return ExitCode.ok;
  }
  if (name === '--version') {
    write('vmsight 0.1.0\n');
    return ExitCode.ok;
  }
  const command = await findCommand(name);
  if (!command) throw unknownCommand(name);
  // Lab guest names as sources (imported here: it pulls in the memory layer, which --help never needs).
  (await import('../lab/resolver.js')).useLabGuests();
  const parsed = parseCommandLine(command, rest);
  if (parsed.values['help']) {
    write(commandHelp(command, globalOptions) + '\n');
    return ExitCode.ok;
  }
  const v = parsed.values;
  const renderers = RENDERERS.filter((r) => v[r] === true);
  if (renderers.length > 1)
    throw new UsageError(`${command.name}: ${renderers.map((r) => `--${r}`).join(' and ')} conflict: choose one renderer`, { hint: `usage: vmsight ${command.name} ${command.usage}` });
  const format: OutputFormat = v['json'] ? 'json' : v['jsonl'] ? 'jsonl' : v['csv'] ? 'csv' : 'table';
  // Long operations in any layer report through core/progress; drawn on a terminal's stderr unless --quiet.
  const previous = setProgressRenderer(terminalProgress(progressStream(), { quiet: v['quiet'] === true }));
  try {
    const code = await command.run(
      { positionals: parsed.positionals, values: v as Record<string, string | boolean | string[] | boolean[] | undefined> },
      { out: createOutput(format, write), debug },
    );
    return code ?? ExitCode.ok;
  } finally {
    setProgressRenderer(previous);
  }
}

/**
 * Standard error for the progress display, which draws only on a terminal: process.stderr itself only when
 * fd 2 is a character device. Making process.stderr on a pipe loads node:net, ~3 ms of a cold start that
 * nothing but an error or an anomaly line needs (they make it when they write).
 */
function progressStream(): ProgressStream {
  let terminal = false;
  try {
    terminal = fstatSync(2).isCharacterDevice();
  } catch {
    // fd 2 closed: Node's process.stderr discards what is written to it, so does this
  }
  return terminal ? process.stderr : { isTTY: false, write: (s: string) => process.stderr.write(s) };
}

/**
 * How a command-line process ends once main() has its exit code. When nothing is left to keep the event loop
 * alive but the standard streams (and they hold no unwritten bytes), the process exits at once instead of
 * letting the loop run dry: at that point Node waits for V8's background jobs to finish (optimizing compiles
 * of hot functions, concurrent marking), 8–14 ms of a cold memmap, malfind or check_syscall for work whose
 * result no one will use. Anything else still pending (a socket, a child process, a timer, a worker) and the
 * loop ends as it always does. 'exit' listeners run either way (process.exit emits 'exit'). Here rather than
 * in a module of its own: `--help` runs from dist/, where each module is a file to load.
 */
export function finish(code: number): void {
  process.exitCode = code;
  // Nothing active: each standard stream is a file (written synchronously) or was never made, so none holds
  // unwritten bytes, and asking process.stderr would make it (node:net for a pipe).
  if (process.getActiveResourcesInfo().length === 0) process.exit(code);
  // Asked after the streams are made: one made here holds its pipe or terminal too.
  const streams = [process.stdout, process.stderr];
  if (streams.every((s) => s.writableLength === 0) && onlyStreamsLeft(process.getActiveResourcesInfo(), streams.map((s, i) => streamResource(s, i + 1)))) process.exit(code);
}

/**
 * True when the active resources (process.getActiveResourcesInfo()) are exactly the standard streams' own
 * (undefined: a stream on a file, which holds none).
 */
export function onlyStreamsLeft(active: readonly string[], streams: readonly (string | undefined)[]): boolean {
  const left = streams.filter((r): r is string => r !== undefined);
  if (active.length !== left.length) return false;
  for (const r of active) {
    const at = left.indexOf(r);
    if (at < 0) return false;
    left.splice(at, 1);
  }
  return true;
}

/** The resource a standard stream holds open: a terminal or a pipe (or socket); a file holds none. */
function streamResource(stream: NodeJS.WriteStream, fd: number): string | undefined {
  if (stream.isTTY) return 'TTYWrap';
  try {
    const st = fstatSync(fd);
    return st.isFIFO() || st.isSocket() ? 'PipeWrap' : undefined;
  } catch {
    return 'unknown'; // matches no resource: the loop ends as usual
  }
}
