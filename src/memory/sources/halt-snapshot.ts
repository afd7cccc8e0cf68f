/**
 * halt snapshot: stop the guest, have QEMU write guest RAM to files
 * (`pmemsave` per RAM range, or `dump-guest-memory` paging:false with
 * `method=dump`), resume it, then read the files. Point-in-time consistent;
 * the guest is paused for the whole copy (about 0.5 s per 256 MiB here).
 * `refresh()` takes a new snapshot; the files are deleted on close.
 */
import { SourceError } from '../../core/errors.js';
import { openOnQmpLease, type QmpLease } from '../../qemu/discover.js';
import type { RamRange } from '../../qemu/layout.js';
import { SnapshotDir, whileStopped } from '../../qemu/migration.js';
import { readCpuStates } from '../../qemu/registers.js';
import { ConcatSource, FileSource } from '../formats/byte-source.js';
import { parseElfCore } from '../formats/elf-core.js';
import { type Segment, SegmentMap } from '../formats/segment-map.js';
import type { SourceFactory, SourceTarget } from '../source-factory.js';
import { QmpSnapshotMemory } from './qemu-snapshot.js';
import type { CpuState, PhysicalMemory, PhysRange, ReadFailure, ReadOp, SourceHints, TechniqueInfo } from '../types.js';
import { HALT_SNAPSHOT, described } from './catalog.js';
import { monotonicMs } from '../../core/clock.js';

export type HaltMethod = 'pmemsave' | 'dump';

interface Snapshot {
  files: string[];
  source: ConcatSource | FileSource;
  map: SegmentMap;
  cpus: CpuState[];
  vmcoreinfo?: string;
  pausedMs: number;
  totalMs: number;
}

export class HaltSnapshotMemory extends QmpSnapshotMemory<Snapshot> implements PhysicalMemory {
  readonly technique: TechniqueInfo;

  private constructor(target: string, lease: QmpLease, layout: readonly RamRange[], dir: SnapshotDir, private readonly method: HaltMethod) {
    super(target, lease, layout, dir);
    this.technique = { class: 'halt-snapshot', name: `halt-snapshot (${method})`, live: false, haltsGuest: true, zeroCopy: false };
  }

  static async open(target: string, lease: QmpLease, method: HaltMethod, parentDir?: string): Promise<HaltSnapshotMemory> {
    const layout = [...(await lease.discovery()).layout];
    const mem = new HaltSnapshotMemory(target, lease, layout, SnapshotDir.create(parentDir), method);
    await mem.takeFirst();
    return mem;
  }

  protected async take(): Promise<Snapshot> {
    const qmp = this.lease.client;
    const t0 = monotonicMs();
    const n = this.generation;
    const files: string[] = [];
    const { result: cpus, pausedMs } = await whileStopped(qmp, async () => {
      if (this.method === 'dump') {
        const f = this.dir.file(`g${n}.elf`);
        files.push(f);
        await qmp.execute('dump-guest-memory', { paging: false, protocol: `file:${f}` }, 0);
      } else {
        for (const [i, r] of this.layout.entries()) {
          const f = this.dir.file(`g${n}-r${i}.bin`);
          files.push(f);
          await qmp.execute('pmemsave', { val: r.start, size: r.end - r.start, filename: f }, 0);
        }
      }
      return readCpuStates(qmp).catch(() => [] as CpuState[]);
    });
    if (this.method === 'dump') {
      const src = FileSource.open(files[0]!, 'halt-snapshot');
      try {
        const core = parseElfCore(src);
        return {
          files,
          source: src,
          map: new SegmentMap(src, core.segments),
          cpus: core.cpus.length ? [...core.cpus] : cpus,
          ...(core.vmcoreinfo !== undefined ? { vmcoreinfo: core.vmcoreinfo } : {}),
          pausedMs,
          totalMs: monotonicMs() - t0,
        };
      } catch (err) {
        src.close();
        throw err;
      }
    }
    const parts = files.map((f) => FileSource.open(f, 'halt-snapshot'));
    const src = new ConcatSource(this.dir.path, parts);
    const segments: Segment[] = this.layout.map((r, i) => ({ start: r.start, end: r.end, fileOffset: src.base(i), name: r.name }));
    for (const [i, r] of this.layout.entries()) {
      if (parts[i]!.size !== r.end - r.start) {
        src.close();
        throw new SourceError('halt-snapshot', this.target, `pmemsave wrote ${parts[i]!.size} of ${r.end - r.start} bytes for ${r.name}`);
      }
    }
    return { files, source: src, map: new SegmentMap(src, segments), cpus, pausedMs, totalMs: monotonicMs() - t0 };
  }

  get size(): number {
    return this.snap.map.size;
  }

  ranges(): readonly PhysRange[] {
    return this.snap.map.ranges;
  }

  readv(ops: ReadOp[]): ReadFailure[] {
    if (this.closed) throw new SourceError('halt-snapshot', this.target, 'read after close');
    return this.snap.map.readv(ops);
  }

  async hints(): Promise<SourceHints> {
    return { cpus: this.snap.cpus, ...(this.snap.vmcoreinfo !== undefined ? { vmcoreinfo: this.snap.vmcoreinfo } : {}) };
  }

  /** How long the last snapshot paused the guest and took in all (ms). */
  stats(): { pausedMs: number; totalMs: number } {
    return { pausedMs: this.snap.pausedMs, totalMs: this.snap.totalMs };
  }

  protected drop(s: Snapshot): void {
    s.source.close();
    for (const f of s.files) this.dir.unlink(f);
  }
}

export const factory: SourceFactory = {
  ...described(HALT_SNAPSHOT),
  async probe(target: SourceTarget) {
    if (!target.qmp) return { ok: false, rank: 0, reason: 'no QMP socket given' };
    return { ok: true, rank: 2.5, reason: `QMP ${target.qmp}: pauses the guest while copying all RAM, then file reads` };
  },
  async open(target: SourceTarget): Promise<PhysicalMemory> {
    if (!target.qmp) throw new SourceError('halt-snapshot', target.spec, 'no QMP socket', { hint: 'use qmp:PATH' });
    const method: HaltMethod = target.params['method'] === 'dump' ? 'dump' : 'pmemsave';
    return openOnQmpLease(target.qmp, (lease) => HaltSnapshotMemory.open(`qmp:${target.qmp}`, lease, method, target.params['dir']));
  },
};
