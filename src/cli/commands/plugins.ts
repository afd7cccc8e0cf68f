/**
 * Plugins as commands: `vmsight <plugin> <source>` attaches to the kernel,
 * runs the plugin in one pass (requirements checked first) and renders its
 * rows with the anomalies met on the way (in the JSON; on stderr for tables
 * and csv). `vmsight plugins` lists them.
 */
import { attachKernel } from '../../linux/attach.js';
import type { PassResult } from '../../linux/pass.js';
import { checkOptionValues, type Plugin, type PluginOptions, type PluginResult } from '../../linux/plugin.js';
import type { Command, ParsedArgs } from '../command.js';
import { optionInfo } from '../help.js';
import type { Output, Row } from '../render.js';
import { attachOptions, attachOptionSpec, requireSource } from './common.js';

/** The anomalies of a run as the JSON outputs carry them: total, counts by kind, the first items (capped at 1000). */
export function anomaliesRecord(result: PluginResult<object>): { total: number; counts: PluginResult['anomalyCounts']; items: PluginResult['anomalies'] } {
  const total = Object.values(result.anomalyCounts).reduce((a, b) => a + (b ?? 0), 0);
  return { total, counts: result.anomalyCounts, items: result.anomalies };
}

/**
 * Writes a run's rows and anomalies. --json: one object
 * `{ plugin, rows: [...], anomalies: { total, counts, items }, validation? }`;
 * --jsonl: one row per line, then one `{"anomalies": {...}}` line; table and
 * csv: the rows, and a one-line anomaly summary on stderr.
 */
export function writePluginResult(out: Output, plugin: Plugin<any>, result: PassResult<object>, stderr: (s: string) => void = (s) => process.stderr.write(s)): void {
  writePluginRun(out, plugin, result.rows, () => result, stderr);
}

/**
 * writePluginResult for rows handed over as they come (Pass.stream): they are written as the plugin yields
 * them, and `done()`, called once they are all written, gives the anomalies and validation that follow them.
 */
export function writePluginRun(
  out: Output,
  plugin: Plugin<any>,
  rows: Iterable<object>,
  done: () => PassResult<object>,
  stderr: (s: string) => void = (s) => process.stderr.write(s),
): void {
  // Rows go to the renderer as they are: it shows an absent value as '-' in tables and CSV, and as null with
  // its reason in JSON (a listing of 100k rows is neither copied nor re-wrapped).
  const display = rows as Iterable<Row>;
  if (out.format === 'json') {
    // The renderer's own JSON row (schema columns only, integers by column kind, absent values null with
    // reasons), written one row at a time.
    out.document({ plugin: plugin.name }, 'rows', plugin.columns, display, () => {
      const result = done();
      return { anomalies: anomaliesRecord(result), ...(result.validation ? { validation: result.validation } : {}) };
    });
    return;
  }
  out.rows(plugin.columns, display);
  const result = done();
  const anomalies = anomaliesRecord(result);
  if (out.format === 'jsonl') {
    out.record({ anomalies, ...(result.validation ? { validation: result.validation } : {}) });
    return;
  }
  if (anomalies.total) {
    const summary = Object.entries(result.anomalyCounts).map(([k, n]) => `${k} ${n}`).join(', ');
    stderr(`vmsight: ${plugin.name}: ${anomalies.total} anomalies (${summary}); first: ${result.anomalies[0]?.where} ${result.anomalies[0]?.detail ?? ''}\n`);
  }
  const v = result.validation;
  if (v) stderr(`vmsight: ${plugin.name}: ${v.validated ? 'validated' : 'NOT validated'} (${v.attempts} attempt${v.attempts === 1 ? '' : 's'}, ${v.changedRanges} changed ranges${v.changedValues ? `; ${v.changedValues} with values changed after they were read` : ''}${v.reason ? `; ${v.reason}` : ''})\n`);
}

/** The command that runs one plugin (exported for tests of the command path). */
export function pluginCommand(plugin: Plugin<any>): Command {
  return {
    name: plugin.name,
    ...(plugin.aliases ? { aliases: plugin.aliases } : {}),
    summary: plugin.summary,
    usage: '<source> [--validate] [options]',
    options: { ...attachOptionSpec, validate: { type: 'boolean' }, ...plugin.options },
    async run(args: ParsedArgs, ctx) {
      const spec = requireSource(args, `vmsight ${plugin.name} <source>`);
      checkOptionValues(plugin.name, plugin.options, args.values); // a bad option value fails before attaching
      const kernel = await attachKernel(spec, attachOptions(args));
      try {
        // One pass; --validate re-reads what the run read and retries it when the guest changed it meanwhile.
        // Rows are written as the plugin yields them (none kept), unless --validate must see them all first.
        const pass = kernel.startPass(args.values['validate'] === true ? { validate: true } : {});
        const run = pass.stream(plugin, args.values as PluginOptions);
        writePluginRun(ctx.out, plugin, run.rows, () => run.done());
        pass.end();
        if (ctx.debug) process.stderr.write(`vmsight: ${plugin.name} ran in ${run.done().elapsedMs.toFixed(2)} ms, output included (attach ${kernel.report.timings.total.toFixed(1)} ms)\n`);
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
    // JSON: aliases and options as arrays (each option with type, choices, default, description); tables and
    // csv: one line each (`vmsight <plugin> --help` has the details).
    const machine = ctx.out.format === 'json' || ctx.out.format === 'jsonl';
    ctx.out.rows(
      [
        { key: 'name', kind: 'str' },
        { key: 'version', kind: 'str' },
        { key: 'aliases', kind: 'str' },
        { key: 'options', kind: 'str' },
        { key: 'summary', kind: 'str' },
      ],
      plugins.map((p) => {
        const decls = Object.entries(p.options ?? {});
        return {
          name: p.name,
          version: p.version,
          aliases: machine ? [...(p.aliases ?? [])] : (p.aliases ?? []).join(' '),
          options: machine ? decls.map(([n, o]) => optionInfo(n, o)) : decls.map(([n]) => `--${n}`).join(' '),
          summary: p.summary,
        };
      }),
    );
  },
};
