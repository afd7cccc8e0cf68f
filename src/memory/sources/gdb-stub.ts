/**
 * debugger stub: guest-physical reads through QEMU's gdbstub
 * (`Qqemu.PhyMemMode:1`, `m` packets of ≤ 2 KiB) behind the synchronous
 * bridge. All-stop: the first read of a pass stops the guest, which stays
 * stopped until `refresh()` (next pass) or `close()` (detach resumes it).
 * The RAM map comes from QMP when a socket is given, else from `size=`.
 *
 * Caveat: QEMU takes one gdb client; a second client's connection waits in
 * the listen backlog and QEMU pauses the guest when it finally accepts it.
 */
import { SourceError } from '../../core/errors.js';
import { acquireQmp } from '../../qemu/discover.js';
import { q35Layout, type RamRange } from '../../qemu/layout.js';
import { BridgedMemory, startBackend } from '../bridge/bridged-memory.js';
import type { SyncBridge } from '../bridge/sync-bridge.js';
import { resumeOnExit } from '../halting.js';
import type { SourceFactory, SourceTarget } from '../source-factory.js';
import type { PhysicalMemory, TechniqueInfo } from '../types.js';
import { GDB_STUB, described } from './catalog.js';

const TECHNIQUE: TechniqueInfo = { class: 'debugger-stub', name: 'gdb-stub', live: true, haltsGuest: true, zeroCopy: false };

/** The RAM map: QMP when we have it, else q35's layout for `size=` bytes. */
export async function layoutFor(target: SourceTarget, technique: string, label: string): Promise<RamRange[]> {
  if (target.qmp) {
    const lease = await acquireQmp(target.qmp);
    try {
      return [...(await lease.discovery()).layout];
    } finally {
      await lease.release();
    }
  }
  const size = Number(target.params['size'] ?? NaN);
  if (Number.isSafeInteger(size) && size > 0) return q35Layout(size);
  throw new SourceError(technique, label, 'no RAM map', { hint: 'also give the QMP socket (qmp=PATH) or the RAM size in bytes (size=N)' });
}

export class GdbStubMemory extends BridgedMemory {
  readonly technique = TECHNIQUE;
  /**
   * All-stop leaves the guest stopped between a pass's first read and the next refresh or close; a process
   * that ends meanwhile (exit, SIGINT, SIGTERM) must still let it run: detach, which resumes it.
   */
  private readonly unguard = resumeOnExit({ resumeSync: () => this.bridge.callSync('close') });

  constructor(target: string, bridge: SyncBridge, layout: readonly RamRange[], private readonly qmp?: string) {
    super(target, bridge, layout);
  }

  override async close(): Promise<void> {
    // A bridge that failed mid-pass (a read timed out, the worker died) never detached: the guest is still
    // stopped by the gdbstub, and only QMP can let it run again.
    const broke = this.bridge.isBroken;
    try {
      await super.close();
      if (broke && this.qmp) await resumeThroughQmp(this.qmp);
    } finally {
      this.unguard();
    }
  }

  /** Ends the pass: the guest runs again until the next read. */
  async refresh(): Promise<void> {
    await this.bridge.call('resume');
    this.generation++;
  }
}

async function resumeThroughQmp(endpoint: string): Promise<void> {
  const lease = await acquireQmp(endpoint).catch(() => undefined);
  if (!lease) return;
  try {
    const { status } = await lease.client.execute<{ status: string }>('query-status');
    if (status === 'paused') await lease.client.execute('cont');
  } catch {
    // QEMU gone: nothing to resume
  } finally {
    await lease.release();
  }
}

export const factory: SourceFactory = {
  ...described(GDB_STUB),
  async probe(target: SourceTarget) {
    if (!target.gdb) return { ok: false, rank: 0, reason: 'no gdbstub address given' };
    return { ok: true, rank: 3.8, reason: `gdbstub at ${target.gdb} (about 7k reads/s; stops the guest per pass)` };
  },
  async open(target: SourceTarget): Promise<PhysicalMemory> {
    if (!target.gdb) throw new SourceError('gdb-stub', target.spec, 'no gdbstub address', { hint: 'use gdb:HOST:PORT' });
    const label = `gdb:${target.gdb}`;
    const layout = await layoutFor(target, 'gdb-stub', label);
    const timeoutMs = Number(target.params['timeout'] ?? 3000);
    const bridge = await startBackend(
      'gdb-backend',
      { endpoint: target.gdb, timeoutMs },
      // Small batches: at a few hundred KB/s a 16 MiB batch would outlast the per-batch timeout.
      { technique: 'gdb-stub', target: label, timeoutMs: Math.max(10_000, timeoutMs * 4), maxBatchBytes: 256 << 10 },
    );
    return new GdbStubMemory(label, bridge, layout, target.qmp);
  },
};
