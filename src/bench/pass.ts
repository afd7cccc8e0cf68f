/**
 * The pass suite: what reusing translations across passes buys on an
 * unchanged live guest, and what the optimistic consistent mode costs.
 * For each workload (pslist; pslist+lsmod+sockstat+lsof+maps), in one run:
 *  - reuse: passes that keep cached translations (each re-checked per entry);
 *  - reuse:false: passes that reuse nothing (every translation walked again);
 *  - validate: reusing passes that also record and re-check what they read, every plugin run;
 *  - validate+reuse: the same, handing over an earlier pass's validated run whose reads all still hold;
 * median µs per pass (refresh included), walks and entry re-checks per pass,
 * and the ratios against the reusing pass.
 */
import { attachKernel, type AttachedKernel } from '../linux/attach.js';
import type { PassOptions } from '../linux/pass.js';
import type { Plugin } from '../linux/plugin.js';
import { plugins } from '../linux/plugins/index.js';
import { median, type BenchTable } from './report.js';

const WORKLOADS: readonly (readonly string[])[] = [['pslist'], ['pslist', 'lsmod', 'sockstat', 'lsof', 'maps']];

interface Measured {
  readonly us: number;
  readonly walks: number;
  readonly checks: number;
  readonly validated: number;
  readonly retries: number;
  readonly reused: number;
}

const MODES: readonly { readonly mode: string; readonly options: PassOptions }[] = [
  { mode: 'reuse', options: {} },
  { mode: 'reuse:false', options: { reuse: false } },
  { mode: 'validate', options: { validate: { reuseRuns: false } } },
  { mode: 'validate+reuse', options: { validate: true } },
];

/** Passes of every mode in turn (interleaved, so drift on a shared machine hits every mode alike). */
async function measure(kernel: AttachedKernel, work: readonly Plugin<any>[], runs: number, warmup: number): Promise<Measured[]> {
  const times: number[][] = MODES.map(() => []);
  const totals = MODES.map(() => ({ walks: 0, checks: 0, validated: 0, retries: 0, reused: 0 }));
  const space = kernel.space;
  for (let i = 0; i < warmup + runs; i++) {
    for (let m = 0; m < MODES.length; m++) {
      const w0 = space.stats.misses;
      const c0 = space.translator.tables.entryChecks;
      const t0 = performance.now();
      const pass = await kernel.pass(MODES[m]!.options);
      for (const p of work) pass.run(p);
      const sum = pass.end();
      const dt = performance.now() - t0;
      if (i < warmup) continue;
      times[m]!.push(dt * 1000);
      const t = totals[m]!;
      t.walks += space.stats.misses - w0;
      t.checks += space.translator.tables.entryChecks - c0;
      if (sum.validation?.validated) t.validated++;
      t.retries += sum.validation?.retries ?? 0;
      t.reused += sum.validation?.reused ?? 0;
    }
  }
  return MODES.map((_, m) => ({
    us: median(times[m]!),
    walks: totals[m]!.walks / runs,
    checks: totals[m]!.checks / runs,
    validated: totals[m]!.validated / runs,
    retries: totals[m]!.retries / runs,
    reused: totals[m]!.reused / runs,
  }));
}

/** The live techniques a monitor would use: live map (zero-copy) and live read (a copy per read: walks cost table reads). */
const TECHNIQUES = ['live-map', 'live-read'] as const;

