/**
 * kallsyms against real lab guests (5.10, 6.1, 6.12): the symbol table decoded
 * from guest memory equals the guest's own /proc/kallsyms (every core line,
 * by the digest the guest prints, plus spot values with KASLR applied), by
 * every way in: vmcoreinfo addresses, pattern search in the kernel image,
 * pattern search over all RAM, and the extracted vmlinux shifted by KASLR.
 */
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { command } from '../../src/cli/commands/symbols.js';
import { createOutput } from '../../src/cli/render.js';
import { VmsightError } from '../../src/core/errors.js';
import type { GroundTruth, LabGuest } from '../../src/lab/index.js';
import { kallsymsDigest as groundTruthDigest } from '../../src/lab/ground-truth.js';
import { openSource } from '../../src/memory/open.js';
import type { PhysicalMemory } from '../../src/memory/types.js';
import { readPhys } from '../../src/memory/access.js';
import { type KallsymsResult, kallsymsDigest, kallsymsFromBytes, loadKallsyms, procKallsymsLines } from '../../src/profile/kallsyms.js';
import { bootstrapKernelSpace, type KernelSpace } from '../../src/profile/kernel-space.js';
import { parseSystemMap } from '../../src/profile/system-map.js';
import { extractVmlinux } from '../../src/profile/vmlinux.js';
import { sharedGuest } from '../helpers/guest.js';
import { rng } from './helpers/kallsyms-synth.js';

const EXPECT: Record<string, { method: 'vmcoreinfo' | 'search'; order: string; seqs: boolean }> = {
  '5.10': { method: 'search', order: 'classic', seqs: false },
  '6.1': { method: 'vmcoreinfo', order: 'classic', seqs: true },
  '6.12': { method: 'vmcoreinfo', order: 'names-first', seqs: false },
};

function assertEqualsTruth(r: KallsymsResult, truth: GroundTruth, how: string): void {
  const d = kallsymsDigest(r.table);
  assert.equal(d.count, truth.kallsyms.coreCount, `${how}: count`);
  assert.equal(d.sha256, truth.kallsyms.coreSha256, `${how}: digest of every core /proc/kallsyms line`);
  assert.equal(r.complete, true, how);
}

