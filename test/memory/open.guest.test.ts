import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { readPhys } from '../../src/memory/access.js';
import { openSource } from '../../src/memory/open.js';
import { acquireQmp } from '../../src/qemu/discover.js';
import { sharedGuest, withQmpSocket, type SharedGuest } from '../helpers/guest.js';
import { bannerPhys } from '../qemu/helpers/guest-truth.js';

let g: SharedGuest;
before(async () => {
  g = await sharedGuest({ kernel: '6.1' });
});

async function guestStatus(): Promise<string> {
  return withQmpSocket(g.guest, async (socket) => {
    const lease = await acquireQmp(socket);
    try {
      return (await lease.client.execute<{ status: string }>('query-status')).status;
    } finally {
      await lease.release();
    }
  });
}

test('a lab guest name picks live map, says why, and reads the banner', async () => {
  const qmpSpec = async (fn: (spec: string) => Promise<void>) => withQmpSocket(g.guest, (socket) => fn(`qmp:${socket}`));
  for (const named of [g.guest.name, `lab:${g.guest.name}`, undefined]) {
    if (named === undefined) {
      await qmpSpec((spec) => check(spec));
      continue;
    }
    await check(named);
  }
  async function check(spec: string): Promise<void> {
    const r = await openSource(spec);
    try {
      assert.equal(r.chosen.factory, 'qemu-shm', spec);
      assert.equal(r.chosen.class, 'live-map');
      assert.match(r.chosen.reason, /share=on|readable/);
      assert.match(r.chosen.reason, /also: qemu-process \(live-read\)/);
      assert.ok(r.candidates.some((c) => c.factory === 'qemu-process' && c.ok));
      assert.ok(r.candidates.some((c) => c.factory === 'raw-file' && !c.ok));
      const pa = bannerPhys(r.memory, g.truth);
      assert.equal(Buffer.from(readPhys(r.memory, pa, 14)).toString('latin1'), 'Linux version ');
    } finally {
      await r.memory.close();
    }
  }
});

test('technique=live-read and halting=1 are honoured; the guest runs again after close', async () => {
  const r = await openSource(`${g.guest.name}?technique=live-read&halting=1`);
  try {
    assert.equal(r.chosen.factory, 'qemu-process');
    assert.equal(r.chosen.class, 'guest-halting');
    assert.equal(r.memory.technique.name, 'halting(qemu-process)');
    assert.equal(await guestStatus(), 'paused');
    const gen = r.memory.generation;
    await r.memory.refresh!();
    assert.equal(r.memory.generation, gen + 1);
    assert.equal(await guestStatus(), 'paused');
    const pa = bannerPhys(r.memory, g.truth);
    assert.equal(Buffer.from(readPhys(r.memory, pa, g.truth.banner.length)).toString('latin1'), g.truth.banner);
  } finally {
    await r.memory.close();
  }
  assert.equal(await guestStatus(), 'running');
});

test('shm: and pid: names open the technique they name', async () => {
  const s = await openSource(`shm:${g.guest.shmPath}`);
  try {
    assert.equal(s.chosen.factory, 'qemu-shm');
    assert.equal(s.memory.size, g.guest.memoryMiB * 1024 * 1024);
  } finally {
    await s.memory.close();
  }
  await withQmpSocket(g.guest, async (socket) => {
    const p = await openSource(`pid:${g.guest.pid}?qmp=${socket}&technique=qemu-process&method=proc-mem`);
    try {
      assert.equal(p.chosen.factory, 'qemu-process');
      assert.match(p.memory.target, new RegExp(`^pid:${g.guest.pid}`));
    } finally {
      await p.memory.close();
    }
  });
});
