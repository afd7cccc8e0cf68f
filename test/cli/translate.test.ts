import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { command, entryFlags } from '../../src/cli/commands/translate.js';
import { guestImage, runCommand } from './helpers/run-command.js';

describe('entryFlags', () => {
  it('names the bits of an entry', () => {
    assert.deepEqual(entryFlags(0x8000_0000_0700_01e1n), ['P', 'RO', 'SU', 'A', 'D', 'PS', 'G', 'NX']);
    assert.deepEqual(entryFlags(0x7a15067n), ['P', 'RW', 'US', 'A', 'D']);
    assert.deepEqual(entryFlags(0x7a15066n), ['not-present']);
  });
});

for (const levels of [4, 5] as const) {
  describe(`vmsight translate (${levels}-level)`, () => {
    const img = guestImage({ levels });
    after(() => img.cleanup());
    const g = img.guest;

    it('shows every level and the physical address', async () => {
      const va = g.bannerVa + 3n;
      const r = await runCommand(command, [img.file, `0x${va.toString(16)}`, '--json']);
      assert.equal(r.code, 0, r.error);
      const j = JSON.parse(r.out);
      assert.equal(j.pa, g.bannerPa + 3);
      assert.equal(j.pageSize, 2 << 20);
      assert.equal(j.paging, `${levels}-level`);
      assert.deepEqual(j.steps.map((s: { level: number }) => s.level), levels === 5 ? [5, 4, 3, 2] : [4, 3, 2]);
      assert.equal(j.steps[0].table, Number(g.dtb));
      assert.deepEqual(j.flags.slice(0, 3), ['P', 'RO', 'SU'], 'the synthetic text mapping is read-only, supervisor');
      assert.equal(j.nx, false);
      const t = await runCommand(command, [img.file, 'init_uts_ns']);
      assert.equal(t.code, 0, t.error);
      assert.match(t.out, /^physical 0x[0-9a-f]+ {2}page 2 MiB \(level 2\)/m);
      assert.match(t.out, /direct map alias 0x/);
    });

    it('reports where a walk stops, with exit code 4', async () => {
      const r = await runCommand(command, [img.file, '0x1000', '--json']);
      assert.equal(r.code, 4);
      const j = JSON.parse(r.out);
      assert.equal(j.fault.level, levels);
      assert.equal(j.steps.length, 1);
      const nc = await runCommand(command, [img.file, '0x0000900000000000']);
      assert.equal(nc.code, levels === 4 ? 4 : 4);
      if (levels === 4) assert.match(nc.out, /not canonical/);
    });

    it('needs an address', async () => {
      assert.equal((await runCommand(command, [img.file])).code, 2);
      assert.equal((await runCommand(command, [img.file, 'bogus'])).code, 2);
    });
  });
}