export async function benchPass(source: string, runs = 100, warmup = 10): Promise<BenchTable[]> {
  const rows: Record<string, unknown>[] = [];
  for (const technique of TECHNIQUES) {
    const spec = `${source}${source.includes('?') ? '&' : '?'}technique=${technique}`;
    const kernel = await attachKernel(spec);
    try {
      for (const names of WORKLOADS) {
        const work = names.map((n) => {
          const p = plugins.find((x) => x.name === n);
          if (!p) throw new Error(`bench pass: no plugin ${n}`);
          return p as Plugin<any>;
        });
        const measured = await measure(kernel, work, runs, warmup);
        const reuse = measured[0]!;
        MODES.forEach(({ mode }, i) => {
          const m = measured[i]!;
          rows.push({
            technique,
            workload: names.join('+'),
            mode,
            usPerPass: Math.round(m.us),
            vsReuse: +(m.us / reuse.us).toFixed(2),
            walksPerPass: Math.round(m.walks),
            entryChecksPerPass: Math.round(m.checks),
            validatedShare: mode.startsWith('validate') ? +m.validated.toFixed(2) : '',
            retriesPerPass: mode.startsWith('validate') ? +m.retries.toFixed(2) : '',
            reusedRunsPerPass: mode.startsWith('validate') ? +m.reused.toFixed(2) : '',
          });
        });
      }
    } finally {
      await kernel.close();
    }
  }
  return [
    await benchValidatePerPlugin(source),
    {
      name: 'pass',
      description: `passes over the live guest ${source} (refresh included), median of ${runs} after ${warmup} warm-up, modes interleaved; vsReuse = time / the reusing pass's`,
      columns: ['technique', 'workload', 'mode', 'usPerPass', 'vsReuse', 'walksPerPass', 'entryChecksPerPass', 'validatedShare', 'retriesPerPass', 'reusedRunsPerPass'],
      rows,
    },
  ];
}

/**
 * The optimistic consistent mode per plugin on the running guest (live map):
 * how often a run's reads were one consistent state at the first try, what
 * changed under it, and what validating costs against a plain run.
 */
async function benchValidatePerPlugin(source: string, runs = 20): Promise<BenchTable> {
  const spec = `${source}${source.includes('?') ? '&' : '?'}technique=live-map`;
  const kernel = await attachKernel(spec);
  const rows: Record<string, unknown>[] = [];
  try {
    // A plugin with a required option (procdump's --dump: it writes files) has no run without one: left out.
    const runnable = (plugins as readonly Plugin<any>[]).filter((p) => !Object.values(p.options ?? {}).some((d) => 'required' in d && d.required));
    for (const plugin of runnable) {
      const plain: number[] = [];
      const checked: number[] = [];
      const kept: number[] = [];
      let reused = 0;
      let firstTry = 0;
      let validated = 0;
      let retries = 0;
      let changed = 0;
      let watched = 0;
      for (let i = 0; i < runs + 2; i++) {
        let pass = await kernel.pass();
        let t0 = performance.now();
        pass.run(plugin);
        pass.end();
        if (i >= 2) plain.push(performance.now() - t0);
        pass = await kernel.pass({ validate: { reuseRuns: false } });
        t0 = performance.now();
        const r = pass.run(plugin);
        pass.end();
        const checkedMs = performance.now() - t0;
        // A second validated pass right after, that may hand the first one's run over (reuseRuns: the default).
        pass = await kernel.pass({ validate: true });
        t0 = performance.now();
        const again = pass.run(plugin);
        pass.end();
        if (i < 2) continue;
        checked.push(checkedMs);
        kept.push(performance.now() - t0);
        if (again.validation!.reused) reused++;
        const v = r.validation!;
        if (v.validated && v.retries === 0) firstTry++;
        if (v.validated) validated++;
        retries += v.retries;
        changed += v.changedRanges;
        watched += v.watchedPages;
      }
      rows.push({
        plugin: plugin.name,
        watchedPages: Math.round(watched / runs),
        firstTryShare: +(firstTry / runs).toFixed(2),
        validatedShare: +(validated / runs).toFixed(2),
        retriesPerRun: +(retries / runs).toFixed(2),
        changedRangesPerRun: +(changed / runs).toFixed(2),
        plainMs: +median(plain).toFixed(3),
        validateMs: +median(checked).toFixed(3),
        cost: +(median(checked) / median(plain)).toFixed(2),
        reusedShare: +(reused / runs).toFixed(2),
        againMs: +median(kept).toFixed(3),
        againCost: +(median(kept) / median(plain)).toFixed(2),
      });
    }
  } finally {
    await kernel.close();
  }
  return {
    name: 'pass-validate',
    description: `optimistic consistent mode per plugin on the running guest ${source} (live map), ${runs} validated runs each (retries 2, every run runs), interleaved with plain runs; each followed by a validated run that may reuse it (againMs; reusedShare: how often it did)`,
    columns: ['plugin', 'watchedPages', 'firstTryShare', 'validatedShare', 'retriesPerRun', 'changedRangesPerRun', 'plainMs', 'validateMs', 'cost', 'reusedShare', 'againMs', 'againCost'],
    rows,
  };
}
