/**
 * malfind's disassembly and hexdump of the scenario's injected code. `--dump DIR` on malfind and elfs writes
 * the regions it reports, under sanitized names inside DIR; elfs
 * writes a whole ELF image (every mapping of the file at its file offset), compared with the guest's file.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import zlib from 'node:zlib';
import { readCpio } from '../../../src/lab/cpio.js';
import { SCENARIO } from '../../../src/lab/index.js';
import { runPlugin } from '../../../src/linux/plugin.js';
import elfs from '../../../src/linux/plugins/elfs.js';
import malfind from '../../../src/linux/plugins/malfind.js';
import { attachForSuite } from '../../helpers/kernel.js';

const g = attachForSuite({ kernel: '6.1' });
let dir: string;

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmsight-dumpdir-'));
});
after(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test('malfind --dump writes the injected-looking page, and its bytes start with the shown head', () => {
  const r = runPlugin(malfind, g.kernel, { dump: dir });
  const row = r.rows.find((x) => x.comm === 'vmi-files');
  assert.ok(row?.dumped, 'the scenario rwx page is dumped');
  assert.equal(path.dirname(row.dumped), path.resolve(dir));
  const bytes = fs.readFileSync(row.dumped);
  assert.equal(bytes.length, Number(row.end - row.start));
  assert.deepEqual(new Uint8Array(bytes.subarray(0, row.head.length)), row.head);
});

test("malfind disassembles the scenario's injected code (endbr64; nop x4; ret) and hexdumps it", () => {
  const row = runPlugin(malfind, g.kernel).rows.find((x) => x.comm === 'vmi-files' && x.perms === 'rwxp');
  assert.ok(row, 'the scenario rwx page');
  assert.match(String(row.disasm), /^endbr64; nop; nop; nop; nop; ret(;|$)/);
  assert.deepEqual(row.instructions.slice(0, 2), [
    { address: `0x${row.start.toString(16)}`, bytes: 'f30f1efa', text: 'endbr64' },
    { address: `0x${(row.start + 4n).toString(16)}`, bytes: '90', text: 'nop' },
  ]);
  assert.equal(row.hexdump.length, 4, '64 bytes, 16 a line');
  assert.match(row.hexdump[0]!, /^0x[0-9a-f]+  f3 0f 1e fa 90 90 90 90 c3 00 /);
  assert.match(row.hexdump[1]!, /^0x[0-9a-f]+  (00 ){15}00  \.{16}$/, 'zeros up to the marker at +64');
});

test('elfs --dump writes ELF images that start with the ELF magic', () => {
  const r = runPlugin(elfs, g.kernel, { dump: dir, pid: ['1'] });
  assert.ok(r.rows.length >= 1);
  for (const row of r.rows) {
    assert.ok(row.dumped && path.dirname(row.dumped) === path.resolve(dir));
    assert.match(path.basename(row.dumped), /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/);
    assert.deepEqual([...fs.readFileSync(row.dumped).subarray(0, 4)], [0x7f, 0x45, 0x4c, 0x46]);
  }
});

/** ELF header fields of a file's own bytes. */
function elfHeader(b: Uint8Array): { phoff: number; phentsize: number; phnum: number; shoff: number; shentsize: number; shnum: number } {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return {
    phoff: Number(dv.getBigUint64(0x20, true)),
    shoff: Number(dv.getBigUint64(0x28, true)),
    phentsize: dv.getUint16(0x36, true),
    phnum: dv.getUint16(0x38, true),
    shentsize: dv.getUint16(0x3a, true),
    shnum: dv.getUint16(0x3c, true),
  };
}

const PT_LOAD = 1;
const PT_GNU_RELRO = 0x6474e552;

/** Program headers of one type of a file: [p_offset, p_offset + p_filesz). */
function segments(b: Uint8Array, type: number): { offset: number; filesz: number }[] {
  const h = elfHeader(b);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const out = [];
  for (let i = 0; i < h.phnum; i++) {
    const p = h.phoff + i * h.phentsize;
    if (dv.getUint32(p, true) === type) out.push({ offset: Number(dv.getBigUint64(p + 8, true)), filesz: Number(dv.getBigUint64(p + 0x20, true)) });
  }
  return out;
}

