/**
 * PLACEHOLDER until the pass branch lands (same interface): a pass over the attached kernel.
 */
import type { AddressSpace } from '../arch/address-space.js';
import { AnomalySink } from './anomaly.js';
import type { Kernel } from './kernel.js';
import { runPlugin, type Plugin, type PluginOptions, type PluginResult } from './plugin.js';

export interface PassOptions {
  readonly reuse?: boolean;
  readonly validate?: boolean | { readonly retries?: number };
}

export interface PassSummary {
  readonly generation: number;
  readonly startedAt: number;
  readonly elapsedMs: number;
  readonly anomalyCounts: AnomalySink['counts'];
}

export interface Pass {
  readonly kernel: Kernel;
  readonly generation: number;
  readonly startedAt: number;
  readonly anomalies: AnomalySink;
  run<R extends object>(plugin: Plugin<R>, options?: PluginOptions): PluginResult<R>;
  userSpace(pgd: bigint, name?: string): AddressSpace;
  end(): PassSummary;
}

export async function startPass(kernel: Kernel, options: PassOptions = {}): Promise<Pass> {
  await kernel.memory.refresh?.();
  if (options.reuse === false) kernel.space.flush();
  const anomalies = new AnomalySink();
  const t0 = performance.now();
  const startedAt = Date.now();
  return {
    kernel,
    generation: kernel.memory.generation,
    startedAt,
    anomalies,
    run(plugin, opts) {
      const r = runPlugin(plugin, kernel, opts);
      for (const a of r.anomalies) anomalies.add(a);
      return r;
    },
    userSpace: (pgd, name) => kernel.userSpace(pgd, name),
    end: () => ({ generation: kernel.memory.generation, startedAt, elapsedMs: performance.now() - t0, anomalyCounts: anomalies.counts }),
  };
}
