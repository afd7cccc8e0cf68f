import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { readPhys } from '../../src/memory/access.js';
import { openQemuProcess } from '../../src/memory/sources/qemu-process.js';
import { openQemuShm } from '../../src/memory/sources/qemu-shm.js';
import { acquireQmp } from '../../src/qemu/discover.js';
import type { QmpClient } from '../../src/qemu/qmp.js';
import { ownQmpSocket, sharedGuest, type SharedGuest } from '../helpers/guest.js';
import { bannerPhys } from '../qemu/helpers/guest-truth.js';
import { gpa } from '../../src/core/address.js';

let g: SharedGuest;
/** A QMP socket no other test process uses. */
let qmp: string;
before(async () => {
  g = await sharedGuest({ kernel: '6.1', memory: 4096 });
  qmp = await ownQmpSocket(g.guest);
});

const GiB = 1024 ** 3;

/** QEMU's own view of 16 bytes at a guest-physical address (`xp`), as an independent witness. */
async function xp(client: QmpClient, addr: number): Promise<Uint8Array> {
  const text = await client.hmp(`xp /16xb 0x${addr.toString(16)}`);
  const bytes = [...text.matchAll(/0x([0-9a-f]{2})\b/g)].map((m) => parseInt(m[1]!, 16));
  return new Uint8Array(bytes.slice(-16));
}

test('4 GiB guest: RAM above 4 GiB comes from file offset 2 GiB, and all readers agree with QEMU', async () => {
  const shm = await openQemuShm({ path: g.guest.shmPath, qmp: qmp });
  const proc = await openQemuProcess({ qmp: qmp });
  const lease = await acquireQmp(qmp);
  try {
    assert.deepEqual(shm.ranges().map((r) => [r.start, r.end, r.name]), [
      [0, 0xa0000, 'ram-below-4g'],
      [0xc0000, 2 * GiB, 'ram-below-4g'],
      [4 * GiB, 6 * GiB, 'ram-above-4g'],
    ]);
    assert.equal(shm.size, 6 * GiB);
    // The first page above 4 GiB that holds data (the tmpfs file is sparse).
    const high = shm.mapped!().filter((r) => r.start >= 4 * GiB);
    let found = -1;
    for (const r of high) {
      for (let off = 0; off < r.bytes.length && found < 0; off += 4096) {
        const page = r.bytes.subarray(off, off + 4096);
        if (page.some((b) => b !== 0)) found = r.start + off + page.findIndex((b) => b !== 0);
      }
      if (found >= 0) break;
    }
    assert.ok(found >= 4 * GiB, 'the guest wrote something above 4 GiB');
    const addr = found & ~15;
    await lease.client.execute('stop');
    try {
      const witness = await xp(lease.client, addr);
      assert.deepEqual(new Uint8Array(readPhys(shm, addr, 16)), witness, `live map at 0x${addr.toString(16)}`);
      assert.deepEqual(readPhys(proc, addr, 16), witness, `live read at 0x${addr.toString(16)}`);
    } finally {
      await lease.client.execute('cont');
    }
    // The PCI hole between 2 and 4 GiB is not RAM.
    assert.equal(shm.readv([{ addr: gpa(3 * GiB), len: 8 }]).length, 1);
    assert.equal(proc.readv([{ addr: gpa(3 * GiB), len: 8 }]).length, 1);
    // And the banner is where the guest's vmcoreinfo says, whichever side of 4 GiB KASLR put it.
    const pa = bannerPhys(shm, g.truth);
    const want = `${g.truth.banner}\n`;
    assert.equal(Buffer.from(readPhys(shm, pa, want.length)).toString('latin1'), want);
    assert.equal(Buffer.from(readPhys(proc, pa, want.length)).toString('latin1'), want);
  } finally {
    await shm.close();
    await proc.close();
    await lease.release();
  }
});
