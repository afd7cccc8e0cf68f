/**
 * Profile bootstrap benchmark: attach to a live guest with no cache (vmcoreinfo,
 * kallsyms, BTF, KASLR from memory) and with the on-disk cache, in-process over
 * a freshly opened source each time; plus heap held by one profile.
 * Issue targets on a 256 MiB guest: ≤ 300 ms without cache, ≤ 20 ms with, ≤ 100 MB.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { attachKernel } from '../linux/attach.js';
import { openSource } from '../memory/open.js';
import { median, type BenchTable } from './report.js';

export async function benchProfile(source: string, runs = 5): Promise<BenchTable> {
  const cacheDir = mkdtempSync(join(tmpdir(), 'vmsight-bench-cache-'));
  const rows: Record<string, unknown>[] = [];
  try {
    for (const mode of ['no cache', 'cache'] as const) {
      const total: number[] = [];
      const phases: Record<string, number[]> = {};
      for (let i = 0; i < runs + 1; i++) {
        // The source is opened outside the timing: this measures the bootstrap, not QMP discovery.
        const { memory } = await openSource(source);
        const k = await attachKernel(memory, { cache: mode === 'cache' ? cacheDir : false });
        // Run 0 warms the JIT (and, with the cache, fills it): not counted.
        if (i > 0) {
          total.push(k.report.timings.kernelSpace + k.report.timings.profile);
          for (const [name, ms] of Object.entries(k.report.kernelSpace.timings)) (phases[`ks:${name}`] ??= []).push(ms);
          for (const s of k.report.profileSteps) (phases[s.step] ??= []).push(s.ms);
        }
        await k.close();
      }
      rows.push({
        mode,
        runs: total.length,
        medianMs: +median(total).toFixed(1),
        minMs: +Math.min(...total).toFixed(1),
        phases: Object.fromEntries(Object.entries(phases).map(([k, v]) => [k, +median(v).toFixed(1)])),
      });
    }
    // Memory held by one profile (symbols + types + caches): measured between an open source and the
    // attached kernel, so the source's own mapping of guest RAM is not counted.
    const gc = (globalThis as { gc?: () => void }).gc;
    const { memory } = await openSource(source);
    gc?.();
    const before = process.memoryUsage();
    const k = await attachKernel(memory, { cache: false });
    k.types.struct('task_struct');
    gc?.();
    const after = process.memoryUsage();
    rows.push({
      mode: 'memory',
      heapMiB: +((after.heapUsed - before.heapUsed) / 2 ** 20).toFixed(1),
      externalMiB: +((after.external - before.external) / 2 ** 20).toFixed(1),
      rssMiB: +(after.rss / 2 ** 20).toFixed(1),
      gcExposed: gc !== undefined,
    });
    await k.close();
  } finally {
    rmSync(cacheDir, { recursive: true, force: true });
  }
  return {
    name: 'profile',
    description: `kernel profile bootstrap on ${source} (kernel space + profile; source already open)`,
    columns: ['mode', 'runs', 'medianMs', 'minMs', 'heapMiB', 'externalMiB', 'rssMiB', 'phases'],
    rows,
  };
}
