/**
 * live snapshot: the guest keeps running while QEMU copies its memory with
 * `migrate` to a file; guest RAM is then read out of the migration stream.
 *
 * Consistency: with the background-snapshot capability (default when QEMU
 * accepts it) the image is copy-on-write, point-in-time consistent at the
 * moment migration started, and the guest never stops. In pre-copy mode
 * (`mode=precopy`, or when QEMU refuses background snapshots) pages are
 * copied at different times while the guest runs and only the last dirty
 * pages are copied with the guest stopped: the image mixes instants. Either
 * way the guest is left running and QEMU can snapshot again.
 */
import { SourceError } from '../../core/errors.js';
import { openOnQmpLease, type QmpLease } from '../../qemu/discover.js';
import { type RamRange, readDestination, splitReadFillingHoles } from '../../qemu/layout.js';
import { type MigrationMode, migrateToFile, SnapshotDir } from '../../qemu/migration.js';
import { readCpuStates } from '../../qemu/registers.js';
import { FileSource } from '../formats/byte-source.js';
import { type MigrationBlock, type MigrationImage, parseMigrationStream, readBlock } from '../formats/migration-stream.js';
import type { SourceFactory, SourceTarget } from '../source-factory.js';
import { QmpSnapshotMemory } from './qemu-snapshot.js';
import type { CpuState, PhysicalMemory, PhysRange, ReadFailure, ReadOp, SourceHints, TechniqueInfo } from '../types.js';
import { gpa } from '../../core/address.js';
import { LIVE_SNAPSHOT, described } from './catalog.js';
import { monotonicMs } from '../../core/clock.js';

interface Snapshot {
  file: string;
  source: FileSource;
  image: MigrationImage;
  blocks: Map<string, MigrationBlock>;
  mode: MigrationMode;
  totalMs: number;
  parseMs: number;
  downtimeMs?: number;
  /** vCPU registers read just before the migration started (the background image's instant). */
  cpus: CpuState[];
}

export class LiveSnapshotMemory extends QmpSnapshotMemory<Snapshot> implements PhysicalMemory {
  readonly size: number;

  private constructor(
    target: string,
    lease: QmpLease,
    layout: readonly RamRange[],
    dir: SnapshotDir,
    private readonly mode: MigrationMode,
    private readonly timeoutMs: number,
  ) {
    super(target, lease, layout, dir);
    this.size = layout.length ? layout[layout.length - 1]!.end : 0;
  }

  get technique(): TechniqueInfo {
    return {
      class: 'live-snapshot',
      name: this.snap?.mode === 'precopy' ? 'live-snapshot (pre-copy, pages from different instants)' : 'live-snapshot (background, copy-on-write)',
      live: false,
      haltsGuest: false,
      zeroCopy: false,
    };
  }

  static async open(target: string, lease: QmpLease, mode: MigrationMode, timeoutMs: number, parentDir?: string): Promise<LiveSnapshotMemory> {
    const layout = [...(await lease.discovery()).layout];
    if (!layout.length) throw new SourceError('live-snapshot', target, 'QEMU reports no guest RAM');
    const mem = new LiveSnapshotMemory(target, lease, layout, SnapshotDir.create(parentDir), mode, timeoutMs);
    await mem.takeFirst();
    return mem;
  }

  protected async take(): Promise<Snapshot> {
    const file = this.dir.file(`g${this.generation}.mig`);
    const cpus = await readCpuStates(this.lease.client).catch(() => [] as CpuState[]);
    const res = await migrateToFile(this.lease.client, file, { mode: this.mode, timeoutMs: this.timeoutMs });
    const t0 = monotonicMs();
    const source = FileSource.open(file, 'live-snapshot');
    try {
      const image = parseMigrationStream(source);
      const blocks = new Map(image.blocks.map((b) => [b.idstr, b]));
      for (const r of this.layout) {
        if (!blocks.has(r.block)) throw new SourceError('live-snapshot', this.target, `migration stream has no RAM block '${r.block}'`);
      }
      return {
        file,
        source,
        image,
        blocks,
        mode: res.mode,
        cpus,
        totalMs: res.totalMs,
        parseMs: monotonicMs() - t0,
        ...(res.downtimeMs !== undefined ? { downtimeMs: res.downtimeMs } : {}),
      };
    } catch (err) {
      source.close();
      throw err;
    }
  }

  ranges(): readonly PhysRange[] {
    return this.layout;
  }

  readv(ops: ReadOp[]): ReadFailure[] {
    if (this.closed) throw new SourceError('live-snapshot', this.target, 'read after close');
    const failures: ReadFailure[] = [];
    const { source, blocks } = this.snap;
    for (const op of ops) {
      const dst = readDestination(op, failures);
      if (!dst) continue;
      splitReadFillingHoles(this.layout, op.addr, op.len, dst, failures, (range, blockOffset, dstOffset, n) => {
        readBlock(source, blocks.get(range.block)!, blockOffset, dst.subarray(dstOffset, dstOffset + n), (at, len) =>
          failures.push({ addr: gpa(range.start + (at - range.blockOffset)), len, reason: 'page not in the migration stream' }),
        );
      });
    }
    return failures;
  }

  async hints(): Promise<SourceHints> {
    return { cpus: this.snap.cpus };
  }

  /** The last snapshot: mode, migration time, parse time, QEMU's downtime, pages re-sent (pre-copy). */
  stats(): { mode: MigrationMode; totalMs: number; parseMs: number; downtimeMs?: number; resentPages: number; fileBytes: number } {
    const s = this.snap;
    return {
      mode: s.mode,
      totalMs: s.totalMs,
      parseMs: s.parseMs,
      ...(s.downtimeMs !== undefined ? { downtimeMs: s.downtimeMs } : {}),
      resentPages: s.image.resentPages,
      fileBytes: s.source.size,
    };
  }

  protected drop(s: Snapshot): void {
    s.source.close();
    this.dir.unlink(s.file);
  }
}

export const factory: SourceFactory = {
  ...described(LIVE_SNAPSHOT),
  async probe(target: SourceTarget) {
    if (!target.qmp) return { ok: false, rank: 0, reason: 'no QMP socket given' };
    return { ok: true, rank: 2.4, reason: `QMP ${target.qmp}: migration-stream snapshot, guest keeps running` };
  },
  async open(target: SourceTarget): Promise<PhysicalMemory> {
    if (!target.qmp) throw new SourceError('live-snapshot', target.spec, 'no QMP socket', { hint: 'use qmp:PATH' });
    const mode: MigrationMode = target.params['mode'] === 'precopy' ? 'precopy' : 'background';
    const timeoutMs = Number(target.params['timeout'] ?? 120_000);
    return openOnQmpLease(target.qmp, (lease) => LiveSnapshotMemory.open(`qmp:${target.qmp}`, lease, mode, timeoutMs, target.params['dir']));
  },
};
