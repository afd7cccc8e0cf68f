/**
 * Guest-physical primitives shared by the layers that move bytes: QEMU's RAM layout (qemu/) and the memory
 * sources (memory/). They live in core/ because both layers use them and neither owns the other.
 */
import type { GuestPhysAddr } from './address.js';

/** A guest-physical range that is backed by RAM in this source. `end` is exclusive. */
export interface PhysRange {
  readonly start: GuestPhysAddr;
  readonly end: GuestPhysAddr;
  /** Where it came from, e.g. 'ram-below-4g', 'ram-above-4g', 'PT_LOAD #3'. */
  readonly name?: string;
}

/** One read in a batch. When `dst` is absent the source allocates it and stores it back. */
export interface ReadOp {
  addr: GuestPhysAddr;
  len: number;
  dst?: Uint8Array;
}

/** A range of a batch that could not be read; its bytes in `dst` are zero. */
export interface ReadFailure {
  readonly addr: GuestPhysAddr;
  readonly len: number;
  readonly reason: string;
}

/** Per-vCPU state a source can offer (ELF core notes, QMP registers). */
export interface CpuState {
  readonly index: number;
  readonly cr3?: bigint;
  readonly cr4?: bigint;
  readonly cr0?: bigint;
  readonly efer?: bigint;
}
