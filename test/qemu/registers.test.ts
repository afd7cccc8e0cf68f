import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { FormatError } from '../../src/core/errors.js';
import { CR4_LA57, pagingLevels, parseRegisters } from '../../src/qemu/registers.js';

const fixture = (name: string) => fs.readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8');

test('one vCPU, 4-level paging (qemu64)', () => {
  const cpus = parseRegisters(fixture('q35-256m.registers-a.txt'));
  assert.equal(cpus.length, 1);
  const c = cpus[0]!;
  assert.equal(c.index, 0);
  assert.equal(c.cr3, 0x29ce000n);
  assert.equal(c.cr0, 0x80050033n);
  assert.equal(c.cr4, 0x6f0n);
  assert.equal(c.efer, 0xd01n);
  assert.equal(c.rip, 0xffffffffb2c592ebn);
  assert.equal(c.halted, true);
  assert.equal(pagingLevels(c), 4);
});

test('two vCPUs with -cpu max: each has its own CR3, LA57 set', () => {
  const cpus = parseRegisters(fixture('q35-4g-smp2-cpumax.registers-a.txt'));
  assert.deepEqual(
    cpus.map((c) => [c.index, c.cr3]),
    [
      [0, 0x1227b4000n],
      [1, 0x120c10000n],
    ],
  );
  for (const c of cpus) {
    assert.equal(c.cr4! & CR4_LA57, CR4_LA57);
    assert.equal(pagingLevels(c), 5);
  }
});

test('paging levels outside long mode', () => {
  assert.equal(pagingLevels({ index: 0, cr0: 0x11n }), 0);
  assert.equal(pagingLevels({ index: 0, cr0: 0x80000011n, cr4: 0x20n, efer: 0n }), 3);
  assert.equal(pagingLevels({ index: 0, cr0: 0x80000011n, cr4: 0n }), 2);
});

test('output without registers is a FormatError', () => {
  assert.throws(() => parseRegisters('unknown command'), FormatError);
  // Lines that only look like registers elsewhere do not confuse the parser.
  const cpus = parseRegisters('CPU#3\r\nXCR3=1 CR3=0000000000001000 CR4=00001000\r\n');
  assert.deepEqual([cpus[0]!.index, cpus[0]!.cr3, cpus[0]!.cr4], [3, 0x1000n, 0x1000n]);
});
