/**
 * Finding the kernel direct map (phys ↔ page_offset_base + phys) from the
 * page tables alone: the lowest kernel-half VA, 1 GiB aligned (KASLR
 * randomizes it in 1 GiB steps), that maps physical 0 and keeps mapping
 * linearly at a few probes inside RAM.
 */
import { gva, type GuestVirtAddr } from '../core/address.js';
import type { PhysRange } from '../memory/types.js';
import type { Mapping, MappingOptions } from './x86-64/paging.js';

const PAGE = 4096;

/** What the search needs of an address space. */
export interface DirectMapProbe {
  readonly mem: { ranges(): readonly PhysRange[] };
  readonly kernelHalfStart: bigint;
  mappings(options: MappingOptions): Iterable<Mapping>;
  tryTranslate(va: GuestVirtAddr): { readonly pa: number } | undefined;
}

/** The direct map's base VA, or undefined when no such mapping exists (at most 16 candidates are probed). */
export function findDirectMapBase(space: DirectMapProbe, maxTables = 4096): GuestVirtAddr | undefined {
  const ranges = space.mem.ranges();
  const largest = ranges.reduce<{ start: number; end: number } | undefined>(
    (best, r) => (best === undefined || r.end - r.start > best.end - best.start ? r : best),
    undefined,
  );
  const middle = largest ? largest.start + Math.floor((largest.end - largest.start) / 2) : 0;
  // Probes inside usable RAM only: the direct map leaves firmware-reserved holes unmapped.
  const probes = [0x1000, 0x100000, 0x1000000, middle]
    .map((p) => p - (p % PAGE))
    .filter((p) => p > 0 && ranges.some((r) => p >= r.start && p + PAGE <= r.end));
  let checked = 0;
  for (const m of space.mappings({ start: space.kernelHalfStart, maxTables })) {
    if (m.pa !== 0 || m.va % (1n << 30n) !== 0n) continue;
    if (++checked > 16) break;
    if (probes.every((p) => space.tryTranslate(gva(m.va + BigInt(p)))?.pa === p)) return gva(m.va);
  }
  return undefined;
}
