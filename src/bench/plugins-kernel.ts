/**
 * Files, network and kernel-integrity plugins benchmark: warm time per
 * plugin run on a live guest (the monitor re-runs plugins many times a
 * second), with the row count and anomaly total of the last run. Target:
 * every plugin ≤ 50 ms on a 256 MiB guest.
 *
 * Run directly: `npx tsx src/bench/plugins-kernel.ts SOURCE [--runs N]`
 * (SOURCE: a lab guest name, shm:/dev/shm/NAME, an image path).
 */
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { attachKernel } from '../linux/attach.js';
import type { Kernel } from '../linux/kernel.js';
import { runPlugin, type Plugin, type PluginOptions } from '../linux/plugin.js';
import checkIdt from '../linux/plugins/check_idt.js';
import checkSyscall from '../linux/plugins/check_syscall.js';
import hiddenModules from '../linux/plugins/hidden_modules.js';
import ifconfig from '../linux/plugins/ifconfig.js';
import kallsyms from '../linux/plugins/kallsyms.js';
import kmsg from '../linux/plugins/kmsg.js';
import lsmod from '../linux/plugins/lsmod.js';
import lsof from '../linux/plugins/lsof.js';
import mountinfo from '../linux/plugins/mountinfo.js';
import sockstat from '../linux/plugins/sockstat.js';
import { median, printTable, type BenchTable } from './report.js';

/** Each plugin with the options it is benchmarked with, and its target in ms. */
export const KERNEL_PLUGINS: readonly { plugin: Plugin<any>; options?: PluginOptions; targetMs: number }[] = [
  { plugin: lsof, targetMs: 50 },
  { plugin: sockstat, targetMs: 50 },
  { plugin: ifconfig, targetMs: 50 },
  { plugin: mountinfo, targetMs: 50 },
  { plugin: lsmod, targetMs: 50 },
  { plugin: hiddenModules, targetMs: 50 },
  { plugin: checkSyscall, targetMs: 50 },
  { plugin: checkIdt, targetMs: 50 },
  { plugin: kmsg, targetMs: 50 },
  { plugin: kallsyms, targetMs: 50 },
];

export interface KernelBenchOptions {
  /** Timed runs per plugin after the warm-up (default 50). */
  runs?: number;
  /** Untimed warm-up runs per plugin (default 10). */
  warmup?: number;
}

/** Times every plugin on an attached kernel. */
export function benchKernelPluginsOn(kernel: Kernel, opts: KernelBenchOptions = {}): BenchTable {
  const runs = opts.runs ?? 50;
  const warmup = opts.warmup ?? 10;
  const rows: Record<string, unknown>[] = [];
  for (const { plugin, options, targetMs } of KERNEL_PLUGINS) {
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
      plugin: plugin.name,
      rows: last.rows.length,
      anomalies: Object.values(last.anomalyCounts).reduce((a, b) => a + (b ?? 0), 0),
      medianMs: med.toFixed(3),
      p90Ms: sorted[Math.floor(sorted.length * 0.9)]!.toFixed(3),
      targetMs,
      ok: med <= targetMs ? 'yes' : 'NO',
    });
  }
  return {
    name: 'plugins-kernel',
    description: `warm per-plugin time, median and p90 of ${runs} runs after ${warmup} warm-up runs`,
    columns: ['plugin', 'rows', 'anomalies', 'medianMs', 'p90Ms', 'targetMs', 'ok'],
    rows,
  };
}

/** Attaches to `source` and times every plugin. */
export async function benchKernelPlugins(source: string, opts: KernelBenchOptions = {}): Promise<BenchTable> {
  const kernel = await attachKernel(source);
  try {
    return benchKernelPluginsOn(kernel, opts);
  } finally {
    await kernel.close();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { runs: { type: 'string' } } });
  const source = positionals[0];
  if (!source) {
    process.stderr.write('usage: plugins-kernel.ts SOURCE [--runs N]\n');
    process.exit(2);
  }
  printTable(await benchKernelPlugins(source, values.runs ? { runs: Number(values.runs) } : {}));
}
