import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { FormatError } from '../../../src/core/errors.js';
import { BufferSource } from '../../../src/memory/formats/byte-source.js';
import { parseElfCore } from '../../../src/memory/formats/elf-core.js';
import { SegmentMap } from '../../../src/memory/formats/segment-map.js';
import { factory as elfFactory } from '../../../src/memory/sources/elf-core.js';
import { factory as rawFactory } from '../../../src/memory/sources/raw-file.js';
import { buildElfCore, note, prstatusNote, qemuCpuNote } from './helpers/elf-builder.js';
import { type GuestPhysAddr, gpa } from '../../../src/core/address.js';

const page = (byte: number, n = 4096) => new Uint8Array(n).fill(byte);
const vmcoreinfo = 'OSRELEASE=6.1.0-test\nPAGESIZE=4096\nNUMBER(phys_base)=-1234\n';

function notesFor2Cpus(): Uint8Array[] {
  return [
    note('CORE', 1, prstatusNote(1, 0xffffffff81000000n)),
    note('QEMU', 0, qemuCpuNote(0x80050033n, 0x1000n, 0x6f0n)),
    note('CORE', 1, prstatusNote(2, 0xffffffff81000010n)),
    note('QEMU', 0, qemuCpuNote(0x80050033n, 0x2000n, 0x16f0n)),
    note('VMCOREINFO', 0, Buffer.from(vmcoreinfo, 'latin1')),
  ];
}

test('paging:false core: PT_LOADs by physical address, notes give CR3/CR4 per vCPU and VMCOREINFO', () => {
  const bytes = buildElfCore(
    [
      { vaddr: 0n, paddr: 0, data: page(0x11, 0x2000) },
      { vaddr: 0x100000n, paddr: 0x100000, data: page(0x22) },
    ],
    notesFor2Cpus(),
  );
  const src = new BufferSource('t.elf', bytes);
  const core = parseElfCore(src);
  assert.equal(core.paging, false);
  assert.equal(core.loads.length, 2);
  assert.equal(core.vmcoreinfo, vmcoreinfo);
  assert.deepEqual(
    core.cpus.map((c) => [c.index, c.cr3, c.cr4]),
    [
      [0, 0x1000n, 0x6f0n],
      [1, 0x2000n, 0x16f0n],
    ],
  );
  assert.deepEqual(core.prstatus.map((p) => p.pid), [1, 2]);
  const map = new SegmentMap(src, core.segments);
  assert.deepEqual(map.ranges.map((r) => [r.start, r.end]), [
    [0, 0x2000],
    [0x100000, 0x101000],
  ]);
  const a = { addr: 0x1ff8, len: 16 } as { addr: GuestPhysAddr; len: number; dst?: Uint8Array };
  const failures = map.readv([a]);
  assert.deepEqual([...a.dst!.subarray(0, 8)], [...page(0x11, 8)]);
  assert.deepEqual([...a.dst!.subarray(8)], [...new Uint8Array(8)]);
  assert.deepEqual(failures, [{ addr: 0x2000, len: 8, reason: 'not backed by this image' }]);
});

test('paging:true core with PN_XNUM and > 65535 program headers: physical map merged and de-duplicated', () => {
  const loads = [{ vaddr: 0xffff888000000000n, paddr: 0, data: page(0xaa, 0x3000) }] as Parameters<typeof buildElfCore>[0];
  // 70000 virtual mappings of the same 3 physical pages (sharing file data), one MMIO mapping without data.
  for (let i = 0; i < 70_000; i++) loads.push({ vaddr: 0xffffc90000000000n + BigInt(i) * 0x1000n, paddr: (i % 3) * 0x1000, shareWith: 0, filesz: 0x1000 });
  loads.push({ vaddr: 0xffffc9ffff000000n, paddr: 0xfeb00000, filesz: 0, memsz: 0x1000 });
  const bytes = buildElfCore(loads, notesFor2Cpus());
  const core = parseElfCore(new BufferSource('pg.elf', bytes));
  assert.equal(core.paging, true);
  assert.equal(core.programHeaderCount, 70_003);
  const map = new SegmentMap(new BufferSource('pg.elf', bytes), core.segments);
  assert.deepEqual(map.ranges.map((r) => [r.start, r.end]), [[0, 0x3000]]);
  assert.equal(map.segmentCount, 1);
  const op = { addr: 0x2ffc, len: 4 } as { addr: GuestPhysAddr; len: number; dst?: Uint8Array };
  assert.deepEqual(map.readv([op]), []);
  assert.deepEqual([...op.dst!], [0xaa, 0xaa, 0xaa, 0xaa]);
  // The MMIO mapping (p_filesz 0) is not memory.
  assert.equal(map.readv([{ addr: gpa(0xfeb00000), len: 8 }]).length, 1);
});

