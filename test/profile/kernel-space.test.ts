import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ProfileError } from '../../src/core/errors.js';
import { bootstrapKernelSpace, kernelImagePhys } from '../../src/profile/kernel-space.js';
import { testMemory } from '../arch/helpers/memory.js';
import { syntheticGuest } from '../arch/helpers/synthetic-guest.js';

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
        const viaImage = Buffer.from(ks.space.read(g.bannerVa, g.banner.length)).toString('latin1');
        assert.equal(viaImage, g.banner);
        assert.equal(ks.space.readCString(ks.space.physToDirect(g.bannerPa), 600), g.banner + '\n');
        assert.equal(ks.space.physical(g.bannerVa), kernelImagePhys(g.bannerVa, g.physBase));
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
    assert.equal(Buffer.from(ks.space.read(g.bannerVa, 13)).toString(), 'Linux version');
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
