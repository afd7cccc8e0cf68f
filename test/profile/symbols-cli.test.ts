/**
 * `vmsight symbols` end to end on a synthetic guest image: syntheticGuest's
 * kernel (page tables, vmcoreinfo, KASLR) with kallsyms tables encoded into
 * its image. The vmcoreinfo kallsyms addresses of that guest point at
 * nothing, so the command must fall back to the pattern search.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { command } from '../../src/cli/commands/symbols.js';
import { ExitCode } from '../../src/core/errors.js';
import { kallsymsDigest } from '../../src/profile/kallsyms.js';
import { parseSystemMap } from '../../src/profile/system-map.js';
import { syntheticGuest } from '../arch/helpers/synthetic-guest.js';
import { runCommand } from '../cli/helpers/run-command.js';
import { expectedLines, kernelLikeSymbols, synthKallsyms } from './helpers/kallsyms-synth.js';

describe('vmsight symbols on a synthetic guest', () => {
  let dir: string;
  let image: string;
  let vmlinux: string;
  let sysmap: string;
  const g = syntheticGuest({ ramMiB: 48 });
  const syms = kernelLikeSymbols(2000, g.textVa, 3);
  const initTask = syms.find((s) => s.type === 'D')!;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'vmsight-test-symbols-'));
    const t = synthKallsyms(syms, { order: 'classic+seqs', addressing: 'absolute-percpu', align: 4, before: 0, after: 0 });
    g.ram.set(t.bytes, g.textPa + (5 << 20));
    image = join(dir, 'guest.raw');
    writeFileSync(image, g.ram);
    vmlinux = join(dir, 'vmlinux.bin');
    writeFileSync(vmlinux, synthKallsyms(kernelLikeSymbols(2000, 0xffffffff81000000n, 3), { order: 'names-first', addressing: 'absolute-percpu' }).bytes);
    sysmap = join(dir, 'System.map');
    writeFileSync(sysmap, expectedLines(kernelLikeSymbols(2000, 0xffffffff81000000n, 3)));
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  it('lists symbols matching a glob, decoded by pattern search', async () => {
    const r = await runCommand(command, [image, initTask.name, '--json']);
    assert.equal(r.code, 0, r.error);
    const rows = JSON.parse(r.out) as Array<{ address: string; type: string; name: string }>;
    assert.ok(rows.some((x) => x.address === `0x${initTask.address.toString(16)}` && x.type === initTask.type));
  });

  it('prints the digest of the core symbols', async () => {
    const r = await runCommand(command, [image, '--digest', '--json']);
    assert.equal(r.code, 0, r.error);
    const d = JSON.parse(r.out) as { count: number; sha256: string };
    assert.equal(d.count, syms.length);
    assert.equal(d.sha256, kallsymsDigest(parseSystemMap(expectedLines(syms)).table).sha256);
  });

  it('resolves an address to symbol+offset', async () => {
    const r = await runCommand(command, [image, '--at', `0x${(initTask.address + 1n).toString(16)}`, '--json']);
    assert.equal(r.code, 0, r.error);
    const rec = JSON.parse(r.out) as { offset: string; symbolAddress: string };
    assert.equal(rec.symbolAddress, `0x${initTask.address.toString(16)}`);
  });

  it('filters by type and limits the rows', async () => {
    const r = await runCommand(command, [image, '*', '--type', 'T', '--limit', '5', '--json']);
    assert.equal(r.code, 0, r.error);
    const rows = JSON.parse(r.out) as Array<{ type: string }>;
    assert.equal(rows.length, 5);
    assert.ok(rows.every((x) => x.type === 'T'));
  });

  it('applies the guest KASLR shift to a System.map given with --profile', async () => {
    // --profile is a global option (main.ts); give it to the helper's parser.
    const withProfile = { ...command, options: { ...command.options, profile: { type: 'string' as const } } };
    const r = await runCommand(withProfile, [image, '_text', '--profile', sysmap, '--json']);
    assert.equal(r.code, 0, r.error);
    const rows = JSON.parse(r.out) as Array<{ address: string }>;
    assert.equal(rows[0]!.address, `0x${g.textVa.toString(16)}`);
  });

  it('reads link-time symbols from a kernel image with --image', async () => {
    const r = await runCommand(command, ['--image', vmlinux, '_text', '--json']);
    assert.equal(r.code, 0, r.error);
    assert.deepEqual(JSON.parse(r.out), [{ address: '0xffffffff81000000', type: 'T', name: '_text' }]);
  });

  it('fails with a typed error when nothing matches', async () => {
    const r = await runCommand(command, [image, 'no_such_*']);
    assert.equal(r.code, ExitCode.analysis);
    assert.match(r.error ?? '', /no symbol matches/);
    const u = await runCommand(command, []);
    assert.equal(u.code, ExitCode.usage);
  });
});
