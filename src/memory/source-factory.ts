/**
 * How a technique is found and opened. Each file in memory/sources/ exports a
 * `SourceFactory`; memory/open.ts holds the explicit list, ranks the factories
 * that fit a target by what they can offer, and opens the best (or the one
 * the user asked for).
 */
import type { PhysicalMemory, TechniqueClass } from './types.js';

/** What the user named, after the source string was parsed (see memory/open.ts). */
export interface SourceTarget {
  /** The original string, for messages. */
  readonly spec: string;
  /** A memory image on disk. */
  readonly file?: string;
  /** QMP endpoint: unix socket path or tcp:host:port. */
  readonly qmp?: string;
  /**
   * Other QMP sockets of the same QEMU (a lab guest has several). QEMU serves one client per socket and this
   * process may hold `qmp` while a technique opens: a technique that needs a socket of its own takes one of these.
   */
  readonly qmpAlternatives?: readonly string[];
  /** QEMU memory-backend-file path (e.g. /dev/shm/NAME). */
  readonly shm?: string;
  /** QEMU process id. */
  readonly pid?: number;
  /** gdbstub address, host:port. */
  readonly gdb?: string;
  /** Extra key=value parameters from the source string. */
  readonly params: Readonly<Record<string, string>>;
}

export interface ProbeResult {
  /** True when this factory can open the target. */
  readonly ok: boolean;
  /** Higher is better among factories that fit (roughly: reads per second, log10). */
  readonly rank: number;
  /** Why it fits or not, shown by `vmsight info` and in errors. */
  readonly reason: string;
}

export interface OpenOptions {
  /** Wrap with QMP stop/cont per pass (guest-halting access). */
  readonly halting?: boolean;
}

export interface SourceFactory {
  /** Implementation name, e.g. 'qemu-shm'. */
  readonly name: string;
  readonly class: TechniqueClass;
  /** One line for `vmsight sources`. */
  readonly summary: string;
  probe(target: SourceTarget): Promise<ProbeResult>;
  open(target: SourceTarget, options?: OpenOptions): Promise<PhysicalMemory>;
}
