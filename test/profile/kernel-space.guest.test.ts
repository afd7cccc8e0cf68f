/**
 * The kernel address space bootstrap and x86-64 translation against real lab
 * guests: 4-level (default CPU), 5-level (TCG -cpu max: LA57) and a 4 GiB
 * guest. Ground truth is the guest's own /proc/kallsyms, /proc/iomem,
 * /sys/kernel/vmcoreinfo, /proc/version, and QEMU's own translation (HMP
 * gva2gpa) and physical reads (HMP xp) as independent witnesses.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openSource } from '../../src/memory/open.js';
import { openQemuShm, type QemuShmMemory } from '../../src/memory/sources/qemu-shm.js';
import { bootstrapKernelSpace, type KernelSpace } from '../../src/profile/kernel-space.js';
import { acquireQmp, type QmpLease } from '../../src/qemu/discover.js';
import type { RamRange } from '../../src/qemu/layout.js';
import { QemuError } from '../../src/core/errors.js';
import type { SourceHints } from '../../src/memory/types.js';
import { findVmcoreinfo } from '../../src/profile/vmcoreinfo.js';
import { sharedGuest, type SharedGuest, type SharedGuestOptions } from '../helpers/guest.js';
import { gpa, gva } from '../../src/core/address.js';

const GiB = 1024 ** 3;

/** QEMU's translation of a VA through vCPU 0's current CR3 (a process PGD shares the kernel half). */
async function gva2gpa(lease: QmpLease, va: bigint): Promise<number | undefined> {
  const text = await lease.client.hmp(`gva2gpa 0x${va.toString(16)}`);
  const m = /gpa:\s*0x([0-9a-f]+)/i.exec(text);
  return m ? Number.parseInt(m[1]!, 16) : undefined;
}

/** QEMU's view of 16 bytes of guest-physical memory. */
async function xp(lease: QmpLease, pa: number): Promise<Uint8Array> {
  const text = await lease.client.hmp(`xp /16xb 0x${pa.toString(16)}`);
  return Uint8Array.from([...text.matchAll(/0x([0-9a-f]{2})\b/g)].map((m) => Number.parseInt(m[1]!, 16)).slice(-16));
}

function spot(g: SharedGuest, name: string): bigint {
  const s = g.truth.kallsyms.spots[name];
  assert.ok(s, `ground truth has ${name}`);
  return s.address;
}

interface Attached {
  g: SharedGuest;
  mem: QemuShmMemory;
  ks: KernelSpace;
  hints: SourceHints;
}

/**
 * A short lease on whichever of the guest's QMP sockets is free: QEMU serves
 * one client per socket and other test files share these guests, so never
 * hold one long.
 */
async function freeQmp(g: SharedGuest): Promise<QmpLease> {
  const sockets = g.guest.qmpSockets?.length ? g.guest.qmpSockets : [g.guest.qmpSocket];
  let last: unknown;
  for (let round = 0; round < 3; round++) {
    for (const sock of sockets) {
      try {
        return await acquireQmp(sock, 1500);
      } catch (e) {
        last = e;
      }
    }
  }
  throw last;
}

async function withQmp<T>(g: SharedGuest, fn: (lease: QmpLease) => Promise<T>): Promise<T> {
  const lease = await freeQmp(g);
  try {
    return await fn(lease);
  } finally {
    await lease.release();
  }
}

function attach(opts: SharedGuestOptions): { get: () => Attached } {
  let a: Attached | undefined;
  before(async () => {
    const g = await sharedGuest(opts);
    // vCPU registers and the layout through QMP once, then read the RAM file without holding
    // QMP. If another client hogs the socket, go on without registers (q35's default layout).
    let hints: SourceHints = {};
    let layout: RamRange[] | undefined;
    try {
      const lease = await freeQmp(g);
      const endpoint = lease.client.endpoint;
      await lease.release();
      const withRegs = await openQemuShm({ path: g.guest.shmPath, qmp: endpoint });
      layout = withRegs.ranges().map((r) => ({ ...(r as RamRange) }));
      hints = await withRegs.hints().finally(() => withRegs.close());
    } catch (e) {
      if (!(e instanceof QemuError)) throw e;
      process.stderr.write(`# QMP unavailable (${e.message}): no vCPU registers for this guest\n`);
    }
    const mem = await openQemuShm({ path: g.guest.shmPath, ...(layout ? { layout } : {}) });
    const ks = await bootstrapKernelSpace(mem, { hints });
    a = { g, mem, ks, hints };
  });
  after(async () => {
    await a?.mem.close();
  });
  return { get: () => a! };
}

