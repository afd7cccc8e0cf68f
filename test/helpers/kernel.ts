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
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { QmpClient } from '../../src/qemu/qmp.js';
import { sharedGuest, withQmpSocket, type SharedGuestOptions } from './guest.js';

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
/** A kernel attached to a QEMU ELF dump of a shared guest, for one suite. */
export interface AttachedDump {
  truth: GroundTruth;
  kernel: AttachedKernel;
}

/**
 * Registers hooks that take a `dump-guest-memory` ELF core of the shared guest
 * (paging:false or paging:true) and attach to the file; removes it afterwards.
 */
export function attachDumpForSuite(opts: SharedGuestOptions, paging: boolean): AttachedDump {
  const out = {} as AttachedDump;
  let dir: string | undefined;
  before(
    async () => {
      const g = await sharedGuest(opts);
      out.truth = g.truth;
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmsight-test-dump-'));
      const file = path.join(dir, `guest-${paging ? 'paging' : 'flat'}.elf`);
      await withQmpSocket(g.guest, async (sock) => {
        const q = await QmpClient.connect(sock);
        try {
          await q.execute('dump-guest-memory', { paging, protocol: `file:${file}` }, 300_000);
        } finally {
          await q.close();
        }
      });
      out.kernel = await attachKernel(file);
    },
    { timeout: 900_000 },
  );
  after(async () => {
    await out.kernel?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });
  return out;
}

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
