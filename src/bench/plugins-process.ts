/**
 * Process and memory plugins benchmark: warm time per plugin run on a live
 * guest (the real-time monitor re-runs plugins many times a second), with
 * the row count and anomaly total of the last run. Targets: pslist ≤ 1 ms,
 * every plugin ≤ 50 ms on a 256 MiB guest.
 *
 * Run directly: `npx tsx src/bench/plugins-process.ts SOURCE [--runs N]`
 * (SOURCE: a lab guest name, shm:/dev/shm/NAME, an image path).
 */
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { attachKernel } from '../linux/attach.js';
import type { Kernel } from '../linux/kernel.js';
import { runPlugin, type Plugin, type PluginOptions } from '../linux/plugin.js';
import capabilities from '../linux/plugins/capabilities.js';
import creds from '../linux/plugins/creds.js';
import elfs from '../linux/plugins/elfs.js';
import envars from '../linux/plugins/envars.js';
import kthreads from '../linux/plugins/kthreads.js';
import malfind from '../linux/plugins/malfind.js';
import maps from '../linux/plugins/maps.js';
import namespaces from '../linux/plugins/namespaces.js';
import psaux from '../linux/plugins/psaux.js';
import pslist from '../linux/plugins/pslist.js';
import pstree from '../linux/plugins/pstree.js';
import psxview from '../linux/plugins/psxview.js';
import threads from '../linux/plugins/threads.js';
import { median, printTable, type BenchTable } from './report.js';

/** Each plugin with the options it is benchmarked with, and its target in ms. */
export const PROCESS_PLUGINS: readonly { plugin: Plugin<any>; options?: PluginOptions; targetMs: number }[] = [
  { plugin: pslist, targetMs: 1 },
  { plugin: pslist, options: { threads: true }, targetMs: 50 },
  { plugin: pstree, targetMs: 50 },
  { plugin: psaux, targetMs: 50 },
  { plugin: envars, targetMs: 50 },
  { plugin: threads, targetMs: 50 },
  { plugin: kthreads, targetMs: 50 },
  { plugin: psxview, targetMs: 50 },
  { plugin: creds, targetMs: 50 },
  { plugin: capabilities, targetMs: 50 },
  { plugin: namespaces, targetMs: 50 },
  { plugin: maps, targetMs: 50 },
  { plugin: elfs, targetMs: 50 },
  { plugin: malfind, targetMs: 50 },
];

export interface ProcessBenchOptions {
  /** Timed runs per plugin after the warm-up (default 200). */
  runs?: number;
  /** Untimed warm-up runs (JIT, translation cache) per plugin (default 50). */
  warmup?: number;
}

/** Times every plugin on an attached kernel. */
export function benchProcessPluginsOn(kernel: Kernel, opts: ProcessBenchOptions = {}): BenchTable {
  const runs = opts.runs ?? 200;
  const warmup = opts.warmup ?? 50;
  const rows: Record<string, unknown>[] = [];
  for (const { plugin, options, targetMs } of PROCESS_PLUGINS) {
    const o = options ?? {};
    for (let i = 0; i < warmup; i++) runPlugin(plugin, kernel, o);
    const times: number[] = [];
    let last = runPlugin(plugin, kernel, o);
    for (let i = 0; i < runs; i++) {
      last = runPlugin(plugin, kernel, o);
      times.push(last.elapsedMs);
    }
    const sorted = [...times].sort((a, b) => a - b);
    const med = median(times);
    rows.push({
      plugin: plugin.name + (options?.threads ? ' --threads' : ''),
      rows: last.rows.length,
      anomalies: Object.values(last.anomalyCounts).reduce((a, b) => a + (b ?? 0), 0),
      medianMs: med.toFixed(3),
      p90Ms: sorted[Math.floor(sorted.length * 0.9)]!.toFixed(3),
      targetMs,
      ok: med <= targetMs ? 'yes' : 'NO',
    });
  }
  return {
    name: 'plugins-process',
    description: `warm per-plugin time, median and p90 of ${runs} runs after ${warmup} warm-up runs`,
    columns: ['plugin', 'rows', 'anomalies', 'medianMs', 'p90Ms', 'targetMs', 'ok'],
    rows,
  };
}

/** Attaches to `source` and times every plugin. */
export async function benchProcessPlugins(source: string, opts: ProcessBenchOptions = {}): Promise<BenchTable> {
  const kernel = await attachKernel(source);
  try {
    return benchProcessPluginsOn(kernel, opts);
  } finally {
    await kernel.close();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { runs: { type: 'string' } } });
  const source = positionals[0];
  if (!source) {
    process.stderr.write('usage: plugins-process.ts SOURCE [--runs N]\n');
    process.exit(2);
  }
  printTable(await benchProcessPlugins(source, values.runs ? { runs: Number(values.runs) } : {}));
}