function commonChecks(get: () => Attached, levels: 4 | 5): void {
  it('derives release, banner, KASLR, DTB and paging mode that match the guest', () => {
    const { g, ks } = get();
    assert.equal(ks.levels, levels);
    assert.equal(g.truth.cpuFlags.includes('la57'), levels === 5);
    assert.equal(ks.release, g.truth.release);
    assert.equal(ks.banner?.text, g.truth.banner);
    assert.equal(ks.kaslr?.kernelVirtStart, spot(g, '_stext'));
    assert.equal(ks.kaslr?.virtualShift, spot(g, '_text') - 0xffff_ffff_8100_0000n);
    const code = g.truth.iomem.find((r) => r.name === 'Kernel code');
    assert.ok(code);
    assert.equal(BigInt(ks.kaslr!.kernelPhysStart), code.start);
    assert.equal(ks.space.physical(gva(spot(g, 'init_top_pgt'))), ks.dtb);
    // The bootstrap stops at the first copy the page tables confirm; a full search ranks the
    // ELF note that /sys/kernel/vmcoreinfo names first, and both copies say the same.
    const all = findVmcoreinfo(get().mem);
    assert.equal(all.chosen?.pa, Number(g.truth.vmcoreinfo!.paddr) + 0x18, 'the ELF note /sys/kernel/vmcoreinfo names');
    assert.equal(all.chosen?.kind, 'elf-note');
    assert.equal(ks.vmcoreinfoCopy?.info?.raw, all.chosen?.info?.raw);
    if (get().hints.cpus?.length) assert.ok(ks.cr3Checks.length > 0 && ks.cr3Checks.every((c) => c.agrees), JSON.stringify(ks.cr3Checks, (_k, v) => (typeof v === 'bigint' ? v.toString(16) : v)));
  });

  it('translates linux_banner to the bytes of /proc/version', () => {
    const { g, ks } = get();
    const va = spot(g, 'linux_banner');
    assert.equal(ks.space.physical(gva(va)), ks.banner?.pa);
    const want = `${g.truth.banner}\n`;
    assert.equal(Buffer.from(ks.space.read(gva(va), want.length)).toString('latin1'), want);
  });

  it('finds the direct map at page_offset_base', () => {
    const { g, ks } = get();
    assert.equal(ks.directMapBase, ks.space.readU64(spot(g, 'page_offset_base')));
  });

  it('agrees with QEMU gva2gpa on kernel symbols and a sample of every kind of kernel mapping', async () => {
    const { g, ks } = get();
    const vas = ['init_task', 'init_uts_ns', 'init_top_pgt', 'linux_banner', '__start_BTF', 'init_net', 'prb'].map((n) => spot(g, n));
    // Mappings of the kernel half, sampled evenly: direct map, vmalloc, vmemmap, image, fixmap.
    const kernel = [...ks.space.mappings({ start: ks.space.kernelHalfStart, limit: 200_000 })];
    assert.ok(kernel.length > 100);
    const sizes = new Set(kernel.map((m) => m.size));
    assert.ok(sizes.has(4096) && sizes.has(2 << 20), `4 KiB and 2 MiB pages seen (${[...sizes].join(', ')})`);
    const step = Math.max(1, Math.floor(kernel.length / 40));
    for (let i = 0; i < kernel.length; i += step) vas.push(kernel[i]!.va + BigInt(kernel[i]!.size) - 8n);
    const hole = ks.space.kernelHalfStart + 0x1000n;
    const qemu = await withQmp(g, async (lease) => {
      const out: (number | undefined)[] = [];
      for (const va of [...vas, hole]) out.push(await gva2gpa(lease, va));
      return out;
    });
    vas.forEach((va, i) => assert.equal(ks.space.tryTranslate(gva(va))?.pa, qemu[i], `0x${va.toString(16)}`));
    // And an unmapped kernel address is unmapped for both.
    assert.equal(ks.space.tryTranslate(gva(hole)), undefined);
    assert.equal(qemu[vas.length], undefined);
  });
}

