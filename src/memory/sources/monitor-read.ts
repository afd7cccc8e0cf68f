/**
 * monitor reads: HMP `xp /Ngx` over QMP, the slowest technique (text
 * formatting per 8 bytes), kept for completeness and as a cross-check. The
 * guest keeps running: a multi-word read is not atomic. The QMP connection
 * lives in the bridge worker, so this source needs a QMP socket for itself: one of the target's other
 * sockets when it has them (a lab guest; the opening process holds `qmp`), else `qmp`.
 */
import { SourceError } from '../../core/errors.js';
import type { RamRange } from '../../qemu/layout.js';
import { parseRegisters } from '../../qemu/registers.js';
import { BridgedMemory, startBackend } from '../bridge/bridged-memory.js';
import type { SourceFactory, SourceTarget } from '../source-factory.js';
import type { PhysicalMemory, SourceHints, TechniqueInfo } from '../types.js';
import { MONITOR_READ, described } from './catalog.js';

const TECHNIQUE: TechniqueInfo = { class: 'monitor-read', name: 'monitor-read', live: true, haltsGuest: false, zeroCopy: false };

export class MonitorReadMemory extends BridgedMemory {
  readonly technique = TECHNIQUE;

  async hints(): Promise<SourceHints> {
    return { cpus: parseRegisters(await this.bridge.call<string>('registers')) };
  }

  /** A live source: a new pass only invalidates caches. */
  async refresh(): Promise<void> {
    this.generation++;
  }
}

export const factory: SourceFactory = {
  ...described(MONITOR_READ),
  async probe(target: SourceTarget) {
    if (!target.qmp) return { ok: false, rank: 0, reason: 'no QMP socket given' };
    return { ok: true, rank: 3.2, reason: `QMP ${target.qmp}: xp reads (about 1.5k reads/s)` };
  },
  async open(target: SourceTarget): Promise<PhysicalMemory> {
    if (!target.qmp) throw new SourceError('monitor-read', target.spec, 'no QMP socket', { hint: 'use qmp:PATH' });
    const label = `qmp:${target.qmp}`;
    const bridge = await startBackend(
      'monitor-backend',
      { endpoint: target.qmp, alternatives: target.qmpAlternatives?.filter((s) => s !== target.qmp) ?? [] },
      { technique: 'monitor-read', target: label, timeoutMs: 30_000 },
    );
    try {
      const layout = await bridge.call<RamRange[]>('layout');
      return new MonitorReadMemory(label, bridge, layout);
    } catch (err) {
      await bridge.close();
      throw err;
    }
  },
};
