import assert from 'node:assert/strict';
import fs from 'node:fs';
import { before, test } from 'node:test';
import { acquireQmp, hostRanges } from '../../src/qemu/discover.js';
import { pagingLevels, readCpuStates } from '../../src/qemu/registers.js';
import { ownQmpSocket, sharedGuest, type SharedGuest } from '../helpers/guest.js';

let g: SharedGuest;
/** A QMP socket no other test process uses. */
let qmp: string;
before(async () => {
  g = await sharedGuest({ kernel: '6.1' });
  qmp = await ownQmpSocket(g.guest);
});

test('from the QMP socket alone: pid, RAM file, layout, host addresses, registers', async () => {
  const lease = await acquireQmp(qmp);
  try {
    const d = await lease.discovery();
    assert.equal(d.pid, g.guest.pid, d.pidReason);
    assert.equal(d.mainBackend?.memPath, g.guest.shmPath);
    assert.equal(d.mainBackend?.share, true);
    assert.equal(d.mainBackend?.readable, true);
    assert.equal(d.mainBackend?.size, g.guest.memoryMiB * 1024 * 1024);
    assert.deepEqual(d.layout.map((r) => [r.start, r.end, r.blockOffset]), [
      [0, 0xa0000, 0],
      [0xc0000, g.guest.memoryMiB * 1024 * 1024, 0xc0000],
    ]);
    // Each range's host address lies in QEMU's mapping of the RAM file, at the block offset.
    const hosts = await hostRanges(lease.client, d.layout);
    const maps = fs.readFileSync(`/proc/${d.pid}/maps`, 'utf8').split('\n').filter((l) => l.endsWith(g.guest.shmPath));
    assert.ok(maps.length >= 1);
    for (const h of hosts) {
      const line = maps.find((l) => {
        const [a, b] = l.split(' ')[0]!.split('-').map((x) => parseInt(x, 16));
        return h.hva >= a! && h.hva < b!;
      });
      assert.ok(line, `host 0x${h.hva.toString(16)} is in the RAM file mapping`);
      const [a] = line.split(' ')[0]!.split('-').map((x) => parseInt(x, 16));
      const fileOff = parseInt(line.split(/\s+/)[2]!, 16);
      assert.equal(h.hva - a! + fileOff, h.blockOffset);
    }
    const cpus = await readCpuStates(lease.client);
    assert.equal(cpus.length, g.guest.smp);
    for (const c of cpus) {
      assert.equal(pagingLevels(c), g.guest.cpu === 'max' ? 5 : 4);
      assert.equal(c.cr3! & 0xfffn, 0n, 'CR3 is page aligned (no PCID bits on this CPU model)');
    }
  } finally {
    await lease.release();
  }
});