test('truncated and corrupt ELF cores give a FormatError naming file and offset', () => {
  const good = buildElfCore([{ vaddr: 0n, paddr: 0, data: page(1, 0x2000) }], notesFor2Cpus());
  const cases: Array<[string, Uint8Array, RegExp]> = [
    ['header only', good.subarray(0, 40), /ELF header .*beyond the end/],
    ['PT_NOTE beyond EOF', good.subarray(0, 400), /program header #0 data .*beyond the end of the file/],
    ['not ELF', Buffer.from('hello world, this is not an ELF file at all......................'), /not an ELF file/],
  ];
  const badPh = good.slice();
  new DataView(badPh.buffer).setUint16(56, 0xfff0, true);
  cases.push(['absurd phnum', badPh, /program headers .*beyond the end/]);
  const xnumNoSh = good.slice();
  new DataView(xnumNoSh.buffer).setUint16(56, 0xffff, true);
  cases.push(['PN_XNUM without section header', xnumNoSh, /PN_XNUM/]);
  const notCore = good.slice();
  new DataView(notCore.buffer).setUint16(16, 2, true);
  cases.push(['ET_EXEC', notCore, /not a core file/]);
  for (const [what, bytes, re] of cases) {
    assert.throws(
      () => parseElfCore(new BufferSource('bad.elf', bytes)),
      (e: unknown) => e instanceof FormatError && re.test(e.message) && e.message.startsWith('bad.elf'),
      what,
    );
  }
});

// Issue 10, bug 8: a dump cut short only in a non-RAM segment was refused outright.
test('a dump cut short is analysed as far as it goes: one warning names the missing ranges, only reads there fail', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmsight-elf-cut-'));
  try {
    const whole = buildElfCore(
      [
        { vaddr: 0n, paddr: 0, data: page(1, 0x4000) },
        { vaddr: 0xfd000000n, paddr: 0xfd000000, data: page(2, 0x4000) },
      ],
      notesFor2Cpus(),
    );
    const f = path.join(dir, 'cut.elf');
    fs.writeFileSync(f, whole.subarray(0, whole.length - 0x1800));
    const warnings: string[] = [];
    const { openSource } = await import('../../../src/memory/open.js');
    const opened = await openSource(f, { warn: (w) => warnings.push(w) });
    try {
      assert.equal(opened.chosen.factory, 'elf-core');
      assert.equal(warnings.length, 1);
      assert.match(warnings[0]!, /cut\.elf is cut short: 6144 bytes .* missing, 0xfd002800-0xfd003fff \(PT_LOAD #2\); reads there fail/);
      const ram = { addr: 0x100, len: 16 } as { addr: GuestPhysAddr; len: number; dst?: Uint8Array };
      const kept = { addr: 0xfd000000, len: 0x2800 } as { addr: GuestPhysAddr; len: number; dst?: Uint8Array };
      const lost = { addr: 0xfd002000, len: 0x1000 } as { addr: GuestPhysAddr; len: number; dst?: Uint8Array };
      assert.deepEqual(opened.memory.readv([ram, kept]), []);
      assert.ok(ram.dst!.every((b) => b === 1) && kept.dst!.every((b) => b === 2));
      const failed = opened.memory.readv([lost]);
      assert.deepEqual(failed.map((x) => [x.addr, x.len]), [[0xfd002800, 0x800]]);
      assert.match(failed[0]!.reason, /ends early \(truncated\?\)/);
      assert.ok(lost.dst!.subarray(0, 0x800).every((b) => b === 2), 'the part still in the file is read');
    } finally {
      await opened.memory.close();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('elf-core source: probe by magic, open a file, hints; raw-file declines ELF files', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmsight-elf-'));
  try {
    const f = path.join(dir, 'core.elf');
    fs.writeFileSync(f, buildElfCore([{ vaddr: 0n, paddr: 0x1000, data: page(7) }], notesFor2Cpus()));
    const target = { spec: f, file: f, params: {} };
    assert.equal((await elfFactory.probe(target)).ok, true);
    assert.equal((await rawFactory.probe(target)).ok, false);
    const mem = await elfFactory.open(target);
    assert.equal(mem.technique.class, 'file');
    assert.equal(mem.size, 0x2000);
    const hints = await mem.hints!();
    assert.equal(hints.vmcoreinfo, vmcoreinfo);
    assert.equal(hints.cpus?.[1]?.cr3, 0x2000n);
    const op = { addr: 0x1000, len: 4 } as { addr: GuestPhysAddr; len: number; dst?: Uint8Array };
    assert.deepEqual(mem.readv([op]), []);
    assert.deepEqual([...op.dst!], [7, 7, 7, 7]);
    await mem.close();
    const trunc = path.join(dir, 'trunc.elf');
    fs.writeFileSync(trunc, fs.readFileSync(f).subarray(0, 600));
    await assert.rejects(elfFactory.open({ spec: trunc, file: trunc, params: {} }), (e: unknown) => e instanceof FormatError && e.message.includes('trunc.elf'));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