test('elfs --dump writes the whole image of the scenario ELF: every mapping at its file offset, equal to the guest file (issue 10 bug 13)', () => {
  // The guest's own file: /bin/vmi-helper as the initramfs the guest booted from holds it.
  const entries = readCpio(zlib.gunzipSync(fs.readFileSync(g.guest.initramfsPath)));
  const data = entries.find((e) => e.path === 'bin/vmi-helper')?.data;
  assert.ok(data && data.length > 4096, 'the initramfs holds the helper binary');
  const file = new Uint8Array(data);
  const pid = g.truth.processes.find((p) => p.comm === SCENARIO.files)!.pid;
  const mapped = g.truth.details.get(pid)!.maps.filter((m) => m.path === '/bin/vmi-helper');
  assert.ok(mapped.length >= 2, `the guest maps the helper in ${mapped.length} mappings`);

  const r = runPlugin(elfs, g.kernel, { dump: dir, pid: [String(pid)] });
  const row = r.rows.find((x) => x.path === '/bin/vmi-helper');
  assert.ok(row?.dumped, 'the helper image is dumped');
  assert.equal(row.mappings, mapped.length, 'every mapping of the file is in the dump');
  const dumped = new Uint8Array(fs.readFileSync(row.dumped));
  const expectedLength = Math.max(...mapped.map((m) => Number(m.offset + (m.end - m.start))));
  assert.equal(dumped.length, expectedLength, 'the dump spans the file up to the end of its last mapping');
  for (const s of segments(file, PT_LOAD)) assert.ok(s.offset + s.filesz <= dumped.length, `PT_LOAD at file offset 0x${s.offset.toString(16)} is inside the dump`);

  // `file`-style checks: ELF header and program headers are the file's own.
  const h = elfHeader(file);
  assert.deepEqual(dumped.subarray(0, 64), file.subarray(0, 64), 'ELF header');
  assert.deepEqual(dumped.subarray(h.phoff, h.phoff + h.phnum * h.phentsize), file.subarray(h.phoff, h.phoff + h.phnum * h.phentsize), 'program headers');
  const shEnd = h.shoff + h.shnum * h.shentsize;
  if (h.shnum > 0 && shEnd <= dumped.length) {
    const inDump = dumped.subarray(h.shoff, shEnd);
    if (inDump.some((b) => b !== 0)) assert.deepEqual(inDump, file.subarray(h.shoff, shEnd), 'section headers');
  }

  // Read-only mappings hold the file's bytes: every resident page equals the guest file, and each mapping has
  // one. Writable mappings and the RELRO range (written by the loader, then made read-only) differ by design.
  const PAGE = 4096;
  const relro = segments(file, PT_GNU_RELRO).map((s) => [s.offset & ~(PAGE - 1), s.offset + s.filesz] as const);
  const inRelro = (off: number): boolean => relro.some(([a, b]) => off + PAGE > a && off < b);
  let missingPages = 0;
  let compared = 0;
  for (const m of mapped.filter((x) => x.perms[1] !== 'w')) {
    let matched = 0;
    for (let off = Number(m.offset); off < Number(m.offset + (m.end - m.start)); off += PAGE) {
      if (inRelro(off)) continue;
      const mine = dumped.subarray(off, off + PAGE);
      const theirs = new Uint8Array(PAGE);
      theirs.set(file.subarray(off, Math.min(off + PAGE, file.length)));
      if (mine.every((b) => b === 0) && theirs.some((b) => b !== 0)) {
        missingPages++; // not resident in the process's page tables
        continue;
      }
      assert.deepEqual(mine, theirs, `page at file offset 0x${off.toString(16)} (${m.perms})`);
      matched++;
    }
    if (matched) compared++;
  }
  assert.ok(compared >= 2, `${compared} read-only mappings (ELF header, text) have resident pages equal to the file`);
  assert.ok(row.missing! >= missingPages * PAGE, `missing ${row.missing} covers the ${missingPages} non-resident read-only pages`);
});
