/**
 * A Kernel attached to a shared lab guest (see guest.ts), and the lab kernels
 * the Linux layer is verified on. Attaches through the guest's RAM file
 * (`shm:`): no QMP connection, so no contention for the guest's QMP sockets
 * and nothing that keeps the test process alive.
 *
 * @example
 * for (const { label, opts } of KERNEL_MATRIX)
 *   describe(`pslist on ${label}`, () => {
 *     const g = attachForSuite(opts);
 *     test('…', () => runPlugin(pslist, g.kernel));
 *   });
 */
import { after, before } from 'node:test';
import type { GroundTruth, GtProcess, LabGuest } from '../../src/lab/index.js';
import { attachKernel, type AttachedKernel, type AttachOptions } from '../../src/linux/attach.js';
import { sharedGuest, type SharedGuestOptions } from './guest.js';

export interface MatrixEntry {
  readonly label: string;
  readonly opts: SharedGuestOptions;
}

/** 6.1 (maple tree), 5.10 (vm_next list), 6.12, and 6.1 under 5-level paging (TCG -cpu max). */
export const KERNEL_MATRIX: readonly MatrixEntry[] = [
  { label: '6.1', opts: { kernel: '6.1' } },
  { label: '5.10', opts: { kernel: '5.10' } },
  { label: '6.12', opts: { kernel: '6.12' } },
  { label: '6.1 5-level', opts: { kernel: '6.1', cpu: 'max' } },
];

export interface AttachedGuest {
  guest: LabGuest;
  truth: GroundTruth;
  kernel: AttachedKernel;
}

/** Boots (or reuses) the shared guest and attaches to it; close `kernel` when done. */
export async function attachGuest(opts: SharedGuestOptions, attach: AttachOptions = {}): Promise<AttachedGuest> {
  const { guest, truth } = await sharedGuest(opts);
  const kernel = await attachKernel(`shm:${guest.shmPath}`, attach);
  return { guest, truth, kernel };
}

export interface SuiteAttachOptions {
  /** Of the `before` hook that boots and attaches (default 600 s). */
  readonly timeoutMs?: number;
  readonly attach?: AttachOptions;
}

/**
 * Attaches to the shared guest in a `before` hook of the calling suite (or
 * file, at top level) and closes the kernel in its `after` hook. The returned
 * object is filled in by the hook: read its fields inside tests only.
 * @param opts the guest, or a function working them out in the hook (e.g. after building a module)
 */
export function attachForSuite(opts: SharedGuestOptions | (() => Promise<SharedGuestOptions>), o: SuiteAttachOptions = {}): AttachedGuest {
  const g = {} as Partial<AttachedGuest>;
  before(async () => {
    Object.assign(g, await attachGuest(typeof opts === 'function' ? await opts() : opts, o.attach));
  }, { timeout: o.timeoutMs ?? 600_000 });
  after(async () => {
    await g.kernel?.close();
  });
  return g as AttachedGuest;
}

/** Kernel workers come and go (idle reaping); their absence later is not an error. */
export function mayExit(p: Pick<GtProcess, 'comm' | 'kthread'>): boolean {
  return p.kthread && p.comm.startsWith('kworker/');
}

/**
 * The ground truth prints kernel threads with their full name
 * (kthread->full_name, or "kworker/0:1-events" with the current workqueue),
 * which task->comm holds truncated to 15 bytes.
 */
export function sameComm(truth: Pick<GtProcess, 'comm' | 'kthread'>, comm: string): boolean {
  if (truth.comm === comm) return true;
  return truth.kthread && comm.length > 0 && truth.comm.startsWith(comm);
}
