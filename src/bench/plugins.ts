/**
 * The plugin suite. Two measurements per plugin:
 *  - warm: attached once to the live guest, median of repeated runs (the
 *    real-time monitor's situation); targets pslist ≤ 1 ms, others ≤ 50 ms;
 *  - cold: a new Node process per plugin on an ELF dump of the same guest,
 *    with no profile cache (an incident responder's situation), wall time and
 *    peak RSS; targets ≤ 1 s and ≤ 200 MB (Volatility 3 measured here: 7–19 s,
 *    450–680 MB).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { acquireQmp } from '../qemu/discover.js';
import { findGuest } from '../lab/index.js';
import { attachKernel } from '../linux/attach.js';
import { runPlugin } from '../linux/plugin.js';
import { plugins } from '../linux/plugins/index.js';
import { median, type BenchTable } from './report.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

function targetMs(name: string): number {
  return name === 'pslist' ? 1 : 50;
}

export async function benchPluginsWarm(source: string, runs = 100, warmup = 20): Promise<BenchTable> {
  const kernel = await attachKernel(source);
  const rows: Record<string, unknown>[] = [];
  try {
    for (const plugin of plugins) {
      for (let i = 0; i < warmup; i++) runPlugin(plugin, kernel);
      const times: number[] = [];
      let last = runPlugin(plugin, kernel);
      for (let i = 0; i < runs; i++) {
        last = runPlugin(plugin, kernel);
        times.push(last.elapsedMs);
      }
      const med = median(times);
      rows.push({
        plugin: plugin.name,
        rows: last.rows.length,
        anomalies: Object.values(last.anomalyCounts).reduce((a, b) => a + (b ?? 0), 0),
        medianMs: +med.toFixed(3),
        targetMs: targetMs(plugin.name),
        ok: med <= targetMs(plugin.name) ? 'yes' : 'NO',
      });
    }
  } finally {
    await kernel.close();
  }
  return {
    name: 'plugins-warm',
    description: `warm per-plugin time on ${source}: median of ${runs} runs after ${warmup} warm-up runs`,
    columns: ['plugin', 'rows', 'anomalies', 'medianMs', 'targetMs', 'ok'],
    rows,
  };
}

/** Runs one CLI invocation in a new Node process; returns wall ms, peak RSS MB and exit code. */
function coldRun(args: string[]): { ms: number; rssMB: number; code: number } {
  const script =
    `const { main } = await import(${JSON.stringify(join(root, 'dist', 'src', 'cli', 'main.js'))});` +
    `const code = await main(${JSON.stringify(args)});` +
    `process.stderr.write('\\nBENCH-RSS ' + process.resourceUsage().maxRSS + '\\n'); process.exitCode = code;`;
  const t0 = performance.now();
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', maxBuffer: 1 << 28 });
  const ms = performance.now() - t0;
  const m = /BENCH-RSS (\d+)/.exec(r.stderr ?? '');
  return { ms, rssMB: m ? Number(m[1]) / 1024 : NaN, code: r.status ?? -1 };
}

export async function benchPluginsCold(source: string): Promise<BenchTable> {
  const name = source.startsWith('lab:') ? source.slice(4) : source;
  const guest = findGuest(name);
  if (!guest) throw new Error(`cold plugin bench needs a lab guest (got ${source})`);
  const dir = mkdtempSync(join(tmpdir(), 'vmsight-bench-dump-'));
  const dump = join(dir, 'guest.elf');
  const rows: Record<string, unknown>[] = [];
  try {
    const lease = await acquireQmp(guest.qmpSocket);
    try {
      await lease.client.execute('dump-guest-memory', { paging: false, protocol: `file:${dump}` }, 120_000);
    } finally {
      lease.release();
    }
    for (const plugin of plugins) {
      const runs = [0, 1].map(() => coldRun([plugin.name, dump, '--json', '--no-cache']));
      const ms = Math.min(...runs.map((r) => r.ms));
      const rss = Math.max(...runs.map((r) => r.rssMB));
      rows.push({
        plugin: plugin.name,
        exit: runs[0]!.code,
        wallMs: Math.round(ms),
        peakRssMB: Math.round(rss),
        ok: ms <= 1000 && rss <= 200 && runs[0]!.code === 0 ? 'yes' : 'NO',
      });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return {
    name: 'plugins-cold',
    description: 'a new Node process per plugin on a paging:false ELF dump of the guest, no profile cache (best of 2)',
    columns: ['plugin', 'exit', 'wallMs', 'peakRssMB', 'ok'],
    rows,
  };
}

export async function benchPlugins(source: string): Promise<BenchTable[]> {
  return [await benchPluginsWarm(source), await benchPluginsCold(source)];
}
