/**
 * What every bridge-backed source shares: a fixed guest RAM layout, reads
 * split against it before they cross the synchronous bridge, and the bridge
 * closed with the source. Subclasses add what differs (refresh, hints).
 */
import type { RamRange } from '../../qemu/layout.js';
import type { PhysicalMemory, PhysRange, ReadFailure, ReadOp, TechniqueInfo } from '../types.js';
import { siblingModule } from './protocol.js';
import { readvWithinLayout } from './ranged.js';
import { SyncBridge, type SyncBridgeOptions } from './sync-bridge.js';

/** Starts backend module `name` (a file next to this one, e.g. 'gdb-backend') behind a synchronous bridge. */
export function startBackend(name: string, params: unknown, opts: SyncBridgeOptions): Promise<SyncBridge> {
  return SyncBridge.start(siblingModule(new URL('./', import.meta.url), name), params, opts);
}

export abstract class BridgedMemory implements PhysicalMemory {
  abstract readonly technique: TechniqueInfo;
  generation = 0;
  readonly size: number;

  constructor(
    readonly target: string,
    protected readonly bridge: SyncBridge,
    private readonly layout: readonly RamRange[],
  ) {
    this.size = layout.length ? layout[layout.length - 1]!.end : 0;
  }

  ranges(): readonly PhysRange[] {
    return this.layout;
  }

  readv(ops: ReadOp[]): ReadFailure[] {
    return readvWithinLayout(this.layout, ops, (pieces) => this.bridge.readv(pieces));
  }

  async close(): Promise<void> {
    await this.bridge.close();
  }
}
