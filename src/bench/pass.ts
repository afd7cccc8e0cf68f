/**
 * The pass suite: what reusing translations across passes buys on an
 * unchanged live guest, and what the optimistic consistent mode costs.
 * For each workload (pslist; pslist+lsmod+sockstat+lsof+maps), in one run:
 *  - reuse: passes that keep cached translations (each re-checked per entry);
 *  - reuse:false: passes that reuse nothing (every translation walked again);
 *  - validate: reusing passes that also record and re-check what they read;
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
}

async function measure(kernel: AttachedKernel, work: readonly Plugin<any>[], options: PassOptions, runs: number, warmup: number): Promise<Measured> {
  const times: number[] = [];
  const space = kernel.space;
  let walks = 0;
  let checks = 0;
  let validated = 0;
  let retries = 0;
  for (let i = 0; i < warmup + runs; i++) {
    const w0 = space.stats.misses;
    const c0 = space.translator.tables.entryChecks;
    const t0 = performance.now();
    const pass = await kernel.pass(options);
    for (const p of work) pass.run(p);
    const sum = pass.end();
    const dt = performance.now() - t0;
    if (i < warmup) continue;
    times.push(dt * 1000);
    walks += space.stats.misses - w0;
    checks += space.translator.tables.entryChecks - c0;
    if (sum.validation?.validated) validated++;
    retries += sum.validation?.retries ?? 0;
  }
  return { us: median(times), walks: walks / runs, checks: checks / runs, validated: validated / runs, retries: retries / runs };
}

export async function benchPass(source: string, runs = 100, warmup = 10): Promise<BenchTable[]> {
  const kernel = await attachKernel(source);
  const rows: Record<string, unknown>[] = [];
  try {
    for (const names of WORKLOADS) {
      const work = names.map((n) => {
        const p = plugins.find((x) => x.name === n);
        if (!p) throw new Error(`bench pass: no plugin ${n}`);
        return p as Plugin<any>;
      });
      // Interleaved, so drift on a shared machine hits every mode alike.
      const reuse = await measure(kernel, work, {}, runs, warmup);
      const none = await measure(kernel, work, { reuse: false }, runs, warmup);
      const valid = await measure(kernel, work, { validate: true }, runs, warmup);
      const row = (mode: string, m: Measured): Record<string, unknown> => ({
        workload: names.join('+'),
        mode,
        usPerPass: Math.round(m.us),
        vsReuse: +(m.us / reuse.us).toFixed(2),
        walksPerPass: Math.round(m.walks),
        entryChecksPerPass: Math.round(m.checks),
        validatedShare: mode === 'validate' ? +m.validated.toFixed(2) : '',
        retriesPerPass: mode === 'validate' ? +m.retries.toFixed(2) : '',
      });
      rows.push(row('reuse', reuse), row('reuse:false', none), row('validate', valid));
    }
  } finally {
    await kernel.close();
  }
  return [
    {
      name: 'pass',
      description: `passes over the live guest ${source} (refresh included), median of ${runs} after ${warmup} warm-up; vsReuse = time / the reusing pass's`,
      columns: ['workload', 'mode', 'usPerPass', 'vsReuse', 'walksPerPass', 'entryChecksPerPass', 'validatedShare', 'retriesPerPass'],
      rows,
    },
  ];
}
