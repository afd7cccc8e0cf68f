/** Page runs (memmap) and sparse per-VMA files (procdump) on synthetic page tables. */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { AddressSpace } from '../../src/arch/address-space.js';
import { PAGING_4_LEVEL } from '../../src/arch/x86-64/paging.js';
import { DumpDir } from '../../src/linux/dump.js';
import { pageRuns } from '../../src/linux/plugins/memmap.js';
import { testMemory } from '../arch/helpers/memory.js';
import { PageTableBuilder } from '../arch/helpers/page-tables.js';
import { gva } from '../../src/core/address.js';

const MiB = 1 << 20;

function setup() {
  const ram = new Uint8Array(8 * MiB);
  const b = new PageTableBuilder(ram, 4, 0x10000);
  const va = 0x7f00_0000_0000n;
  b.map(va, 0x100000, 4096);
  b.map(va + 0x1000n, 0x101000, 4096); // physically contiguous: one run
  b.map(va + 0x2000n, 0x300000, 4096); // virtually contiguous, physically not: a new run
  b.map(va + 0x5000n, 0x102000, 4096); // after a hole of two pages
  b.map(0x7f00_0020_0000n, 0x400000, 2 * MiB); // a 2 MiB page the range cuts into
  for (let i = 0x100000; i < 0x600000; i++) ram[i] = (i * 7) & 0xff;
  return { ram, va, space: new AddressSpace(testMemory(ram), b.top, PAGING_4_LEVEL, { name: 'test' }) };
}

test('pageRuns merges pages contiguous in both spaces, skips holes, clips huge pages', () => {
  const { va, space } = setup();
  const runs = [...pageRuns(space, va, va + 0x6000n)];
  assert.deepEqual(runs.map((r) => [r.va - va, r.pa, r.size]), [
    [0n, 0x100000n, 0x2000],
    [0x2000n, 0x300000n, 0x1000],
    [0x5000n, 0x102000n, 0x1000],
  ]);
  const huge = [...pageRuns(space, 0x7f00_0030_0000n, 0x7f00_0030_2000n)];
  assert.deepEqual(huge.map((r) => [r.va, r.pa, r.size]), [[0x7f00_0030_0000n, 0x500000n, 0x2000]]);
  assert.deepEqual([...pageRuns(space, va + 0x3000n, va + 0x5000n)], [], 'a hole has no runs');
  assert.equal([...pageRuns(space, va, va + 0x6000n, 1)].length, 1, 'the walk limit bounds the runs');
});

test('writeSparse: holes are zeros, the hash covers the whole file, the size bound holds', () => {
  const { ram, va, space } = setup();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmsight-procmem-'));
  try {
    const d = new DumpDir(dir);
    const pieces = [...pageRuns(space, va, va + 0x6000n)].map((r) => ({ offset: Number(r.va - va), bytes: space.read(gva(r.va), r.size) }));
    const w = d.writeSparse([1, 'x', va], 0x6000, pieces);
    const file = fs.readFileSync(w.file);
    assert.equal(file.length, 0x6000);
    assert.equal(w.written, 0x4000);
    assert.deepEqual(file.subarray(0, 0x2000), Buffer.from(ram.subarray(0x100000, 0x102000)));
    assert.deepEqual(file.subarray(0x2000, 0x3000), Buffer.from(ram.subarray(0x300000, 0x301000)));
    assert.ok(file.subarray(0x3000, 0x5000).every((b) => b === 0));
    assert.deepEqual(file.subarray(0x5000), Buffer.from(ram.subarray(0x102000, 0x103000)));
    assert.equal(w.sha256, crypto.createHash('sha256').update(file).digest('hex'));
    assert.equal(w.truncated, false);
    // Overlapping (hostile) pieces are skipped, never written backwards.
    const o = d.writeSparse([2], 0x2000, [{ offset: 0x1000, bytes: new Uint8Array(0x1000).fill(1) }, { offset: 0, bytes: new Uint8Array(0x1000).fill(2) }]);
    assert.equal(o.written, 0x1000);
    assert.ok(fs.readFileSync(o.file).subarray(0, 0x1000).every((b) => b === 0));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('procdump requires --dump, checked before any guest memory is read', async () => {
  const { checkOptionValues } = await import('../../src/linux/schema.js');
  const procdump = (await import('../../src/linux/plugins/procdump.js')).default;
  assert.throws(() => checkOptionValues(procdump.name, procdump.options, { pid: ['1'] }), /procdump: --dump is required/);
  assert.doesNotThrow(() => checkOptionValues(procdump.name, procdump.options, { dump: '/tmp/x' }));
});

test('procdump --max-total takes a size with K, M or G and refuses anything else', async () => {
  const { parseTotalBound, MAX_PROCDUMP_TOTAL_BYTES } = await import('../../src/linux/plugins/procdump.js');
  assert.equal(parseTotalBound(undefined), MAX_PROCDUMP_TOTAL_BYTES);
  assert.equal(parseTotalBound('4096'), 4096);
  assert.equal(parseTotalBound('512M'), 512 * 1024 ** 2);
  assert.equal(parseTotalBound('8g'), 8 * 1024 ** 3);
  assert.equal(parseTotalBound('64KiB'), 64 * 1024);
  for (const bad of ['0', '-1', '1.5G', 'lots', '']) assert.throws(() => parseTotalBound(bad), /--max-total/);
});

