/**
 * Branded guest addresses for the interfaces between layers, so a guest-physical address cannot be passed
 * where a guest-virtual one is expected (or the other way round) without saying so.
 *
 * - `GuestPhysAddr` is a `number`: x86-64 physical addresses fit in 52 bits, well inside 2^53, and numbers
 *   keep the byte-moving hot paths (sources, page walks) free of BigInt.
 * - `GuestVirtAddr` is a `bigint`: kernel addresses exceed 2^53.
 *
 * The brands exist only for the type checker: `gpa()` and `gva()` are the identity at run time. Inside a
 * module plain arithmetic is fine (its result is a plain number or bigint); a value is branded again where
 * it crosses into another layer. The places that turn one space into the other return the right brand:
 * translation (AddressSpace.translate/physical) returns GuestPhysAddr, the direct map and kernel symbol
 * lookups return GuestVirtAddr.
 */

declare const space: unique symbol;

/** A guest-physical address (what a PhysicalMemory reads). */
export type GuestPhysAddr = number & { readonly [space]: 'guest-physical' };

/** A guest-virtual address (what an AddressSpace translates). */
export type GuestVirtAddr = bigint & { readonly [space]: 'guest-virtual' };

/** Marks `x` as a guest-physical address (no check, no cost). */
export function gpa(x: number): GuestPhysAddr {
  return x as GuestPhysAddr;
}

/** Marks `x` as a guest-virtual address (no check, no cost). */
export function gva(x: bigint): GuestVirtAddr {
  return x as GuestVirtAddr;
}
