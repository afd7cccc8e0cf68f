import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ProfileError } from '../../src/core/errors.js';
import { bootstrapKernelSpace, kernelImagePhys } from '../../src/profile/kernel-space.js';
import { testMemory } from '../arch/helpers/memory.js';
import { syntheticGuest } from '../arch/helpers/synthetic-guest.js';
import { gpa, gva } from '../../src/core/address.js';

for (const levels of [4, 5] as const) {
  for (const mapped of [true, false]) {
    describe(`bootstrapKernelSpace: ${levels}-level synthetic guest (${mapped ? 'mapped' : 'copying'})`, () => {
      it('derives DTB, KASLR and paging mode from vmcoreinfo and verifies them', async () => {
        const g = syntheticGuest({ levels });
        const ks = await bootstrapKernelSpace(testMemory(g.ram, { mapped }));
        assert.equal(ks.release, g.release);
        assert.equal(ks.dtb, g.dtb);
        assert.equal(ks.levels, levels);
        assert.match(ks.sources.levels, /pgtable_l5_enabled/);
        assert.equal(ks.kaslr?.virtualShift, g.kernelOffset);
        assert.equal(ks.kaslr?.physBase, g.physBase);
        assert.equal(ks.kaslr?.kernelVirtStart, g.textVa);
        assert.equal(ks.kaslr?.kernelPhysStart, g.textPa);
        assert.equal(ks.vmcoreinfoCopy?.pa, g.noteTextPa);
        assert.equal(ks.uts?.release, g.release);
        assert.equal(ks.uts?.version, g.version);
        assert.equal(ks.uts?.machine, 'x86_64');
        assert.equal(ks.banner?.text, g.banner);
        assert.equal(ks.banner?.pa, g.bannerPa);
        assert.equal(ks.banner?.va, g.bannerVa);
        assert.equal(ks.directMapBase, g.directMapBase);
        // The address space works: the banner through its kernel VA and through the direct map.
        const viaImage = Buffer.from(ks.space.read(gva(g.bannerVa), g.banner.length)).toString('latin1');
        assert.equal(viaImage, g.banner);
        assert.equal(ks.space.readCString(ks.space.physToDirect(gpa(g.bannerPa)), 600), g.banner + '\n');
        assert.equal(ks.space.physical(gva(g.bannerVa)), kernelImagePhys(g.bannerVa, g.physBase));
        for (const step of ['vmcoreinfo', 'verify', 'banner', 'directMap', 'total']) assert.equal(typeof ks.timings[step], 'number');
      });
    });
  }
}

