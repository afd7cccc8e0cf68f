import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BridgedMemory } from '../../../src/memory/bridge/bridged-memory.js';
import { siblingModule } from '../../../src/memory/bridge/protocol.js';
import { SyncBridge } from '../../../src/memory/bridge/sync-bridge.js';
import type { TechniqueInfo } from '../../../src/memory/types.js';
import { q35Layout } from '../../../src/qemu/layout.js';
import { type GuestPhysAddr, gpa } from '../../../src/core/address.js';

class FakeBridged extends BridgedMemory {
  readonly technique: TechniqueInfo = { class: 'monitor-read', name: 'fake', live: true, haltsGuest: false, zeroCopy: false };
}

test('bridged memory: size and ranges from the layout, holes fail locally, RAM crosses the bridge', async () => {
  const layout = q35Layout(0x100000);
  const bridge = await SyncBridge.start(siblingModule(import.meta.url, 'helpers/fake-backend'), { size: 0x100000 }, { technique: 'fake', target: 'fake:0' });
  const mem = new FakeBridged('fake:0', bridge, layout);
  try {
    assert.equal(mem.size, 0x100000);
    assert.equal(mem.ranges(), layout);
    assert.equal(mem.generation, 0);
    const ops = [{ addr: 0x9fff0, len: 0x20 }] as Array<{ addr: GuestPhysAddr; len: number; dst?: Uint8Array }>;
    const before = bridge.roundTrips;
    const failures = mem.readv(ops);
    assert.equal(ops[0]!.dst![0], 0xf0);
    assert.equal(ops[0]!.dst![0x10], 0, 'the VGA hole reads as zero');
    assert.deepEqual(failures.map((f) => [f.addr, f.len]), [[0xa0000, 0x10]]);
    assert.equal(bridge.roundTrips, before + 1);
    const hole = [{ addr: gpa(0xa0000), len: 8 }];
    assert.equal(mem.readv(hole).length, 1);
    assert.equal(bridge.roundTrips, before + 1, 'a read entirely in a hole never crosses the bridge');
  } finally {
    await mem.close();
  }
});
