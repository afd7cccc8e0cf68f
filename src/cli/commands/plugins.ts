/**
 * Plugins as commands: `vmsight <plugin> <source>` attaches to the kernel,
 * checks the plugin's declared requirements, runs it and renders its rows;
 * anomalies met on the way are reported after the rows (stderr for tables,
 * a trailing record for --json). `vmsight plugins` lists them.
 */
import { ProfileError } from '../../core/errors.js';
import { attachKernel } from '../../linux/attach.js';
import type { Kernel } from '../../linux/kernel.js';
import { checkOptionValues, isAbsent, runPlugin, type Plugin, type PluginOptions, type Requirements } from '../../linux/plugin.js';
import type { Command, ParsedArgs } from '../command.js';
import type { Row } from '../render.js';
import { attachOptions, attachOptionSpec, requireSource } from './common.js';

/** Throws a ProfileError naming the first requirement the kernel's profile lacks. */
export function checkRequirements(kernel: Kernel, plugin: Plugin<any>): void {
  const r: Requirements = plugin.requires;
  const tried = [kernel.symbols.source, kernel.types.source];
  for (const s of r.symbols ?? [])
    if (!kernel.hasSymbol(s)) throw new ProfileError(`${plugin.name} needs symbol ${s}`, { symbol: s, tried });
  for (const t of r.types ?? [])
    if (!kernel.types.hasType(t)) throw new ProfileError(`${plugin.name} needs type ${t}`, { type: t, tried });
  for (const [t, f] of r.fields ?? [])
    if (!kernel.types.hasMember(t, f)) throw new ProfileError(`${plugin.name} needs ${t}.${f}`, { type: t, field: f, tried });
  for (const group of r.anyOf ?? [])
    if (!group.some(([t, f]) => kernel.types.hasMember(t, f)))
      throw new ProfileError(`${plugin.name} needs one of ${group.map(([t, f]) => `${t}.${f}`).join(', ')}`, { tried });
}

/** Absent values render as '-' in tables and as {absent: kind} in JSON. */
function displayRow(row: Record<string, unknown>, json: boolean): Row {
  if (json) return row as Row;
  const out: Row = {};
  for (const [k, v] of Object.entries(row)) out[k] = isAbsent(v) ? undefined : v;
  return out;
}

/** The command that runs one plugin (exported for tests of the command path). */
export function pluginCommand(plugin: Plugin<any>): Command {
  return {
    name: plugin.name,
    ...(plugin.aliases ? { aliases: plugin.aliases } : {}),
    summary: plugin.summary,
    usage: '<source> [options]',
    options: { ...attachOptionSpec, ...plugin.options },
    async run(args: ParsedArgs, ctx) {
      const spec = requireSource(args, `vmsight ${plugin.name} <source>`);
      checkOptionValues(plugin.name, plugin.options, args.values); // a bad option value fails before attaching
      const kernel = await attachKernel(spec, attachOptions(args));
      try {
        checkRequirements(kernel, plugin);
        const result = runPlugin(plugin, kernel, args.values as PluginOptions);
        const json = ctx.out.format !== 'table' && ctx.out.format !== 'csv';
        ctx.out.rows(plugin.columns, result.rows.map((r) => displayRow(r as Record<string, unknown>, json)));
        const total = Object.values(result.anomalyCounts).reduce((a, b) => a + (b ?? 0), 0);
        if (total) {
          const summary = Object.entries(result.anomalyCounts).map(([k, n]) => `${k} ${n}`).join(', ');
          process.stderr.write(`vmsight: ${plugin.name}: ${total} anomalies (${summary}); first: ${result.anomalies[0]?.where} ${result.anomalies[0]?.detail ?? ''}\n`);
        }
        if (ctx.debug) process.stderr.write(`vmsight: ${plugin.name} ran in ${result.elapsedMs.toFixed(2)} ms (attach ${kernel.report.timings.total.toFixed(1)} ms)\n`);
      } finally {
        await kernel.close();
      }
    },
  };
}

export const command: Command = {
  name: 'plugins',
  summary: 'list the analysis plugins',
  usage: '[--json]',
  async run(_args, ctx) {
    const { plugins } = await import('../../linux/plugins/index.js'); // only this listing loads every plugin
    ctx.out.rows(
      [
        { key: 'name', kind: 'str' },
        { key: 'version', kind: 'str' },
        { key: 'aliases', kind: 'str' },
        { key: 'summary', kind: 'str' },
      ],
      plugins.map((p) => ({ name: p.name, version: p.version, aliases: (p.aliases ?? []).join(' '), summary: p.summary })),
    );
  },
};
