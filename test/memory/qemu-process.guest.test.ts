import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { readPhys } from '../../src/memory/access.js';
import { HaltingMemory, qmpControl } from '../../src/memory/halting.js';
import { openQemuProcess } from '../../src/memory/sources/qemu-process.js';
import { openQemuShm } from '../../src/memory/sources/qemu-shm.js';
import type { PhysicalMemory, ReadOp } from '../../src/memory/types.js';
import { acquireQmp } from '../../src/qemu/discover.js';
import { ownQmpSocket, sharedGuest, type SharedGuest } from '../helpers/guest.js';
import { bannerPhys } from '../qemu/helpers/guest-truth.js';
import { gpa } from '../../src/core/address.js';

let g: SharedGuest;
/** A QMP socket no other test process uses. */
let qmp: string;
before(async () => {
  g = await sharedGuest({ kernel: '6.1' });
  qmp = await ownQmpSocket(g.guest);
});

/** Pages to compare: low memory, around the banner, and a spread over all RAM. */
function samplePages(mem: PhysicalMemory, around: number): number[] {
  const pages = new Set<number>();
  for (let p = 0; p < 0x100000; p += 4096) pages.add(p);
  const base = Math.floor(around / 4096) * 4096;
  for (let i = -64; i < 64; i++) pages.add(base + i * 4096);
  for (let p = 0; p < mem.size; p += 509 * 4096) pages.add(p);
  return [...pages].filter((p) => p >= 0 && p + 4096 <= mem.size);
}

test('live read and live map agree byte for byte on a paused guest, through both live-read methods', async () => {
  const shm = await openQemuShm({ path: g.guest.shmPath, qmp: qmp });
  const proc = await openQemuProcess({ qmp: qmp });
  const procMem = await openQemuProcess({ qmp: qmp, method: 'proc-mem' });
  const control = await acquireQmp(qmp);
  const halted = new HaltingMemory(shm, qmpControl(control.client));
  try {
    assert.equal(proc.pid, g.guest.pid, 'the pid found from the QMP socket is the lab QEMU');
    assert.equal(proc.method, 'process_vm_readv');
    const pa = bannerPhys(shm, g.truth);
    await halted.pass(() => {
      const pages = samplePages(shm, pa);
      const read = (m: PhysicalMemory) => {
        const ops: ReadOp[] = pages.map((addr) => ({ addr: gpa(addr), len: 4096 }));
        const failures = m.readv(ops);
        return { ops, failures };
      };
      const a = read(shm);
      const b = read(proc);
      const c = read(procMem);
      assert.deepEqual(b.failures, a.failures, 'same holes');
      assert.deepEqual(c.failures, a.failures);
      assert.ok(a.failures.some((f) => f.addr === 0xa0000), 'the vga window is a hole for both');
      let differing = 0;
      for (let i = 0; i < pages.length; i++) {
        if (Buffer.compare(a.ops[i]!.dst!, b.ops[i]!.dst!) !== 0 || Buffer.compare(a.ops[i]!.dst!, c.ops[i]!.dst!) !== 0) differing++;
      }
      assert.equal(differing, 0, `${differing} of ${pages.length} pages differ`);
    });
    const want = `${g.truth.banner}\n`;
    assert.equal(Buffer.from(readPhys(proc, pa, want.length)).toString('latin1'), want);
  } finally {
    await halted.close(); // closes shm too
    await proc.close();
    await procMem.close();
    await control.release();
  }
  const status = await acquireQmp(qmp);
  try {
    assert.equal((await status.client.execute<{ status: string }>('query-status')).status, 'running', 'the guest was resumed');
  } finally {
    await status.release();
  }
});