describe('bootstrapKernelSpace: hostile and odd inputs', () => {
  it('refuses a stale vmcoreinfo copy the page tables do not confirm, and says so', async () => {
    const g = syntheticGuest({ staleCopy: true });
    const ks = await bootstrapKernelSpace(testMemory(g.ram, { mapped: true }));
    assert.equal(ks.release, g.release);
    assert.equal(ks.vmcoreinfoCopy?.pa, g.noteTextPa);
    assert.equal(ks.rejected.length, 1);
    assert.equal(ks.rejected[0]!.release, '5.10.0-32-amd64');
    assert.match(ks.rejected[0]!.reason, /do not map init_top_pgt/);
    assert.ok(ks.notes.some((n) => /refused vmcoreinfo .*5\.10\.0-32/.test(n)));
  });

  it('picks the banner the page tables and vmcoreinfo agree with among several', async () => {
    const g = syntheticGuest({ staleBanner: true });
    const ks = await bootstrapKernelSpace(testMemory(g.ram, { mapped: true }), { bannerScan: 'all' });
    assert.equal(ks.banner?.pa, g.bannerPa);
    const c = ks.banner!.candidates;
    assert.equal(c.filter((x) => x.accepted).length, 1);
    assert.ok(c.some((x) => /5\.10\.0-32/.test(x.text) && /release differs/.test(x.reason)));
    assert.ok(c.some((x) => /# SMP/.test(x.text) && /does not end with/.test(x.reason)));
    assert.ok(c.some((x) => x.text === g.banner && x.pa < g.bannerPa && /kernel log/.test(x.reason)), 'the log-record copy before linux_banner is refused');
    assert.ok(c.some((x) => x.pa === (5 << 20) + 0x77 && !x.accepted), 'the copy outside the image is not chosen');
    assert.match(ks.banner!.reason, /other\(s\) refused/);
  });

  it('finds new_utsname after a kref (kernels before 5.11)', async () => {
    const g = syntheticGuest({ utsNameOffset: 4 });
    const ks = await bootstrapKernelSpace(testMemory(g.ram));
    assert.equal(ks.uts?.releaseOffset, 134);
  });

  it('uses the out-of-band note and cross-checks CR3 (a process PGD with the same kernel half)', async () => {
    const g = syntheticGuest({ levels: 5 });
    const mem = testMemory(g.ram, { mapped: true, hints: { vmcoreinfo: g.vmcoreinfo, cpus: g.cpus() } });
    const ks = await bootstrapKernelSpace(mem);
    assert.equal(ks.sources.vmcoreinfo, 'ELF VMCOREINFO note');
    assert.equal(ks.search, undefined, 'no memory scan needed');
    assert.equal(ks.cr3Checks.length, 1);
    assert.equal(ks.cr3Checks[0]!.agrees, true);
    assert.match(ks.cr3Checks[0]!.detail, /same kernel half/);
  });

  it('reports a CR3 whose kernel half differs', async () => {
    const g = syntheticGuest();
    g.ram.fill(0, g.processPgd, g.processPgd + 4096);
    g.ram[g.processPgd + 4088] = 0x67; // one bogus kernel-half entry
    const ks = await bootstrapKernelSpace(testMemory(g.ram, { hints: { cpus: g.cpus() } }));
    assert.equal(ks.cr3Checks[0]!.agrees, false);
    assert.ok(ks.notes.some((n) => /different kernel half/.test(n)));
  });

  it('falls back to CR3 and CR4.LA57 without vmcoreinfo', async () => {
    const g = syntheticGuest({ levels: 5, noVmcoreinfo: true });
    const ks = await bootstrapKernelSpace(testMemory(g.ram, { mapped: true, hints: { cpus: g.cpus() } }));
    assert.equal(ks.vmcoreinfo, undefined);
    assert.equal(ks.dtb, g.processPgd);
    assert.equal(ks.levels, 5);
    assert.match(ks.sources.levels, /CR4\.LA57=1/);
    assert.equal(Buffer.from(ks.space.read(gva(g.bannerVa), 13)).toString(), 'Linux version');
  });

  it('fails with a ProfileError naming what it tried when there is nothing to go on', async () => {
    const g = syntheticGuest({ noVmcoreinfo: true });
    await assert.rejects(bootstrapKernelSpace(testMemory(g.ram)), (e: unknown) => e instanceof ProfileError && /no vmcoreinfo/.test(e.message) && /memory scan/.test(e.message));
  });

  it('does not trust a vmcoreinfo whose init_uts_ns disagrees', async () => {
    const g = syntheticGuest();
    const uts = g.textPa + Number(g.utsVa - g.textVa);
    g.ram.set(Buffer.from('9.9.9-other\0'), uts + 130);
    await assert.rejects(bootstrapKernelSpace(testMemory(g.ram)), (e: unknown) => e instanceof ProfileError && /init_uts_ns at 0x[0-9a-f]+ does not hold "Linux" and release/.test(e.message) && /no vmcoreinfo confirmed/.test(e.message));
  });
});

describe('bootstrapKernelSpace: the attach fast path', () => {
  /** A memory whose hints() counts its calls; `live` picks a live or a file-like source. */
  function counted(g: ReturnType<typeof syntheticGuest>, live: boolean) {
    const mem = testMemory(g.ram, { mapped: true, hints: { cpus: g.cpus() } });
    const calls = { n: 0 };
    const inner = mem.hints!.bind(mem);
    const wrapped = Object.assign(Object.create(Object.getPrototypeOf(mem)), mem, {
      technique: { ...mem.technique, live },
      hints: async () => {
        calls.n++;
        return inner();
      },
    }) as typeof mem;
    return { mem: wrapped, calls };
  }

  it('lazyHints: a live source is not asked for vCPU registers when vmcoreinfo is confirmed; a file is', async () => {
    const g = syntheticGuest();
    const live = counted(g, true);
    const ks = await bootstrapKernelSpace(live.mem, { lazyHints: true });
    assert.equal(live.calls.n, 0);
    assert.equal(ks.cr3Checks.length, 0);
    assert.equal(ks.timings['hints'], undefined);
    assert.ok(ks.notes.some((n) => /not asked/.test(n)));
    assert.equal(ks.dtb, g.dtb);
    const file = counted(g, false);
    const kf = await bootstrapKernelSpace(file.mem, { lazyHints: true });
    assert.equal(file.calls.n, 1);
    assert.equal(kf.cr3Checks.length, 1);
  });

  it('lazyHints: asks after all when memory holds no confirmed vmcoreinfo (the CR3 fallback)', async () => {
    const g = syntheticGuest();
    // Wipe every vmcoreinfo copy.
    const needle = Buffer.from('OSRELEASE=');
    const ram = Buffer.from(g.ram.buffer, g.ram.byteOffset, g.ram.byteLength);
    for (let i = ram.indexOf(needle); i >= 0; i = ram.indexOf(needle, i + 1)) ram[i] = 0x58;
    const live = counted(g, true);
    const ks = await bootstrapKernelSpace(live.mem, { lazyHints: true });
    assert.equal(live.calls.n, 1);
    assert.match(ks.sources.dtb, /CR3 of vCPU/);
  });

  it('vmcoreinfoAt: a remembered address is verified and used without a scan; a wrong one falls back to the scan silently', async () => {
    const g = syntheticGuest();
    const hit = await bootstrapKernelSpace(testMemory(g.ram, { mapped: true }), { vmcoreinfoAt: [g.noteTextPa!] });
    assert.equal(hit.search, undefined, 'no memory scan');
    assert.equal(hit.vmcoreinfoCopy?.pa, g.noteTextPa);
    assert.equal(hit.dtb, g.dtb);
    const miss = await bootstrapKernelSpace(testMemory(g.ram, { mapped: true }), { vmcoreinfoAt: [0x1234, g.ram.length + 4096, -1, g.bannerPa] });
    assert.ok(miss.search, 'scanned');
    assert.equal(miss.vmcoreinfoCopy?.pa, g.noteTextPa);
    assert.deepEqual(miss.rejected, []);
  });

  it('vmcoreinfoAt: a remembered stale copy the page tables refuse is not used', async () => {
    const g = syntheticGuest({ staleCopy: true });
    const ks = await bootstrapKernelSpace(testMemory(g.ram, { mapped: true }), { vmcoreinfoAt: [g.stalePa!] });
    assert.equal(ks.release, g.release);
    assert.equal(ks.vmcoreinfoCopy?.pa, g.noteTextPa);
  });

  it('bannerAtSymbol reads and judges the banner at linux_banner; scanBanner is the fallback', async () => {
    const { bannerAtSymbol, scanBanner } = await import('../../src/profile/kernel-space.js');
    const g = syntheticGuest();
    const mem = testMemory(g.ram, { mapped: true });
    const ks = await bootstrapKernelSpace(mem, { bannerScan: 'none' });
    assert.equal(ks.banner, undefined);
    const b = bannerAtSymbol(ks, g.bannerVa, 'test');
    assert.ok(typeof b !== 'string', String(b));
    assert.equal(b.text, g.banner);
    assert.equal(b.pa, g.bannerPa);
    assert.equal(typeof bannerAtSymbol(ks, g.bannerVa + 8n, 'test'), 'string');
    assert.equal(typeof bannerAtSymbol(ks, g.utsVa, 'test'), 'string');
    assert.match(String(bannerAtSymbol(ks, 0xffffffffbff00000n, 'test')), /not mapped|outside/);
    assert.equal(scanBanner(mem, ks)?.pa, g.bannerPa);
  });
});

// Issue 10, bug 11: `info` showed "vmcoreinfo -0.5 ms": page-table checks made outside the timed vmcoreinfo
// steps were subtracted from it.
describe('bootstrapKernelSpace step times', () => {
  it('are never negative, whichever path found the copy', async () => {
    const g = syntheticGuest({ levels: 4 });
    for (const options of [{}, { alwaysScan: true }, { bannerScan: 'none' as const, alwaysScan: true }]) {
      for (let run = 0; run < 3; run++) {
        const ks = await bootstrapKernelSpace(testMemory(g.ram, { mapped: true }), options);
        for (const [step, ms] of Object.entries(ks.timings)) assert.ok(ms >= 0, `${JSON.stringify(options)}: ${step} ${ms} ms`);
        assert.ok(ks.timings['verify']! > 0);
      }
    }
  });
});
