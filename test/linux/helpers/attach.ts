/**
 * Attaches a Kernel to a lab guest for h8's guest tests: src/linux/attach.ts
 * when the integrator has written it, else assembled from the profile parts
 * (openSource → bootstrapKernelSpace → kallsyms → BTF).
 */
import { findGuest } from '../../../src/lab/index.js';
import { Kernel, type KernelProfile } from '../../../src/linux/kernel.js';
import { openSource } from '../../../src/memory/open.js';
import { bootstrapKernelSpace } from '../../../src/profile/kernel-space.js';
import { loadKallsyms } from '../../../src/profile/kallsyms.js';
import { btfFromKernelSymbols } from '../../../src/profile/btf/sources.js';
import { TypeDb } from '../../../src/profile/types.js';

export async function attachLabKernel(guestName: string): Promise<Kernel> {
  // The shm file directly: no QMP connection that would keep the test process alive.
  const g = findGuest(guestName);
  const spec = g ? `shm:${g.shmPath}` : `lab:${guestName}`;
  try {
    const mod = (await import('../../../src/linux/attach.js')) as { attachKernel?: (s: string) => Promise<Kernel> };
    if (mod.attachKernel) return await mod.attachKernel(spec);
  } catch (e) {
    // attach.ts is being written in parallel: fall back to assembling the parts, but say so.
    process.stderr.write(`attachKernel(lab:${guestName}) failed, assembling the kernel from parts: ${(e as Error).message}\n`);
  }
  const { memory } = await openSource(spec);
  const ks = await bootstrapKernelSpace(memory);
  const syms = loadKallsyms({ space: ks.space, mem: memory, ...(ks.vmcoreinfo ? { vmcoreinfo: ks.vmcoreinfo } : {}) });
  const symbols = syms.table;
  const types = new TypeDb(btfFromKernelSymbols(ks.space, symbols));
  if (ks.directMapBase !== undefined) ks.space.directMapBase = ks.directMapBase;
  const profile: KernelProfile = {
    release: ks.release ?? 'unknown',
    banner: ks.banner?.text ?? '',
    kaslr: { virtualShift: ks.kaslr?.virtualShift ?? 0n, physBase: ks.kaslr?.physBase ?? 0n },
    pagingLevels: ks.levels,
    symbols,
    types,
    sources: { symbols: symbols.source, types: 'btf:memory' },
  };
  return new Kernel(memory, ks.space, profile);
}
