/**
 * Every command, listed explicitly (no directory scanning), as a light table:
 * name, aliases and summary, and how to load the command's module. Nothing
 * heavy is imported until a command runs, so `vmsight --help` and a single
 * plugin run load only what they use (cold start). Order is the order of
 * `vmsight help`. test/cli/registry.test.ts checks each entry against the
 * command it loads.
 */
import type { Command } from './command.js';
import { PLUGIN_CATALOG } from './plugin-catalog.js';

export interface CommandEntry {
  readonly name: string;
  readonly aliases?: readonly string[];
  /** One line for `vmsight help`. */
  readonly summary: string;
  /** A plugin (shown apart in `vmsight help`). */
  readonly plugin: boolean;
  load(): Promise<Command>;
}

const entry = (name: string, summary: string, load: () => Promise<{ command: Command }>, aliases?: readonly string[]): CommandEntry => ({
  name,
  summary,
  plugin: false,
  ...(aliases ? { aliases } : {}),
  load: async () => (await load()).command,
});

const COMMANDS: readonly CommandEntry[] = [
  entry('demo', 'boot the built-in lab guest (if needed) and introspect it live: kernel facts and process list', () => import('./commands/demo.js')),
  entry('lab', 'the built-in guest lab: boot, list, stop and inspect QEMU guests with a known scenario', () => import('./commands/lab.js')),
  entry('info', 'technique, RAM layout, kernel banner, vmcoreinfo summary, KASLR, paging mode, time per step', () => import('./commands/info.js')),
  entry('sources', 'list memory-access techniques, or rank them for a target', () => import('./commands/sources.js'), ['techniques']),
  entry('read', 'hexdump guest memory at a physical or virtual address', () => import('./commands/read.js')),
  entry('translate', 'walk the page tables for a virtual address: every level, the physical address, page size, flags', () => import('./commands/translate.js')),
  entry(
    'profile',
    'build the kernel profile from the guest (vmcoreinfo, kallsyms, BTF); `profile export <source> --isf FILE` writes a Volatility 3 ISF',
    () => import('./commands/profile.js'),
  ),
  entry(
    'symbols',
    "kernel symbols from the guest's own kallsyms (KASLR applied), a System.map (--profile) or a kernel image (--image); filter by glob or /regex/",
    () => import('./commands/symbols.js'),
    ['ksyms'],
  ),
  entry('types', "a kernel type's layout (offsets, sizes, bitfields, holes) from the guest's BTF or a profile file", () => import('./commands/types.js'), ['type', 'pahole']),
  entry('acquire', 'write guest memory to an ELF core (paused for consistency unless --live), with its SHA-256 and the kernel facts', () => import('./commands/acquire.js')),
  entry('monitor', 'watch a live guest and stream change events (processes, modules, sockets, creds, hooks, …)', () => import('./commands/monitor.js')),
  entry('events', 'events a monitor recorded in its store (--store), filtered by time, type, pid, key', () => import('./commands/events.js')),
  entry('bench', 'run the VMI trade-off study (frequency, host cost, guest impact, consistency of every technique)', () => import('./commands/bench.js')),
  entry('plugins', 'list the analysis plugins', () => import('./commands/plugins.js')),
];

const PLUGINS: readonly CommandEntry[] = PLUGIN_CATALOG.map((p) => ({
  name: p.name,
  ...(p.aliases.length ? { aliases: p.aliases } : {}),
  summary: p.summary,
  plugin: true,
  load: async () => {
    const [{ pluginCommand }, plugin] = await Promise.all([import('./commands/plugins.js'), p.load()]);
    return pluginCommand(plugin);
  },
}));

export const commandEntries: readonly CommandEntry[] = [...COMMANDS, ...PLUGINS];

/** The entry a word names (a command name or alias, a plugin name or Volatility name). */
export function findEntry(name: string): CommandEntry | undefined {
  return commandEntries.find((c) => c.name === name || c.aliases?.includes(name));
}
