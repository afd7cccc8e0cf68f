/**
 * A 4 GiB q35 guest: RAM above 4 GiB (GPA [4G,6G) = backend file [2G,4G)).
 * The snapshot techniques map ramblock offsets to guest-physical addresses
 * through QEMU's layout: they must read the kernel (wherever KASLR put it)
 * and agree with the memory-backend file on RAM above 4 GiB.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { FileSource } from '../../../src/memory/formats/byte-source.js';
import { factory as haltSnapshot } from '../../../src/memory/sources/halt-snapshot.js';
import { factory as liveSnapshot } from '../../../src/memory/sources/live-snapshot.js';
import type { PhysicalMemory } from '../../../src/memory/types.js';
import { ownQmpSocket, sharedGuest, type SharedGuest } from '../../helpers/guest.js';
import { type GuestPhysAddr, gpa } from '../../../src/core/address.js';

const G4 = 0x1_0000_0000;
const G2 = 0x8000_0000;
let g: SharedGuest;
let shm: FileSource;

before(async () => {
  g = await sharedGuest({ kernel: '6.1', memory: 4096 });
  shm = FileSource.open(g.guest.shmPath);
});
after(() => shm?.close());

function bannerPhys(mem: PhysicalMemory): number {
  const note = g.truth.vmcoreinfo!;
  const op = { addr: Number(note.paddr), len: note.size } as { addr: GuestPhysAddr; len: number; dst?: Uint8Array };
  assert.deepEqual(mem.readv([op]), []);
  const text = Buffer.from(op.dst!).toString('latin1');
  const physBase = BigInt(/NUMBER\(phys_base\)=(-?\d+)/.exec(text)![1]!);
  return Number(g.truth.kallsyms.spots['linux_banner']!.address - 0xffffffff80000000n + physBase);
}

for (const [name, factory, params] of [
  ['halt-snapshot', haltSnapshot, {}],
  ['live-snapshot', liveSnapshot, {}],
] as const) {
  test(`${name} on a 4 GiB guest: ranges above 4 GiB, banner, agreement with the backend file`, async () => {
    const qmp = await ownQmpSocket(g.guest);
    const mem = await factory.open({ spec: name, qmp, params });
    try {
      const ranges = mem.ranges();
      assert.ok(ranges.some((r) => r.start === G4 && r.end === G4 + G2), JSON.stringify(ranges));
      const banner = bannerPhys(mem);
      const op = { addr: banner, len: 14 } as { addr: GuestPhysAddr; len: number; dst?: Uint8Array };
      assert.deepEqual(mem.readv([op]), []);
      assert.equal(Buffer.from(op.dst!).toString('latin1'), 'Linux version ');
      // Sampled non-zero pages above 4 GiB match the backend file at offset GPA - 2 GiB
      // (the guest runs on, so a few may have changed since the snapshot).
      let compared = 0;
      let equal = 0;
      const page = new Uint8Array(4096);
      const fromFile = new Uint8Array(4096);
      for (let i = 0; i < 4096 && compared < 64; i++) {
        const pa = G4 + ((i * 7919) % (G2 / 4096)) * 4096;
        mem.readv([{ addr: gpa(pa), len: 4096, dst: page }]);
        if (page.every((b) => b === 0)) continue;
        shm.readAt(fromFile, pa - G2);
        compared++;
        if (Buffer.from(page).equals(Buffer.from(fromFile))) equal++;
      }
      assert.ok(compared >= 8, `only ${compared} non-zero pages above 4 GiB`);
      assert.ok(equal >= compared * 0.8, `${equal} of ${compared} pages agree`);
    } finally {
      await mem.close();
    }
  });
}
