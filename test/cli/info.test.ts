import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { command } from '../../src/cli/commands/info.js';
import { guestImage, runCommand } from './helpers/run-command.js';

describe('vmsight info', () => {
  const img = guestImage({ levels: 5, staleBanner: true });
  after(() => img.cleanup());
  const g = img.guest;

  it('prints the technique, layout and kernel facts as a table', async () => {
    const r = await runCommand(command, [img.file]);
    assert.equal(r.error, undefined);
    assert.equal(r.code, 0);
    assert.match(r.out, /technique\s+file \(raw-file/);
    assert.match(r.out, new RegExp(`banner\\s+${g.banner.replace(/[()+.]/g, '\\$&')}`));
    assert.match(r.out, new RegExp(`release\\s+${g.release.replace(/\./g, '\\.')}`));
    assert.match(r.out, new RegExp(`KASLR offset\\s+0x${g.kernelOffset.toString(16)}`));
    assert.match(r.out, new RegExp(`phys_base\\s+-0x${(-g.physBase).toString(16)} \\(${g.physBase}\\)`));
    assert.match(r.out, /paging\s+5-level/);
    assert.match(r.out, new RegExp(`DTB\\s+0x${g.dtb.toString(16)} `));
    assert.match(r.out, /build-id\s+eb4fbcd0/);
    assert.match(r.out, /time\s+open [\d.]+ ms.*vmcoreinfo [\d.]+ ms.*total [\d.]+ ms/);
  });

  it('gives JSON with every copy and banner when asked to scan all', async () => {
    const r = await runCommand(command, [img.file, '--json', '--scan-all']);
    assert.equal(r.code, 0, r.error);
    const j = JSON.parse(r.out);
    assert.equal(j.release, g.release);
    assert.equal(j.pagingLevels, 5);
    assert.equal(j.dtb, Number(g.dtb), 'JSON numbers up to 2^53');
    assert.equal(j.kaslr.kernelPhysStart, Number(g.textPa));
    assert.equal(j.kaslr.virtualShift, Number(g.kernelOffset));
    assert.equal(j.directMapBase, `0x${g.directMapBase.toString(16)}`, 'addresses beyond 2^53 as hex strings');
    assert.equal(j.technique.class, 'file');
    assert.ok(j.vmcoreinfo.copies.length >= 3, 'two copies and the format-string decoy');
    assert.ok(j.bannerCandidates.length >= 4);
    assert.equal(j.bannerCandidates.filter((c: { accepted: boolean }) => c.accepted).length, 1);
    assert.equal(typeof j.timingsMs.total, 'number');
  });

  it('refuses a missing source and unknown technique with usage-class errors', async () => {
    const missing = await runCommand(command, []);
    assert.equal(missing.code, 2);
    const bad = await runCommand(command, [img.file, '--technique', 'telepathy']);
    assert.equal(bad.code, 2);
    assert.match(bad.error!, /unknown technique/);
  });

  it('says there is no kernel in memory without one', async () => {
    const empty = guestImage({ noVmcoreinfo: true });
    try {
      const r = await runCommand(command, [empty.file]);
      assert.equal(r.code, 4);
      assert.match(r.error!, /no vmcoreinfo/);
    } finally {
      empty.cleanup();
    }
  });
});