describe('4-level guest (6.1, default CPU)', () => {
  const a = attach({ kernel: '6.1' });
  commonChecks(a.get, 4);
});

describe('4-level guest: from a QEMU ELF dump (paging:false) with its VMCOREINFO note', () => {
  const a = attach({ kernel: '6.1' });
  it('takes vmcoreinfo and CR3 from the dump notes and needs no memory scan', async () => {
    const { g, ks: live } = a.get();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmsight-test-dump-'));
    const file = path.join(dir, 'guest.elf');
    try {
      await withQmp(g, (lease) => lease.client.execute('dump-guest-memory', { paging: false, protocol: `file:${file}` }, 120_000));
      const { memory } = await openSource(file);
      try {
        const ks = await bootstrapKernelSpace(memory);
        assert.equal(ks.sources.vmcoreinfo, 'ELF VMCOREINFO note');
        assert.equal(ks.search, undefined);
        assert.equal(ks.release, g.truth.release);
        assert.equal(ks.dtb, live.dtb);
        assert.equal(ks.banner?.text, g.truth.banner);
        assert.ok(ks.cr3Checks.length > 0 && ks.cr3Checks.every((c) => c.agrees), "the dump's vCPU CR3 shares init_top_pgt's kernel half");
        const want = `${g.truth.banner}\n`;
        assert.equal(Buffer.from(ks.space.read(gva(spot(g, 'linux_banner')), want.length)).toString('latin1'), want);
      } finally {
        await memory.close();
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('5-level guest (6.1, -cpu max)', () => {
  const a = attach({ kernel: '6.1', cpu: 'max' });
  commonChecks(a.get, 5);
});

describe('4 GiB guest (6.1)', () => {
  const a = attach({ kernel: '6.1', memory: 4096 });
  commonChecks(a.get, 4);

  it('reads kernel structures that lie above 4 GiB through the page tables', async () => {
    const { g, ks, mem } = a.get();
    // memblock allocates top-down and the page allocator prefers ZONE_NORMAL: early structures
    // such as mem_section, node_data and vmcoreinfo_data live above 4 GiB.
    const v = ks.vmcoreinfo!;
    const pointers = [v.symbols.get('mem_section')!];
    const nodeData = v.symbols.get('node_data');
    if (nodeData !== undefined) pointers.push(ks.space.readPointer(nodeData)); // node_data[0]
    const high: { va: bigint; pa: number }[] = [];
    for (const va of pointers) {
      const pa = ks.space.physical(gva(va));
      if (pa >= 4 * GiB) high.push({ va, pa });
    }
    const copies = (ks.search?.copies ?? []).filter((c) => c.complete && (c.pa ?? 0) >= 4 * GiB);
    assert.ok(high.length > 0 || copies.length > 0, 'some kernel structure is above 4 GiB');
    await withQmp(g, async (lease) => {
      for (const { va, pa } of high) {
        assert.equal(await gva2gpa(lease, va), pa);
        await lease.client.execute('stop');
        try {
          assert.deepEqual(new Uint8Array(ks.space.read(gva(va), 16)), await xp(lease, pa), `0x${va.toString(16)} → 0x${pa.toString(16)}`);
        } finally {
          await lease.client.execute('cont');
        }
      }
    });
    // The direct-map alias of a page above 4 GiB reads the same bytes as the physical read.
    const target = high[0]?.pa ?? copies[0]!.pa!;
    const viaDirect = ks.space.read(ks.space.physToDirect(gpa(target)), 64);
    const op = { addr: gpa(target), len: 64, dst: new Uint8Array(64) };
    assert.deepEqual(mem.readv([op]), []);
    assert.deepEqual(new Uint8Array(viaDirect), op.dst);
  });
});
