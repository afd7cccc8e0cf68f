/**
 * The lifecycle every QMP file-snapshot source shares (halt-snapshot,
 * live-snapshot): one snapshot at a time in a private directory, a new one
 * per `refresh()` (the old one dropped only once the new one exists), all
 * files and the QMP lease released on `close()`.
 */
import type { QmpLease } from '../../qemu/discover.js';
import type { RamRange } from '../../qemu/layout.js';
import type { SnapshotDir } from '../../qemu/migration.js';

export abstract class QmpSnapshotMemory<S> {
  generation = 0;
  protected snap!: S;
  protected closed = false;

  protected constructor(
    readonly target: string,
    protected readonly lease: QmpLease,
    protected readonly layout: readonly RamRange[],
    protected readonly dir: SnapshotDir,
  ) {}

  /** Writes and opens snapshot number `generation`. */
  protected abstract take(): Promise<S>;

  /** Closes a snapshot and deletes its files. */
  protected abstract drop(s: S): void;

  /** Takes the first snapshot; on failure the directory is removed (the lease stays the caller's). */
  protected async takeFirst(): Promise<void> {
    try {
      this.snap = await this.take();
    } catch (err) {
      this.dir.remove();
      throw err;
    }
  }

  /** Keeps the snapshot files when the source closes (`acquire --keep`); returns their directory. */
  keepSnapshot(): string {
    return this.dir.keep();
  }

  async refresh(): Promise<void> {
    const old = this.snap;
    this.generation++;
    this.snap = await this.take();
    this.drop(old);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.drop(this.snap);
    this.dir.remove();
    await this.lease.release();
  }
}
