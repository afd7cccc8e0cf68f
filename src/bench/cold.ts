/**
 * Cold start (`npm run bench -- cold`): the incident responder's situation, a
 * new process per command. Measured side by side in one run, each command as
 * a fresh child process: bare `node -e 0`, `vmsight --help`, and every plugin
 * on a paging:false ELF dump of the lab guest with no profile cache
 * (`--no-cache`). For each build of the CLI: the default entry bin/vmsight.js
 * (whatever it picks), the tsc output in dist/ on its own, and the single-file
 * bundles of `npm run build:bundle` when they exist (ES module, and CommonJS
 * through vm.Script with V8's code cache).
 *
 * The load of a shared machine drifts within seconds, so each of a command's
 * RUNS runs is paired with a `node -e 0` run right beside it (the order
 * alternating, so neither side always goes first); a row reports the median
 * of the per-pair ratios and their spread (quartiles), the medians of both
 * wall times, and the peak RSS.
 *
 * Peak RSS comes from the child itself (process.resourceUsage().maxRSS in an
 * exit hook preloaded with --require into every command, node -e 0 included),
 * so no external `time` tool is needed.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { findGuest } from '../lab/index.js';
import { QmpClient } from '../qemu/qmp.js';
import { median, type BenchTable } from './report.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
/** Runs per command (each paired with a `node -e 0` run); the median ratio is reported. */
const RUNS = Number(process.env['VMSIGHT_BENCH_COLD_RUNS'] ?? 11);
/** Targets of issue 8: --help ≤ 1.3× node -e 0, a plugin ≤ 2.5×, peak RSS ≤ 80 MB. */
const TARGET_HELP = 1.3;
const TARGET_PLUGIN = 2.5;
const TARGET_RSS_MB = 80;

interface Sample {
  readonly wallMs: number;
  readonly rssMb: number;
  readonly status: number | null;
}

/** The CommonJS exit hook that reports a child's peak RSS to the file named in VMSIGHT_BENCH_RSS. */
function rssHook(dir: string): string {
  const file = path.join(dir, 'rss-hook.cjs');
  fs.writeFileSync(
    file,
    "process.on('exit', () => { const f = process.env.VMSIGHT_BENCH_RSS; if (f) require('node:fs').writeFileSync(f, String(process.resourceUsage().maxRSS)); });\n",
  );
  return file;
}

function measure(hook: string, dir: string, args: readonly string[]): Sample {
  const rssFile = path.join(dir, 'rss.out');
  fs.rmSync(rssFile, { force: true });
  const t0 = performance.now();
  const r = spawnSync(process.execPath, ['--require', hook, ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, VMSIGHT_BENCH_RSS: rssFile },
    maxBuffer: 16 << 20,
  });
  const wallMs = performance.now() - t0;
  const kb = fs.existsSync(rssFile) ? Number(fs.readFileSync(rssFile, 'utf8')) : NaN;
  if (r.status !== 0 && process.env['VMSIGHT_BENCH_VERBOSE']) process.stderr.write(`cold: ${args.join(' ')}: exit ${r.status}: ${r.stderr.toString().slice(0, 300)}\n`);
  return { wallMs, rssMb: kb / 1024, status: r.status };
}

interface Series {
  /** Medians of the command's and of the paired `node -e 0` runs' wall times. */
  readonly wallMs: number;
  readonly baseMs: number;
  /** Median, first and third quartile of the per-pair ratios command / node -e 0. */
  readonly ratio: number;
  readonly ratioQ1: number;
  readonly ratioQ3: number;
  /** Largest peak RSS of the command's runs. */
  readonly rssMb: number;
  /** The first non-zero exit status, else 0. */
  readonly status: number | null;
}

/** The q-quantile of xs (linear between order statistics). */
function quantile(xs: readonly number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  const at = (s.length - 1) * q;
  const lo = Math.floor(at);
  return s[lo]! + (s[Math.min(lo + 1, s.length - 1)]! - s[lo]!) * (at - lo);
}

/** RUNS runs of a command, each paired with a `node -e 0` run (alternating which goes first), so both see the same load. */
function series(hook: string, dir: string, args: readonly string[]): Series {
  measure(hook, dir, args); // warm the OS page cache (and the code cache when enabled)
  const base: number[] = [];
  const runs: Sample[] = [];
  for (let i = 0; i < RUNS; i++) {
    const bare = () => base.push(measure(hook, dir, ['-e', '0']).wallMs);
    if (i % 2 === 0) bare();
    runs.push(measure(hook, dir, args));
    if (i % 2 === 1) bare();
  }
  const ratios = runs.map((r, i) => r.wallMs / base[i]!);
  return {
    wallMs: median(runs.map((r) => r.wallMs)),
    baseMs: median(base),
    ratio: median(ratios),
    ratioQ1: quantile(ratios, 0.25),
    ratioQ3: quantile(ratios, 0.75),
    rssMb: Math.max(...runs.map((r) => r.rssMb)),
    status: runs.find((r) => r.status !== 0)?.status ?? 0,
  };
}

