import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { gzipSync } from 'node:zlib';
import { FormatError } from '../../src/core/errors.js';
import { btfFromFileBytes } from '../../src/profile/btf/sources.js';
import { bzImagePayload, elfSection, elfSections, extractVmlinux, isBzImage, sniffCodec } from '../../src/profile/vmlinux.js';
import { TypeDb } from '../../src/profile/types.js';
import { kernelLikeBtf } from './helpers/btf-encoder.js';

/** A minimal ELF64 LE file: null section, the given sections, .shstrtab last. */
function makeElf(sections: { name: string; data: Uint8Array }[]): Uint8Array {
  const names = ['', ...sections.map((s) => s.name), '.shstrtab'];
  const strtab: number[] = [];
  const nameOff = names.map((n) => {
    const o = strtab.length;
    strtab.push(...Buffer.from(n), 0);
    return o;
  });
  let off = 64;
  const placed = sections.map((s) => {
    const at = off;
    off += s.data.length;
    return at;
  });
  const strAt = off;
  off += strtab.length;
  off = (off + 7) & ~7;
  const shoff = off;
  const shnum = names.length;
  const out = new Uint8Array(shoff + shnum * 64);
  const dv = new DataView(out.buffer);
  out.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
  dv.setBigUint64(0x28, BigInt(shoff), true);
  dv.setUint16(0x3a, 64, true);
  dv.setUint16(0x3c, shnum, true);
  dv.setUint16(0x3e, shnum - 1, true);
  sections.forEach((s, i) => {
    out.set(s.data, placed[i]!);
    const h = shoff + (i + 1) * 64;
    dv.setUint32(h, nameOff[i + 1]!, true);
    dv.setUint32(h + 4, 1, true);
    dv.setBigUint64(h + 0x18, BigInt(placed[i]!), true);
    dv.setBigUint64(h + 0x20, BigInt(s.data.length), true);
  });
  out.set(strtab, strAt);
  const h = shoff + (shnum - 1) * 64;
  dv.setUint32(h, nameOff[shnum - 1]!, true);
  dv.setUint32(h + 4, 3, true);
  dv.setBigUint64(h + 0x18, BigInt(strAt), true);
  dv.setBigUint64(h + 0x20, BigInt(strtab.length), true);
  return out;
}

/** A bzImage-shaped file: setup header fields, then the compressed payload with its size trailer. */
function makeBzImage(payload: Uint8Array, uncompressedSize: number | undefined, setupSects = 3): Uint8Array {
  const start = (setupSects + 1) * 512;
  const total = payload.length + (uncompressedSize === undefined ? 0 : 4);
  const out = new Uint8Array(start + 64 + total);
  const dv = new DataView(out.buffer);
  out[0x1f1] = setupSects;
  out.set(Buffer.from('HdrS'), 0x202);
  dv.setUint16(0x206, 0x20f, true);
  dv.setUint32(0x248, 64, true); // payload_offset relative to the protected-mode code
  dv.setUint32(0x24c, total, true);
  out.set(payload, start + 64);
  if (uncompressedSize !== undefined) dv.setUint32(start + 64 + payload.length, uncompressedSize, true);
  return out;
}

function compress(tool: 'xz' | 'zstd', data: Uint8Array): Uint8Array | undefined {
  const r = spawnSync(tool, tool === 'xz' ? ['-zc', '--check=crc32'] : ['-c', '-q'], { input: data });
  return r.status === 0 ? new Uint8Array(r.stdout) : undefined;
}

test('ELF sections are found by name; .BTF becomes a TypeDb', () => {
  const btf = kernelLikeBtf().bytes;
  const elf = makeElf([
    { name: '.text', data: new Uint8Array(32).fill(0x90) },
    { name: '.BTF', data: btf },
  ]);
  assert.deepEqual(
    elfSections(elf).map((s) => s.name),
    ['', '.text', '.BTF', '.shstrtab'],
  );
  assert.deepEqual(elfSection(elf, '.BTF'), btf);
  assert.equal(elfSection(elf, '.BTF.base'), undefined);
  const { btf: parsed, kind } = btfFromFileBytes(elf, { source: 'vmlinux' });
  assert.equal(kind, 'elf');
  assert.equal(new TypeDb(parsed).sizeOf('task_struct'), 80);
  assert.throws(() => btfFromFileBytes(makeElf([{ name: '.text', data: new Uint8Array(8) }]), { source: 'v' }), /no .BTF section/);
});

test('corrupt ELF headers are FormatErrors', () => {
  const elf = makeElf([{ name: '.BTF', data: new Uint8Array(16) }]);
  const bad = Uint8Array.from(elf);
  new DataView(bad.buffer).setBigUint64(0x28, 1n << 40n, true);
  assert.throws(() => elfSections(bad), FormatError);
  const many = Uint8Array.from(elf);
  new DataView(many.buffer).setUint16(0x3c, 60000, true);
  assert.throws(() => elfSections(many), /do not fit/);
  const sec = Uint8Array.from(elf);
  new DataView(sec.buffer).setBigUint64(new DataView(elf.buffer).getUint32(0x28, true) + 64 + 0x20, 1n << 30n, true);
  assert.throws(() => elfSection(sec, '.BTF'), /past the end/);
  assert.throws(() => elfSections(new Uint8Array(64)), /not an ELF/);
});

for (const codec of ['xz', 'zstd', 'gzip'] as const) {
  test(`bzImage with a ${codec} payload extracts to the ELF (size trailer checked)`, (t) => {
    const elf = makeElf([{ name: '.BTF', data: kernelLikeBtf().bytes }]);
    const payload = codec === 'gzip' ? new Uint8Array(gzipSync(elf)) : compress(codec, elf);
    if (!payload) {
      t.skip(`host has no ${codec}`);
      return;
    }
    // The kernel build appends the size to xz/zstd payloads; gzip ends with its own ISIZE.
    const trailer = (n: number) => (codec === 'gzip' ? undefined : n);
    const bz = makeBzImage(payload, trailer(elf.length));
    assert.ok(isBzImage(bz));
    assert.equal(bzImagePayload(bz).codec, codec);
    assert.equal(sniffCodec(payload), codec);
    assert.deepEqual(extractVmlinux(bz), elf);
    assert.equal(btfFromFileBytes(bz, { source: 'vmlinuz' }).kind, 'bzImage');
    // A wrong trailer (or a truncated payload) is refused.
    if (codec !== 'gzip') assert.throws(() => extractVmlinux(makeBzImage(payload, elf.length + 1)), /size trailer says/);
    const cut = makeBzImage(payload.subarray(0, payload.length >> 1), trailer(elf.length));
    assert.throws(() => extractVmlinux(cut), FormatError);
  });
}

test('bzImage header errors', () => {
  assert.equal(isBzImage(new Uint8Array(4096)), false);
  assert.throws(() => bzImagePayload(new Uint8Array(4096)), /not a bzImage/);
  const bz = makeBzImage(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]), 100);
  assert.throws(() => bzImagePayload(bz), /compression with magic/);
  const long = Uint8Array.from(bz);
  new DataView(long.buffer).setUint32(0x24c, 1 << 30, true);
  assert.throws(() => bzImagePayload(long), /outside/);
});