for (const kernelSpec of ['5.10', '6.1', '6.12']) {
  describe(`kallsyms on guest ${kernelSpec}`, () => {
    let guest: LabGuest;
    let truth: GroundTruth;
    let mem: PhysicalMemory;
    let ks: KernelSpace;
    let auto: KallsymsResult;

    before(
      async () => {
        ({ guest, truth } = await sharedGuest({ kernel: kernelSpec }));
        // The RAM file directly: no QMP connection, so other tests holding the guest's socket do not block this one.
        mem = (await openSource(`shm:${guest.shmPath}`)).memory;
        ks = await bootstrapKernelSpace(mem);
        auto = loadKallsyms({ space: ks.space, mem, ...(ks.vmcoreinfo ? { vmcoreinfo: ks.vmcoreinfo } : {}), target: guest.name });
      },
      { timeout: 600_000 },
    );

    after(async () => {
      await mem?.close();
    });

    test('the default way in decodes every core symbol exactly as /proc/kallsyms prints it', () => {
      assert.equal(auto.method, EXPECT[kernelSpec]!.method);
      assert.deepEqual(auto.anomalies, []);
      assertEqualsTruth(auto, truth, 'auto');
      // The lab's own digest function (groundTruthDigest) over our entries agrees too.
      assert.equal(groundTruthDigest(auto.table.entries()).sha256, truth.kallsyms.coreSha256);
    });

    test('spot values resolve to the guest values (KASLR applied)', () => {
      for (const name of ['init_task', 'linux_banner', 'init_top_pgt', '_text']) {
        const spot = truth.kallsyms.spots[name];
        assert.ok(spot, `guest printed no ${name}`);
        assert.equal(auto.table.address(name), spot.address, name);
        assert.equal(auto.table.get(name)?.type, spot.type, name);
      }
      for (const [name, spot] of Object.entries(truth.kallsyms.spots)) assert.equal(auto.table.all(name)[0]?.address, spot.address, name);
      assert.equal(auto.text, truth.kallsyms.spots['_text']!.address);
      assert.equal(auto.layout.relativeBase, truth.kallsyms.spots['_text']!.address);
      if (ks.kaslr) assert.equal(auto.text, ks.kaslr.kernelVirtStart);
    });

    test('the pattern search in the kernel image finds the same table and names the layout', () => {
      const r = loadKallsyms({ mem, ...(ks.vmcoreinfo ? { vmcoreinfo: ks.vmcoreinfo } : {}), forceSearch: true });
      assert.equal(r.steps.at(-1)!.method, 'search-image');
      assertEqualsTruth(r, truth, 'search-image');
      assert.equal(r.layout.order, EXPECT[kernelSpec]!.order);
      assert.equal(r.layout.seqsOfNames, EXPECT[kernelSpec]!.seqs);
      assert.equal(r.layout.addressing, 'absolute-percpu');
      // Where the tables are, as the guest's own kallsyms says.
      for (const table of ['kallsyms_names', 'kallsyms_token_index', 'kallsyms_num_syms']) {
        const spot = truth.kallsyms.spots[table];
        if (spot) assert.equal(r.layout.virtual[table], spot.address, table);
      }
    });

    test('the search over all RAM works without vmcoreinfo', () => {
      const r = loadKallsyms({ mem });
      assert.equal(r.steps.at(-1)!.method, 'search-ram');
      assertEqualsTruth(r, truth, 'search-ram');
    });

    test('the extracted vmlinux gives link-time addresses that KASLR-shift onto the guest', () => {
      const vmlinux = extractVmlinux(readFileSync(guest.kernel.vmlinuzPath), guest.kernel.vmlinuzPath);
      const r = kallsymsFromBytes(vmlinux, { source: guest.kernel.vmlinuzPath });
      assert.equal(r.text, 0xffffffff81000000n);
      const shift = truth.kallsyms.spots['_text']!.address - r.text!;
      // Shift as the kernel relocates: image addresses move, per-cpu offsets do not.
      const shifted = parseSystemMap([...procKallsymsLines(r.table)].join(''), { shift, source: 'vmlinux' });
      assert.equal(kallsymsDigest(shifted.table).sha256, truth.kallsyms.coreSha256);
    });

    test('mutations of the real tables end in results or typed errors', () => {
      // 8 MiB around the real tables (names to token_index and the offsets on either side).
      const namesVa = auto.layout.virtual['kallsyms_names']!;
      const namesPa = Number(namesVa - 0xffffffff80000000n + ks.kaslr!.physBase);
      const start = namesPa - (1 << 20);
      const real = readPhys(mem, start, 8 << 20).slice();
      assert.equal(kallsymsDigest(kallsymsFromBytes(real).table).count, truth.kallsyms.coreCount, 'the unmutated window decodes');
      const r = rng(99);
      for (let c = 0; c < 12; c++) {
        const b = real.slice();
        for (let k = 0; k < 1 + c * 3; k++) b[Math.floor(r() * b.length)]! ^= 0xff;
        if (c % 3 === 2) b.fill(0, Math.floor(r() * b.length), Math.floor(r() * b.length));
        const t0 = performance.now();
        try {
          const res = kallsymsFromBytes(b, { source: `mutated ${kernelSpec} #${c}` });
          assert.ok(res.table.count > 0);
        } catch (e) {
          assert.ok(e instanceof VmsightError, String(e));
        }
        assert.ok(performance.now() - t0 < 10_000, `case ${c} took too long`);
      }
    });

    test('vmsight symbols prints the digest and looks names up', async () => {
      let text = '';
      const out = createOutput('json', (s) => {
        text += s;
      });
      await command.run({ positionals: [`shm:${guest.shmPath}`], values: { digest: true } }, { out, debug: false });
      const rec = JSON.parse(text) as { count: number; sha256: string };
      assert.equal(rec.sha256, truth.kallsyms.coreSha256);
      assert.equal(rec.count, truth.kallsyms.coreCount);
      text = '';
      await command.run({ positionals: [`shm:${guest.shmPath}`, 'init_task'], values: {} }, { out, debug: false });
      const rows = JSON.parse(text) as Array<{ address: string; name: string }>;
      assert.deepEqual(rows, [{ address: `0x${truth.kallsyms.spots['init_task']!.address.toString(16)}`, type: 'D', name: 'init_task' }]);
    });
  });
}
