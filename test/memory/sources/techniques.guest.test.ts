/**
 * Every memory-source technique reads the same guest: the
 * linux_banner bytes at phys(linux_banner) (from the guest's kallsyms ground
 * truth and the vmcoreinfo phys_base out of a paging:false ELF dump), and
 * all agree byte for byte on static kernel pages. A paging:true dump parses.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { FileSource } from '../../../src/memory/formats/byte-source.js';
import { parseElfCore } from '../../../src/memory/formats/elf-core.js';
import { SegmentMap } from '../../../src/memory/formats/segment-map.js';
import { factory as elfCore } from '../../../src/memory/sources/elf-core.js';
import { factory as gdbStub } from '../../../src/memory/sources/gdb-stub.js';
import { factory as haltSnapshot } from '../../../src/memory/sources/halt-snapshot.js';
import { factory as liveSnapshot } from '../../../src/memory/sources/live-snapshot.js';
import { factory as monitorRead } from '../../../src/memory/sources/monitor-read.js';
import type { SourceFactory, SourceTarget } from '../../../src/memory/source-factory.js';
import type { PhysicalMemory } from '../../../src/memory/types.js';
import { SnapshotDir } from '../../../src/qemu/migration.js';
import { QmpClient } from '../../../src/qemu/qmp.js';
import { ownQmpSocket, sharedGuest, type SharedGuest } from '../../helpers/guest.js';
import { type GuestPhysAddr, gpa } from '../../../src/core/address.js';

const KERNEL_MAP = 0xffffffff80000000n;
let g: SharedGuest;
let dir: SnapshotDir;
let qmpPath: string;
let bannerPhys = 0;
let pages: number[] = [];
const reference = new Map<number, Uint8Array>();

async function withQmp<T>(fn: (q: QmpClient) => Promise<T>): Promise<T> {
  const q = await QmpClient.connect(qmpPath, { timeoutMs: 15_000 });
  try {
    return await fn(q);
  } finally {
    await q.close();
  }
}

before(async () => {
  g = await sharedGuest({ kernel: '6.1' });
  qmpPath = await ownQmpSocket(g.guest);
  dir = SnapshotDir.create();
});
after(() => dir?.remove());

test('elf-core (paging:false dump): vmcoreinfo note gives phys_base; linux_banner reads back', async () => {
  const file = dir.file('nopaging.elf');
  await withQmp((q) => q.execute('dump-guest-memory', { paging: false, protocol: `file:${file}` }, 0));
  const mem = await elfCore.open({ spec: file, file, params: {} });
  try {
    const hints = await mem.hints!();
    assert.ok(hints.vmcoreinfo?.includes(`OSRELEASE=${g.truth.release}`));
    assert.ok((hints.cpus?.[0]?.cr3 ?? 0n) > 0n, 'QEMU note gives CR3');
    const physBase = BigInt(/NUMBER\(phys_base\)=(-?\d+)/.exec(hints.vmcoreinfo!)![1]!);
    const spots = g.truth.kallsyms.spots;
    const phys = (s: string) => Number(spots[s]!.address - KERNEL_MAP + physBase);
    bannerPhys = phys('linux_banner');
    pages = [...new Set([phys('_text'), bannerPhys, phys('_text') + 0x1000, phys('__start_BTF')].map((p) => p - (p % 4096)))];
    const op = { addr: bannerPhys, len: 64 } as { addr: GuestPhysAddr; len: number; dst?: Uint8Array };
    assert.deepEqual(mem.readv([op]), []);
    assert.ok(g.truth.banner.startsWith(Buffer.from(op.dst!).toString('latin1').split('\0')[0]!.slice(0, 40)));
    for (const p of pages) {
      const r = { addr: p, len: 4096 } as { addr: GuestPhysAddr; len: number; dst?: Uint8Array };
      assert.deepEqual(mem.readv([r]), []);
      reference.set(p, r.dst!);
    }
  } finally {
    await mem.close();
  }
});

test('elf-core (paging:true dump): PN_XNUM program headers parse and the physical map serves the banner', async () => {
  const file = dir.file('paging.elf');
  await withQmp((q) => q.execute('dump-guest-memory', { paging: true, protocol: `file:${file}` }, 0));
  const src = FileSource.open(file);
  try {
    const core = parseElfCore(src);
    assert.equal(core.paging, true);
    const ehdr = new Uint8Array(64);
    src.readAt(ehdr, 0);
    const ePhnum = new DataView(ehdr.buffer).getUint16(56, true);
    // QEMU uses PN_XNUM once a paging dump has 65535 or more program headers.
    if (core.programHeaderCount >= 0xffff) assert.equal(ePhnum, 0xffff);
    else assert.equal(ePhnum, core.programHeaderCount);
    assert.ok(core.programHeaderCount > 1000);
    const map = new SegmentMap(src, core.segments);
    const op = { addr: bannerPhys, len: 14 } as { addr: GuestPhysAddr; len: number; dst?: Uint8Array };
    assert.deepEqual(map.readv([op]), []);
    assert.equal(Buffer.from(op.dst!).toString('latin1'), 'Linux version ');
  } finally {
    src.close();
    dir.unlink(file);
  }
});

const techniques: Array<[string, SourceFactory, () => SourceTarget]> = [
  ['halt-snapshot pmemsave', haltSnapshot, () => ({ spec: 'h', qmp: qmpPath, params: {} })],
  ['live-snapshot background', liveSnapshot, () => ({ spec: 'l', qmp: qmpPath, params: {} })],
  ['live-snapshot pre-copy', liveSnapshot, () => ({ spec: 'l', qmp: qmpPath, params: { mode: 'precopy' } })],
  ['monitor-read', monitorRead, () => ({ spec: 'm', qmp: qmpPath, params: {} })],
  ['gdb-stub', gdbStub, () => ({ spec: 'g', gdb: `127.0.0.1:${g.guest.gdbPort}`, qmp: qmpPath, params: {} })],
];

for (const [name, factory, target] of techniques) {
  test(`${name}: reads linux_banner and agrees with the dump on static kernel pages; guest left running`, async () => {
    assert.ok(bannerPhys > 0 && reference.size > 0, 'needs the dump test first');
    let mem: PhysicalMemory | undefined;
    try {
      mem = await factory.open(target());
      const op = { addr: bannerPhys, len: 14 } as { addr: GuestPhysAddr; len: number; dst?: Uint8Array };
      assert.deepEqual(mem.readv([op]), []);
      assert.equal(Buffer.from(op.dst!).toString('latin1'), 'Linux version ');
      const ops = pages.map((p) => ({ addr: p, len: 4096 })) as Array<{ addr: GuestPhysAddr; len: number; dst?: Uint8Array }>;
      assert.deepEqual(mem.readv(ops), []);
      for (const o of ops) assert.ok(Buffer.from(o.dst!).equals(Buffer.from(reference.get(o.addr)!)), `page 0x${o.addr.toString(16)} differs`);
      if (mem.hints) {
        const cpus = (await mem.hints()).cpus ?? [];
        assert.ok(cpus.length >= 1 && (cpus[0]!.cr3 ?? 0n) > 0n, 'vCPU registers with CR3');
      }
      const hole = mem.readv([{ addr: gpa(0xa0000), len: 16 }]);
      assert.equal(hole.length, 1, 'the VGA window is not RAM');
      if (mem.refresh) {
        const gen = mem.generation;
        await mem.refresh();
        assert.equal(mem.generation, gen + 1);
        assert.deepEqual(mem.readv([{ addr: gpa(bannerPhys), len: 8 }]), []);
      }
    } finally {
      await mem?.close();
    }
    const status = await withQmp((q) => q.execute<{ status: string }>('query-status'));
    assert.equal(status.status, 'running');
  });
}
