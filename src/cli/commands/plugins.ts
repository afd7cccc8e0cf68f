/**
 * Plugins as commands: `vmsight <plugin> <source>` attaches to the kernel,
 * runs the plugin (runPlugin checks its declared requirements first) and renders its rows;
 * anomalies met on the way are reported after the rows (stderr for tables,
 * a trailing record for --json). `vmsight plugins` lists them.
 */
import { attachKernel } from '../../linux/attach.js';
import { isAbsent, runPlugin, type Plugin, type PluginOptions } from '../../linux/plugin.js';
import { plugins } from '../../linux/plugins/index.js';
import type { Command, ParsedArgs } from '../command.js';
import type { Row } from '../render.js';
import { attachOptions, attachOptionSpec, requireSource } from './common.js';

/** Absent values render as '-' in tables and as {absent: kind} in JSON. */
function displayRow(row: Record<string, unknown>, json: boolean): Row {
  if (json) return row as Row;
  const out: Row = {};
  for (const [k, v] of Object.entries(row)) out[k] = isAbsent(v) ? undefined : v;
  return out;
}

function pluginCommand(plugin: Plugin<any>): Command {
  return {
    name: plugin.name,
    ...(plugin.aliases ? { aliases: plugin.aliases } : {}),
    summary: plugin.summary,
    usage: '<source> [options]',
    options: { ...attachOptionSpec, ...plugin.options },
    async run(args: ParsedArgs, ctx) {
      const spec = requireSource(args, `vmsight ${plugin.name} <source>`);
      const kernel = await attachKernel(spec, attachOptions(args));
      try {
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

export const pluginCommands: readonly Command[] = plugins.map(pluginCommand);

export const command: Command = {
  name: 'plugins',
  summary: 'list the analysis plugins',
  usage: '[--json]',
  async run(_args, ctx) {
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
