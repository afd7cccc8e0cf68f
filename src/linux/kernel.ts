/**
 * The attached kernel: one memory source, the kernel address space, and the
 * profile (symbols + types) that gives its bytes meaning. Everything in
 * linux/ and every plugin works from this object only.
 */
import { FaultError, ProfileError } from '../core/errors.js';
import type { AddressSpace } from '../arch/address-space.js';
import type { PhysicalMemory } from '../memory/types.js';
import type { KernelProfile } from '../profile/profile.js';
import type { SymbolTable } from '../profile/symbols.js';
import { Typed } from '../profile/typed.js';
import type { TypeDb } from '../profile/types.js';

export type { KernelProfile } from '../profile/profile.js';


export class Kernel {
  readonly typed: Typed;

  constructor(
    readonly memory: PhysicalMemory,
    readonly space: AddressSpace,
    readonly profile: KernelProfile,
  ) {
    this.typed = new Typed(profile.types, space);
  }

  get symbols(): SymbolTable {
    return this.profile.symbols;
  }

  get types(): TypeDb {
    return this.profile.types;
  }

  /** Address of a kernel symbol; ProfileError naming it when absent. */
  symbol(name: string): bigint {
    return this.profile.symbols.address(name);
  }

  /** True when the profile has the symbol. */
  hasSymbol(name: string): boolean {
    return this.profile.symbols.has(name);
  }

  /** Start of the kernel direct map (page_offset_base), read from the guest once. */
  get directMapBase(): bigint {
    if (this.space.directMapBase === undefined) {
      if (!this.hasSymbol('page_offset_base'))
        throw new ProfileError('cannot locate the direct map', { symbol: 'page_offset_base', tried: [this.profile.symbols.source] });
      this.space.directMapBase = this.space.readU64(this.symbol('page_offset_base'));
    }
    return this.space.directMapBase;
  }

  /**
   * The address space of a user process, from its mm->pgd (a kernel virtual
   * address in the direct map). Shares the page-table cache with the kernel space.
   */
  userSpace(pgdVa: bigint, name?: string): AddressSpace {
    const pa = this.space.tryTranslate(pgdVa);
    if (!pa) throw new FaultError('virtual', pgdVa, 'mm->pgd is not mapped in the kernel address space');
    return this.space.withDtb(Number(pa.pa), name);
  }
}
