/**
 * Cold start (`npm run bench -- cold`): the incident responder's situation, a
 * new process per command. Measured side by side in one run, each command as
 * a fresh child process: bare `node -e 0`, `vmsight --help`, and every plugin
 * on a paging:false ELF dump of the lab guest with no profile cache
 * (`--no-cache`). For each build of the CLI (the tsc output in dist/, and the
 * single-file bundles of `npm run build:bundle` when they exist: ES module,
 * and CommonJS through vm.Script with V8's code cache): median wall time and peak RSS, and the ratio of the wall time
 * to that of `node -e 0` runs interleaved with the command's own runs.
 *
 * Peak RSS comes from the child itself (process.resourceUsage().maxRSS in an
 * exit hook preloaded with --require into every command, node -e 0 included),
 * so no external `time` tool is needed.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { findGuest } from '../lab/index.js';
import { QmpClient } from '../qemu/qmp.js';
import { median, type BenchTable } from './report.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
/** Runs per command; the median is reported. */
const RUNS = Number(process.env['VMSIGHT_BENCH_COLD_RUNS'] ?? 5);
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

function measure(hook: string, dir: string, nodeArgs: readonly string[], args: readonly string[], env: NodeJS.ProcessEnv = {}): Sample {
  const rssFile = path.join(dir, 'rss.out');
  fs.rmSync(rssFile, { force: true });
  const t0 = performance.now();
  const r = spawnSync(process.execPath, ['--require', hook, ...nodeArgs, ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, ...env, VMSIGHT_BENCH_RSS: rssFile },
    maxBuffer: 16 << 20,
  });
  const wallMs = performance.now() - t0;
  const kb = fs.existsSync(rssFile) ? Number(fs.readFileSync(rssFile, 'utf8')) : NaN;
  if (r.status !== 0 && process.env['VMSIGHT_BENCH_VERBOSE']) process.stderr.write(`cold: ${args.join(' ')}: exit ${r.status}: ${r.stderr.toString().slice(0, 300)}\n`);
  return { wallMs, rssMb: kb / 1024, status: r.status };
}

interface Series extends Sample {
  /** Median of the `node -e 0` runs interleaved with this command's (the machine's load drifts). */
  readonly baseMs: number;
}

/** RUNS runs of a command, each after a `node -e 0` run, so both see the same load. */
function series(hook: string, dir: string, nodeArgs: readonly string[], args: readonly string[], env?: NodeJS.ProcessEnv): Series {
  measure(hook, dir, nodeArgs, args, env); // warm the OS page cache (and the code cache when enabled)
  const base: number[] = [];
  const runs: Sample[] = [];
  for (let i = 0; i < RUNS; i++) {
    base.push(measure(hook, dir, [], ['-e', '0']).wallMs);
    runs.push(measure(hook, dir, nodeArgs, args, env));
  }
  return {
    wallMs: median(runs.map((r) => r.wallMs)),
    rssMb: Math.max(...runs.map((r) => r.rssMb)),
    status: runs.find((r) => r.status !== 0)?.status ?? 0,
    baseMs: median(base),
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

/** The CLI builds there are: tsc's dist/ always; the esbuild bundles when `npm run build:bundle` made them. */
function builds(): { name: string; nodeArgs: string[]; entry: string; env?: NodeJS.ProcessEnv }[] {
  const out: { name: string; nodeArgs: string[]; entry: string; env?: NodeJS.ProcessEnv }[] = [];
  const dist = path.join(ROOT, 'bin', 'vmsight.js');
  if (!fs.existsSync(path.join(ROOT, 'dist', 'src', 'cli', 'main.js'))) throw new Error('cold: dist/ is missing; run npm run build');
  out.push({ name: 'dist', nodeArgs: [], entry: dist });
  const bundle = path.join(ROOT, 'dist', 'bundle', 'vmsight.mjs');
  if (fs.existsSync(bundle)) {
    out.push({ name: 'bundle', nodeArgs: [], entry: bundle });
    const cached = path.join(ROOT, 'dist', 'bundle', 'vmsight-cached.cjs');
    if (fs.existsSync(cached)) out.push({ name: 'bundle+v8-cache', nodeArgs: [], entry: cached });
  }
  return out;
}

export async function benchCold(source: string): Promise<BenchTable[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmsight-bench-cold-'));
  try {
    const hook = rssHook(dir);
    const dump = await dumpFor(source, dir);
    const { plugins } = await import('../linux/plugins/index.js');
    const bare = series(hook, dir, [], ['-e', '0']);
    const rows: Record<string, unknown>[] = [{ build: '-', command: 'node -e 0', wallMs: bare.wallMs.toFixed(1), baseMs: bare.baseMs.toFixed(1), ratio: (bare.wallMs / bare.baseMs).toFixed(2), rssMb: bare.rssMb.toFixed(1), ok: 'yes' }];
    const row = (build: string, command: string, s: Series, target: number): Record<string, unknown> => {
      const ratio = s.wallMs / s.baseMs;
      return {
        build,
        command,
        wallMs: s.wallMs.toFixed(1),
        baseMs: s.baseMs.toFixed(1),
        ratio: ratio.toFixed(2),
        rssMb: s.rssMb.toFixed(1),
        ok: s.status !== 0 ? `exit ${s.status}` : ratio <= target && s.rssMb <= TARGET_RSS_MB ? 'yes' : 'no',
      };
    };
    for (const b of builds()) {
      rows.push(row(b.name, 'vmsight --help', series(hook, dir, b.nodeArgs, [b.entry, '--help'], b.env), TARGET_HELP));
      for (const p of plugins) rows.push(row(b.name, p.name, series(hook, dir, b.nodeArgs, [b.entry, p.name, dump, '--no-cache'], b.env), TARGET_PLUGIN));
    }
    return [
      {
        name: 'cold',
        description: `cold start, one process per command, median of ${RUNS} (dump ${path.basename(dump)}, ${(fs.statSync(dump).size / 2 ** 20).toFixed(0)} MiB, --no-cache); targets: --help ≤ ${TARGET_HELP}×, plugin ≤ ${TARGET_PLUGIN}× node -e 0, RSS ≤ ${TARGET_RSS_MB} MB`,
        columns: ['build', 'command', 'wallMs', 'baseMs', 'ratio', 'rssMb', 'ok'],
        rows,
      },
    ];
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
