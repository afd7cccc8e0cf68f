/**
 * The attach pipeline, in named steps that each say what they tried:
 * source (probe → pick technique) → kernel space (vmcoreinfo → DTB, KASLR,
 * paging) → profile (cache, kallsyms, BTF) → Kernel. The report is a plain
 * value that `vmsight profile` prints and `--explain`-style output can show.
 */
import { startProgress, type Progress } from '../core/progress.js';
import { openSource, type Candidate, type OpenSourceOptions } from '../memory/open.js';
import type { PhysicalMemory, TechniqueClass } from '../memory/types.js';
import { defaultCacheDir, recentVmcoreinfo, rememberVmcoreinfo } from '../profile/cache.js';
import { bootstrapKernelSpace, type KernelSpace } from '../profile/kernel-space.js';
import { loadProfile, type ProfileOptions, type ProfileStep } from '../profile/profile.js';
import { Kernel } from './kernel.js';
import { monotonicMs } from '../core/clock.js';

export interface AttachOptions extends ProfileOptions {
  /** Force a technique (taxonomy class or factory name). */
  readonly technique?: OpenSourceOptions['technique'];
  readonly halting?: boolean;
  /** Accept only the kernel the vCPUs run (re-attaching after a guest reset): see BootstrapOptions.requireRunning. */
  readonly requireRunningKernel?: boolean;
}

export interface AttachReport {
  readonly technique: { readonly factory: string; readonly class: TechniqueClass; readonly reason: string };
  readonly candidates: readonly Candidate[];
  readonly kernelSpace: KernelSpace;
  readonly profileSteps: readonly ProfileStep[];
  readonly cacheHit: boolean;
  /** Milliseconds: open, kernel space, profile, total. */
  readonly timings: Readonly<Record<'open' | 'kernelSpace' | 'profile' | 'total', number>>;
}

/** A Kernel that owns its memory source: close it when done. */
export class AttachedKernel extends Kernel {
  constructor(
    memory: PhysicalMemory,
    kernelSpace: KernelSpace,
    profile: Kernel['profile'],
    readonly report: AttachReport,
  ) {
    super(memory, kernelSpace.space, profile);
  }

  async close(): Promise<void> {
    await this.memory.close();
  }
}

/**
 * Attaches to the kernel behind `source`: a source string (image path, lab
 * guest name, URI) or an already opened PhysicalMemory (which the returned
 * kernel then owns).
 */
export async function attachKernel(source: string | PhysicalMemory, options: AttachOptions = {}): Promise<AttachedKernel> {
  // Drawn only when the attach is slow (a cold debugger-stub or monitor-read attach), by the CLI's renderer.
  const progress = startProgress('attach', 'steps', 3);
  try {
    return await attachSteps(source, options, progress);
  } finally {
    progress.end();
  }
}

async function attachSteps(source: string | PhysicalMemory, options: AttachOptions, progress: Progress): Promise<AttachedKernel> {
  progress.step('opening the source');
  const t0 = monotonicMs();
  let memory: PhysicalMemory;
  let technique: AttachReport['technique'];
  let candidates: readonly Candidate[] = [];
  if (typeof source === 'string') {
    const opened = await openSource(source, {
      ...(options.technique !== undefined ? { technique: options.technique } : {}),
      ...(options.halting !== undefined ? { halting: options.halting } : {}),
    });
    memory = opened.memory;
    technique = opened.chosen;
    candidates = opened.candidates;
  } else {
    memory = source;
    technique = { factory: source.technique.name, class: source.technique.class, reason: 'opened by the caller' };
  }
  const t1 = monotonicMs();
  try {
    // The hot path: vCPU registers only when memory alone does not do, vmcoreinfo first where it was
    // seen before, and the banner read at linux_banner once symbols are known (scanned only as a fallback).
    const cacheDir = options.cache === false ? undefined : (options.cache ?? defaultCacheDir());
    progress.step(`kernel space (${technique.factory})`);
    const bootstrapped = await bootstrapKernelSpace(memory, {
      lazyHints: true,
      bannerScan: 'none',
      ...(options.requireRunningKernel ? { requireRunning: true } : {}),
      ...(cacheDir ? { vmcoreinfoAt: recentVmcoreinfo(cacheDir) } : {}),
    });
    const t2 = monotonicMs();
    progress.step(`profile (${technique.factory})`);
    const loaded = loadProfile(memory, bootstrapped, options);
    const t3 = monotonicMs();
    const kernelSpace: KernelSpace = loaded.banner
      ? { ...bootstrapped, banner: loaded.banner, sources: { ...bootstrapped.sources, banner: loaded.profile.sources['banner'] ?? bootstrapped.sources.banner } }
      : bootstrapped;
    const pa = kernelSpace.vmcoreinfoCopy?.pa;
    if (cacheDir && pa !== undefined) rememberVmcoreinfo(cacheDir, pa);
    if (kernelSpace.directMapBase !== undefined && kernelSpace.space.directMapBase === undefined)
      kernelSpace.space.directMapBase = kernelSpace.directMapBase;
    const report: AttachReport = {
      technique,
      candidates,
      kernelSpace,
      profileSteps: loaded.steps,
      cacheHit: loaded.cacheHit,
      timings: { open: t1 - t0, kernelSpace: t2 - t1, profile: t3 - t2, total: t3 - t0 },
    };
    return new AttachedKernel(memory, kernelSpace, loaded.profile, report);
  } catch (e) {
    await memory.close();
    throw e;
  }
}
