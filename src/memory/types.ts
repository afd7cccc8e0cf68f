/**
 * The one interface every memory-access technique implements. Layers above
 * (translation, profile, Linux objects) never know which technique they read.
 *
 * Conventions:
 * - Guest-physical addresses are plain `number`s: x86-64 physical addresses fit
 *   in 52 bits, well inside 2^53, and numbers keep the hot paths fast.
 *   Guest-virtual addresses are `bigint` (kernel addresses exceed 2^53), so the
 *   compiler keeps the two apart.
 * - Reads are synchronous and batched (`readv`). A technique whose transport is
 *   asynchronous (QMP, gdbstub) bridges it; snapshot-style techniques do their
 *   slow work in `refresh()`, which is async.
 * - A partial read is data, not an exception: `readv` returns the failed ranges
 *   and zero-fills them in the destination.
 * - Every source is read-only: nothing here writes guest memory.
 */

import type { CpuState, PhysRange, ReadFailure, ReadOp } from '../core/phys.js';
export type { CpuState, PhysRange, ReadFailure, ReadOp } from '../core/phys.js';

/** The classes of the VEE'15 taxonomy ("Exploring VM Introspection: Techniques and Trade-offs"). */
export type TechniqueClass =
  | 'live-map' // live memory map: mmap of guest RAM, zero-copy
  | 'live-read' // live read: copy out of the running guest (process_vm_readv, /proc/pid/mem)
  | 'guest-halting' // guest-halting access: a live technique wrapped in stop/cont per pass
  | 'halt-snapshot' // halt snapshot: stop, dump, cont, then read the dump
  | 'live-snapshot' // live snapshot: the guest runs while its memory is copied (migration stream)
  | 'debugger-stub' // debugger stub: GDB remote protocol against QEMU's gdbstub
  | 'monitor-read' // monitor reads: QMP/HMP `xp`
  | 'file'; // a memory image on disk (raw, ELF core, LiME)

export interface TechniqueInfo {
  /** Taxonomy class. */
  readonly class: TechniqueClass;
  /** Implementation name, e.g. 'qemu-shm', 'qemu-process', 'elf-core'. */
  readonly name: string;
  /** True when reads see the running guest (no frozen copy). */
  readonly live: boolean;
  /** True when each pass pauses the guest. */
  readonly haltsGuest: boolean;
  /** True when reads can hand out views of the backing memory without copying. */
  readonly zeroCopy: boolean;
}

/** A run of guest-physical memory that is directly addressable (mapped file, loaded image). */
export interface MappedRegion {
  readonly start: number;
  /** Bytes for [start, start + bytes.length); a live view for live sources. */
  readonly bytes: Uint8Array;
}

/** Facts some sources carry besides the bytes (ELF notes, LiME headers, QMP). */
export interface SourceHints {
  /** The VMCOREINFO text when the source has it out of band (ELF note, QEMU device). */
  vmcoreinfo?: string;
  cpus?: readonly CpuState[];
}

export interface PhysicalMemory {
  readonly technique: TechniqueInfo;
  /** Human-readable target, e.g. the file path or 'qmp:/run/x.sock'. */
  readonly target: string;
  /** Highest backed guest-physical address + 1. */
  readonly size: number;
  /** Backed guest-physical ranges, sorted, non-overlapping. */
  ranges(): readonly PhysRange[];
  /**
   * Bumped whenever previously read bytes may be stale (a new pass, a new
   * snapshot, a resume). Caches key their entries by it.
   */
  readonly generation: number;
  /** Reads every op; fills (or allocates) `dst`; returns the ranges that failed. */
  readv(ops: ReadOp[]): ReadFailure[];
  /**
   * Set by a source whose reads cost about the same up to this many bytes
   * (one system call each: live read): inside a pass the arch layer reads it
   * in aligned blocks of this size, kept for that pass only
   * (arch/pass-blocks.ts). A power of two, 4 KiB to 256 KiB; absent: read as asked.
   */
  readonly passBlockBytes?: number;
  /** Zero-copy regions, when the technique maps guest memory (live map, loaded files). */
  mapped?(): readonly MappedRegion[];
  /** Out-of-band facts (vmcoreinfo note, vCPU registers). May query the target. */
  hints?(): Promise<SourceHints>;
  /**
   * Starts a new pass: a live source bumps its generation; a snapshot source
   * takes a new snapshot; a halting source resumes and halts again.
   */
  refresh?(): Promise<void>;
  /** What a person should know about this source before trusting it (e.g. a truncated image), one line each. */
  readonly warnings?: readonly string[];
  /** Releases the target (resuming a guest this source paused). Idempotent. */
  close(): Promise<void>;
}
