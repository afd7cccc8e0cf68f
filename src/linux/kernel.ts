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
import { KernelPass, tablesOf, type Pass, type PassOptions } from './pass.js';
import { PassCaches } from './pass-caches.js';
import { type GuestVirtAddr, gva } from '../core/address.js';

export type { KernelProfile } from '../profile/profile.js';


/** Translation slots of a process address space (argv, environ, ELF headers: few pages; ~50 KB each). */
const USER_SPACE_SLOTS = 1024;

export class Kernel {
  readonly typed: Typed;
  private readonly passCaches = new PassCaches();
  /** Passes started and not yet ended, innermost last (runPlugin inside a pass nests one). */
  private readonly open: KernelPass[] = [];

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
  symbol(name: string): GuestVirtAddr {
    return this.profile.symbols.address(name);
  }

  /** True when the profile has the symbol. */
  hasSymbol(name: string): boolean {
    return this.profile.symbols.has(name);
  }

  /** Start of the kernel direct map (page_offset_base), read from the guest once. */
  get directMapBase(): GuestVirtAddr {
    if (this.space.directMapBase === undefined) {
      if (!this.hasSymbol('page_offset_base'))
        throw new ProfileError('cannot locate the direct map', { symbol: 'page_offset_base', tried: [this.profile.symbols.source] });
      this.space.directMapBase = this.space.readU64(this.symbol('page_offset_base'));
    }
    return gva(this.space.directMapBase);
  }

  /**
   * Starts a pass: refreshes the source (a live source bumps its generation,
   * a snapshot source takes a new snapshot, a halting one resumes and halts
   * again), then opens the pass on that generation.
   */
  async pass(options: PassOptions = {}): Promise<Pass> {
    await this.memory.refresh?.();
    return this.startPass(options);
  }

  /** A pass on the source's current generation, without refreshing it (what runPlugin uses). */
  startPass(options: PassOptions = {}): Pass {
    const p = new KernelPass(this, this.passCaches, options);
    if (this.open.length >= 64) this.open.shift(); // passes never ended
    this.open.push(p);
    return p;
  }

  /** @internal called by Pass.end() */
  passEnded(p: Pass): void {
    const i = this.open.lastIndexOf(p as KernelPass);
    if (i >= 0) this.open.splice(i, 1);
    // The last open pass ended: blocks kept for passes go, later reads see the guest as it is.
    if (!this.open.length) tablesOf(this)?.phys.endPass();
  }

  /**
   * The address space of a user process, from its mm->pgd (a kernel virtual
   * address in the direct map): the active pass's cached one, else a new one.
   * FaultError when the pgd is not mapped.
   */
  userSpace(pgdVa: bigint, name?: string): AddressSpace {
    const active = this.open[this.open.length - 1];
    return active ? active.userSpace(pgdVa, name) : this.createUserSpace(pgdVa, name);
  }

  /** A new process address space sharing the page-table reader (and its epochs) with the kernel space. */
  createUserSpace(pgdVa: bigint, name?: string): AddressSpace {
    const pa = this.space.tryTranslate(gva(pgdVa));
    if (!pa) throw new FaultError('virtual', pgdVa, 'mm->pgd is not mapped in the kernel address space');
    return this.space.withDtb(Number(pa.pa), name, { maxEntries: USER_SPACE_SLOTS });
  }
}