/** A paging:false ELF dump of a lab guest (through the first free QMP socket of its record), or the given file. */
async function dumpFor(source: string, dir: string): Promise<string> {
  const file = source.replace(/^file:/, '');
  if (fs.existsSync(file) && fs.statSync(file).isFile()) return file;
  const name = source.replace(/^lab:/, '');
  const guest = findGuest(name);
  if (!guest) throw new Error(`cold: ${source} is neither a dump file nor a running lab guest`);
  const out = path.join(dir, `${name}-paging-false.elf`);
  let last: unknown;
  for (const sock of guest.qmpSockets ?? [guest.qmpSocket]) {
    let q: QmpClient | undefined;
    try {
      q = await QmpClient.connect(sock, { timeoutMs: 3000 });
      await q.execute('dump-guest-memory', { paging: false, protocol: `file:${out}` }, 300_000);
      return out;
    } catch (e) {
      last = e;
    } finally {
      await q?.close();
    }
  }
  throw new Error(`cold: could not dump ${name} through QMP: ${(last as Error)?.message}`);
}

interface Build {
  readonly name: string;
  readonly entry: string;
}

/**
 * The CLI builds there are: the default entry bin/vmsight.js; tsc's dist/ through an entry of the bench's own
 * (what bin/vmsight.js was before it could pick a bundle); the esbuild bundles when `npm run build:bundle` made
 * them. VMSIGHT_BENCH_COLD_BUILDS=bin,dist,… measures only those builds (VMSIGHT_BENCH_COLD_PLUGINS=pslist,…
 * only those plugins, VMSIGHT_BENCH_COLD_RUNS the runs per command).
 */
function builds(dir: string): Build[] {
  if (!fs.existsSync(path.join(ROOT, 'dist', 'src', 'cli', 'main.js'))) throw new Error('cold: dist/ is missing; run npm run build');
  const distEntry = path.join(dir, 'dist-entry.mjs');
  fs.writeFileSync(distEntry, `import { main } from ${JSON.stringify(pathToFileURL(path.join(ROOT, 'dist', 'src', 'cli', 'main.js')).href)};\nprocess.exitCode = await main(process.argv.slice(2));\n`);
  const all: Build[] = [
    { name: 'bin', entry: path.join(ROOT, 'bin', 'vmsight.js') },
    { name: 'dist', entry: distEntry },
    { name: 'bundle', entry: path.join(ROOT, 'dist', 'bundle', 'vmsight.mjs') },
    { name: 'bundle+v8-cache', entry: path.join(ROOT, 'dist', 'bundle', 'vmsight-cached.cjs') },
  ];
  const wanted = process.env['VMSIGHT_BENCH_COLD_BUILDS']?.split(',');
  return all.filter((b) => fs.existsSync(b.entry) && (!wanted || wanted.includes(b.name)));
}

/** What a plugin needs beyond a source to run to exit 0 (procdump writes one process's mappings). */
function pluginArgs(name: string, dir: string): string[] {
  if (name === 'procdump') return ['--pid', '1', '--dump', path.join(dir, 'procdump')];
  return [];
}

export async function benchCold(source: string): Promise<BenchTable[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmsight-bench-cold-'));
  try {
    const hook = rssHook(dir);
    const dump = await dumpFor(source, dir);
    const only = process.env['VMSIGHT_BENCH_COLD_PLUGINS']?.split(',');
    const plugins = (await import('../linux/plugins/index.js')).plugins.filter((p) => !only || only.includes(p.name));
    const bare = series(hook, dir, ['-e', '0']);
    const row = (build: string, command: string, s: Series, target: number): Record<string, unknown> => ({
      build,
      command,
      wallMs: s.wallMs.toFixed(1),
      baseMs: s.baseMs.toFixed(1),
      ratio: s.ratio.toFixed(2),
      spread: `${s.ratioQ1.toFixed(2)}–${s.ratioQ3.toFixed(2)}`,
      rssMb: s.rssMb.toFixed(1),
      ok: s.status !== 0 ? `exit ${s.status}` : s.ratio <= target && s.rssMb <= TARGET_RSS_MB ? 'yes' : 'no',
    });
    const rows: Record<string, unknown>[] = [row('-', 'node -e 0', bare, Infinity)];
    const load0 = os.loadavg();
    for (const b of builds(dir)) {
      rows.push(row(b.name, 'vmsight --help', series(hook, dir, [b.entry, '--help']), TARGET_HELP));
      for (const p of plugins) rows.push(row(b.name, p.name, series(hook, dir, [b.entry, p.name, dump, '--no-cache', ...pluginArgs(p.name, dir)]), TARGET_PLUGIN));
    }
    const load1 = os.loadavg();
    const loads = `load average ${load0[0]!.toFixed(2)} at the start, ${load1[0]!.toFixed(2)} at the end (${os.cpus().length} CPUs)`;
    return [
      {
        name: 'cold',
        description: `cold start, one process per command, median ratio of ${RUNS} runs each paired with a node -e 0 run, spread = quartiles of the ratios (dump ${path.basename(dump)}, ${(fs.statSync(dump).size / 2 ** 20).toFixed(0)} MiB, --no-cache); targets: --help ≤ ${TARGET_HELP}×, plugin ≤ ${TARGET_PLUGIN}× node -e 0, RSS ≤ ${TARGET_RSS_MB} MB; ${loads}`,
        columns: ['build', 'command', 'wallMs', 'baseMs', 'ratio', 'spread', 'rssMb', 'ok'],
        rows,
      },
    ];
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
