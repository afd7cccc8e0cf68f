import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { QmpLease } from '../../../src/qemu/discover.js';
import type { SnapshotDir } from '../../../src/qemu/migration.js';
import { QmpSnapshotMemory } from '../../../src/memory/sources/qemu-snapshot.js';

/** Snapshots are numbers; every lifecycle step is logged. */
class FakeSnapshots extends QmpSnapshotMemory<number> {
  failAt = -1;
  constructor(readonly log: string[]) {
    const lease = { release: async () => void log.push('release') } as unknown as QmpLease;
    const dir = { remove: () => void log.push('remove') } as unknown as SnapshotDir;
    super('fake', lease, [], dir);
  }
  protected async take(): Promise<number> {
    if (this.generation === this.failAt) throw new Error(`take ${this.generation} failed`);
    this.log.push(`take ${this.generation}`);
    return this.generation;
  }
  protected drop(s: number): void {
    this.log.push(`drop ${s}`);
  }
  open(): Promise<void> {
    return this.takeFirst();
  }
  get current(): number {
    return this.snap;
  }
}

test('snapshot lifecycle: refresh drops the old one only after the new one exists; close releases once', async () => {
  const log: string[] = [];
  const m = new FakeSnapshots(log);
  await m.open();
  await m.refresh();
  assert.equal(m.current, 1);
  m.failAt = 2;
  await assert.rejects(m.refresh(), /take 2 failed/);
  assert.equal(m.current, 1, 'a failed refresh keeps the last snapshot');
  await m.close();
  await m.close();
  assert.deepEqual(log, ['take 0', 'take 1', 'drop 0', 'drop 1', 'remove', 'release']);
});

test('a failed first snapshot removes the directory and leaves the lease to the caller', async () => {
  const log: string[] = [];
  const m = new FakeSnapshots(log);
  m.failAt = 0;
  await assert.rejects(m.open(), /take 0 failed/);
  assert.deepEqual(log, ['remove']);
});
