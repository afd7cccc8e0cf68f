/**
 * The lab kernels the Linux layer is verified on, and a per-file attach to
 * the shared guest of each (booted once, reused across test files).
 *
 * @example
 * suite('guest 6.1', () => {
 *   const g = attachForSuite({ kernel: '6.1' });
 *   test('…', () => runPlugin(pslist, g.kernel));
 * });
 */
import { after, before } from 'node:test';
import { attachKernel, type AttachedKernel } from '../../../src/linux/attach.js';
import type { GroundTruth, GtProcess, LabGuest } from '../../../src/lab/index.js';
import { sharedGuest, type SharedGuestOptions } from '../../helpers/guest.js';

export interface MatrixEntry {
  readonly label: string;
  readonly opts: SharedGuestOptions;
}

/** 5.10 (vm_next list), 6.1 (maple tree), 6.12, and 6.1 under 5-level paging. */
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

export async function attachGuest(opts: SharedGuestOptions): Promise<AttachedGuest> {
  const { guest, truth } = await sharedGuest(opts);
  // The shm file directly: no QMP round trip (its single client slot may be busy with another test).
  const kernel = await attachKernel(`shm:${guest.shmPath}`);
  return { guest, truth, kernel };
}

/**
 * Attaches to the shared guest in a `before` hook of the calling suite and
 * closes the kernel in its `after` hook. The returned object is filled in by
 * the hook: read its fields inside tests only.
 * @param opts the guest, or a function working them out in the hook (e.g. after building a module)
 */
export function attachForSuite(opts: SharedGuestOptions | (() => Promise<SharedGuestOptions>), timeoutMs = 600_000): AttachedGuest {
  const g = {} as Partial<AttachedGuest>;
  before(async () => {
    Object.assign(g, await attachGuest(typeof opts === 'function' ? await opts() : opts));
  }, { timeout: timeoutMs });
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
