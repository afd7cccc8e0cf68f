/**
 * A bare synthetic Kernel for parser tests: FakeSpace (sparse pages that
 * fault when unmapped) plus readPointer and a page-table view of its pages,
 * TypeBuilder types and a handful of symbols.
 */
import type { AddressSpace } from '../../../src/arch/address-space.js';
import { Kernel, type KernelProfile } from '../../../src/linux/kernel.js';
import type { PhysicalMemory } from '../../../src/memory/types.js';
import { SymbolTableBuilder } from '../../../src/profile/symbols.js';
import { FakeSpace } from './synthetic-kernel.js';
import type { TypeBuilder } from './synthetic.js';

export class BareSpace extends FakeSpace {
  readPointer(va: bigint): bigint {
    return this.readU64(va);
  }
  /** Every mapped page as a 4 KiB leaf mapping, in VA order, inside [start, end). */
  override *mappings(o: { start?: bigint; end?: bigint } = {}): Generator<{ va: bigint; pa: number; size: number; level: number; flags: number; nx: boolean }> {
    const pages = [...this.pages.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    for (const va of pages) if (va >= (o.start ?? 0n) && va < (o.end ?? 1n << 64n)) yield { va, pa: 0, size: 4096, level: 1, flags: 1, nx: true };
  }
}

export function makeKernel(b: TypeBuilder, mem: BareSpace, symbols: readonly (readonly [string, bigint, string?])[]): Kernel {
  const sb = new SymbolTableBuilder();
  for (const [n, a, t] of [...symbols].sort((x, y) => (x[1] < y[1] ? -1 : x[1] > y[1] ? 1 : 0))) sb.add(n, a, t ?? 'D');
  const profile: KernelProfile = {
    release: 'synthetic',
    banner: 'Linux version synthetic',
    kaslr: { virtualShift: 0n, physBase: 0n },
    pagingLevels: 4,
    symbols: sb.build('synthetic'),
    types: b.db(),
    sources: { types: 'btf:synthetic' },
  };
  return new Kernel(mem as unknown as PhysicalMemory, mem as unknown as AddressSpace, profile);
}
