import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { readPhys } from '../../src/memory/access.js';
import { openQemuShm } from '../../src/memory/sources/qemu-shm.js';
import { acquireQmp } from '../../src/qemu/discover.js';
import { ownQmpSocket, sharedGuest, type SharedGuest } from '../helpers/guest.js';
import { bannerPhys } from '../qemu/helpers/guest-truth.js';
import type { GuestPhysAddr } from '../../src/core/address.js';

let g: SharedGuest;
/** A QMP socket no other test process uses. */
let qmp: string;
before(async () => {
  g = await sharedGuest({ kernel: '6.1' });
  qmp = await ownQmpSocket(g.guest);
});

test('live map reads the kernel banner where vmcoreinfo and kallsyms put it', async () => {
  const mem = await openQemuShm({ path: g.guest.shmPath, qmp: qmp });
  try {
    assert.equal(mem.layoutSource, 'qmp');
    assert.equal(mem.technique.zeroCopy, true);
    const pa = bannerPhys(mem, g.truth);
    const want = `${g.truth.banner}\n`;
    const view = readPhys(mem, pa, want.length);
    assert.equal(Buffer.from(view).toString('latin1'), want);
    const op = { addr: pa, len: want.length } as { addr: GuestPhysAddr; len: number; dst?: Uint8Array };
    assert.deepEqual(mem.readv([op]), []);
    assert.deepEqual(op.dst, new Uint8Array(view));
    const cpus = (await mem.hints()).cpus!;
    assert.equal(cpus.length, g.guest.smp);
    assert.ok(cpus[0]!.cr3! > 0n && cpus[0]!.cr3! < BigInt(mem.size));
  } finally {
    await mem.close();
  }
});

test('the q35 rule for a bare file gives the same layout QMP reports', async () => {
  const bare = await openQemuShm({ path: g.guest.shmPath });
  const lease = await acquireQmp(qmp);
  try {
    assert.equal(bare.layoutSource, 'q35-default');
    const d = await lease.discovery();
    assert.deepEqual(
      bare.ranges().map((r) => [r.start, r.end]),
      d.layout.map((r) => [r.start, r.end]),
    );
  } finally {
    await bare.close();
    await lease.release();
  }
});

after(() => undefined);
