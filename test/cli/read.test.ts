import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import { command, hexdumpLines } from '../../src/cli/commands/read.js';
import { guestImage, runCommand } from './helpers/run-command.js';

describe('hexdumpLines', () => {
  it('formats like xxd', () => {
    const lines = hexdumpLines(0x1000n, Buffer.from('Linux version 6.1\x00\x01'));
    assert.deepEqual(lines, [
      '00001000: 4c69 6e75 7820 7665 7273 696f 6e20 362e  Linux version 6.',
      '00001010: 3100 01                                  1..',
    ]);
    assert.match(hexdumpLines(0xffff_ffff_a1f6_1900n, new Uint8Array(1))[0]!, /^ffffffffa1f61900: 00 /);
  });
});

describe('vmsight read', () => {
  const img = guestImage();
  after(() => img.cleanup());
  const g = img.guest;

  it('reads physical memory', async () => {
    const r = await runCommand(command, [img.file, '--pa', `0x${g.bannerPa.toString(16)}`, '--len', '32', '--json']);
    assert.equal(r.code, 0, r.error);
    const j = JSON.parse(r.out);
    assert.equal(Buffer.from(j.hex, 'hex').toString(), g.banner.slice(0, 32));
    assert.deepEqual(j.failures, []);
  });

  it('reads through the kernel address space, by address or by vmcoreinfo symbol', async () => {
    const r = await runCommand(command, [img.file, '--va', `0x${g.bannerVa.toString(16)}`, '--len', '13']);
    assert.equal(r.code, 0, r.error);
    assert.match(r.out, new RegExp(`^${g.bannerVa.toString(16)}: 4c69 6e75 7820 7665 7273 696f 6e\\s+Linux version$`, 'm'));
    const s = await runCommand(command, [img.file, '--va', 'init_uts_ns+130', '--len', String(g.release.length), '--json']);
    assert.equal(s.code, 0, s.error);
    assert.equal(Buffer.from(JSON.parse(s.out).hex, 'hex').toString(), g.release);
  });

  it('resolves a symbol from a --profile System.map (link-time address, KASLR shift applied)', async () => {
    const map = `${img.file}.System.map`;
    writeFileSync(map, `${(g.bannerVa - g.kernelOffset).toString(16).padStart(16, '0')} R my_banner_alias\n`);
    const r = await runCommand(command, [img.file, '--va', 'my_banner_alias', '--len', '13', '--profile', map, '--json']);
    assert.equal(r.code, 0, r.error);
    assert.equal(Buffer.from(JSON.parse(r.out).hex, 'hex').toString(), 'Linux version');
    const missing = await runCommand(command, [img.file, '--va', 'no_such_symbol', '--len', '1', '--profile', map]);
    assert.equal(missing.code, 2);
  });

  it('reads with an explicit DTB', async () => {
    const r = await runCommand(command, [img.file, '--va', `0x${g.bannerVa.toString(16)}`, '--len', '5', '--dtb', `0x${g.processPgd.toString(16)}`, '--json']);
    assert.equal(r.code, 0, r.error);
    assert.equal(Buffer.from(JSON.parse(r.out).hex, 'hex').toString(), 'Linux');
  });

  it('zero-fills and reports a partly unmapped range, fails on a fully unmapped one', async () => {
    const end = g.textVa + 0x80_0000n; // the image mapping ends here
    const r = await runCommand(command, [img.file, '--va', `0x${(end - 8n).toString(16)}`, '--len', '16', '--json']);
    assert.equal(r.code, 4);
    const j = JSON.parse(r.out);
    assert.equal(j.failures.length, 1);
    assert.equal(j.failures[0].address, `0x${end.toString(16)}`);
    const none = await runCommand(command, [img.file, '--va', '0x1000', '--len', '16']);
    assert.equal(none.code, 4);
    assert.match(none.error!, /virtual address 0x1000: not present/);
    const outside = await runCommand(command, [img.file, '--pa', '0x7fffffff000', '--len', '16']);
    assert.equal(outside.code, 4);
  });

  it('validates its options', async () => {
    for (const argv of [
      [img.file, '--len', '4'],
      [img.file, '--pa', '0', '--va', '0', '--len', '4'],
      [img.file, '--pa', 'zz', '--len', '4'],
      [img.file, '--pa', '0', '--len', '0'],
      [img.file, '--pa', '0', '--len', String(2 ** 40)],
      [img.file, '--va', 'no_such_symbol', '--len', '4'],
      [img.file, '--va', '0', '--len', '4', '--levels', '6'],
    ]) {
      const r = await runCommand(command, argv);
      assert.equal(r.code, 2, `${argv.join(' ')} → ${r.error}`);
    }
  });
});

describe('vmsight read/translate --pid: usage errors before attaching', () => {
  it('rejects a non-numeric pid, --pid with --pa, --pid with --dtb', async () => {
    const { command: translate } = await import('../../src/cli/commands/translate.js');
    const bad = await runCommand(command, ['/nonexistent.img', '--va', '0x1000', '--pid', 'abc']);
    assert.equal(bad.code, 2);
    assert.match(bad.error ?? '', /--pid "abc": expected one process id/);
    const pa = await runCommand(command, ['/nonexistent.img', '--pa', '0x1000', '--pid', '1']);
    assert.equal(pa.code, 2);
    assert.match(pa.error ?? '', /--pid .*--va, not --pa/);
    const dtb = await runCommand(translate, ['/nonexistent.img', '0x1000', '--pid', '1', '--dtb', '0x1000']);
    assert.equal(dtb.code, 2);
    assert.match(dtb.error ?? '', /--pid or --dtb, not both/);
  });
});
