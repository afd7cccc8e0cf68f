/**
 * Kernel image files: extract the vmlinux ELF from a bzImage (vmlinuz) and
 * find ELF sections (`.BTF`, `.BTF.base`) in it.
 *
 * bzImage facts (Documentation/arch/x86/boot.rst): `setup_sects` at 0x1f1
 * (0 means 4), "HdrS" at 0x202, `payload_offset`/`payload_length` at
 * 0x248/0x24c; the payload starts at (setup_sects+1)*512 + payload_offset and
 * ends with a 4-byte little-endian uncompressed size (gzip's own ISIZE). Debian 5.10/6.1 use xz,
 * 6.12 zstd. We decompress with the host's `xz`/`zstd`, which exit non-zero
 * because of the size trailer although their output is complete; the trailer
 * is the check.
 */
import { FormatError, SourceError } from '../core/errors.js';
import { childProcess, zlib } from '../core/builtins.js';

export interface ElfSection {
  readonly name: string;
  readonly type: number;
  readonly addr: bigint;
  readonly offset: number;
  readonly size: number;
}

const ELF_MAGIC = [0x7f, 0x45, 0x4c, 0x46];
const MAX_SECTIONS = 65536;

export function isElf(b: Uint8Array): boolean {
  return b.length >= 64 && ELF_MAGIC.every((v, i) => b[i] === v);
}

/** True when `b` starts like an x86 bzImage (boot sector + "HdrS" setup header). */
export function isBzImage(b: Uint8Array): boolean {
  return b.length > 0x250 && b[0x202] === 0x48 && b[0x203] === 0x64 && b[0x204] === 0x72 && b[0x205] === 0x53;
}

/** Section headers of a little-endian ELF64 file, names resolved. */
export function elfSections(elf: Uint8Array, source = 'vmlinux'): ElfSection[] {
  if (!isElf(elf)) throw new FormatError(source, 'not an ELF file', { offset: 0 });
  if (elf[4] !== 2) throw new FormatError(source, 'not a 64-bit ELF (EI_CLASS != 2)', { offset: 4 });
  if (elf[5] !== 1) throw new FormatError(source, 'not a little-endian ELF', { offset: 5 });
  const dv = new DataView(elf.buffer, elf.byteOffset, elf.byteLength);
  const shoff = toSafe(dv.getBigUint64(0x28, true), source, 0x28);
  const shentsize = dv.getUint16(0x3a, true);
  let shnum = dv.getUint16(0x3c, true);
  let shstrndx = dv.getUint16(0x3e, true);
  if (shoff === 0) return [];
  if (shentsize < 64) throw new FormatError(source, `section header size ${shentsize} < 64`, { offset: 0x3a });
  if (shoff + shentsize > elf.length) throw new FormatError(source, `section headers at ${shoff} lie past the end of the ${elf.length}-byte file`, { offset: 0x28 });
  if (shnum === 0) shnum = toSafe(dv.getBigUint64(shoff + 0x20, true), source, shoff + 0x20); // extended numbering
  if (shstrndx === 0xffff) shstrndx = dv.getUint32(shoff + 0x28, true);
  if (shnum > MAX_SECTIONS || shoff + shnum * shentsize > elf.length) {
    throw new FormatError(source, `${shnum} section headers do not fit in the file`, { offset: 0x3c });
  }
  const raw: { nameOff: number; type: number; addr: bigint; offset: number; size: number }[] = [];
  for (let i = 0; i < shnum; i++) {
    const h = shoff + i * shentsize;
    raw.push({
      nameOff: dv.getUint32(h, true),
      type: dv.getUint32(h + 4, true),
      addr: dv.getBigUint64(h + 0x10, true),
      offset: toSafe(dv.getBigUint64(h + 0x18, true), source, h + 0x18),
      size: toSafe(dv.getBigUint64(h + 0x20, true), source, h + 0x20),
    });
  }
  const strtab = raw[shstrndx];
  const names = strtab && strtab.offset + strtab.size <= elf.length ? elf.subarray(strtab.offset, strtab.offset + strtab.size) : new Uint8Array(0);
  return raw.map((r) => {
    let name = '';
    if (r.nameOff < names.length) {
      const end = names.indexOf(0, r.nameOff);
      name = Buffer.from(names.buffer, names.byteOffset + r.nameOff, (end < 0 ? names.length : end) - r.nameOff).toString('latin1');
    }
    return { name, type: r.type, addr: r.addr, offset: r.offset, size: r.size };
  });
}

/** The bytes of section `name` (a view), or undefined when the ELF has none. */
export function elfSection(elf: Uint8Array, name: string, source = 'vmlinux'): Uint8Array | undefined {
  const s = elfSections(elf, source).find((x) => x.name === name);
  if (!s) return undefined;
  if (s.type === 8 /* SHT_NOBITS */) return new Uint8Array(0);
  if (s.offset + s.size > elf.length) throw new FormatError(source, `section ${name} (${s.offset}+${s.size}) lies past the end of the file`, { offset: s.offset });
  return elf.subarray(s.offset, s.offset + s.size);
}

export type KernelCodec = 'xz' | 'zstd' | 'gzip';

/** Names the compression of a bzImage payload by its magic bytes. */
export function sniffCodec(payload: Uint8Array): KernelCodec | undefined {
  const m = (sig: number[]) => sig.every((v, i) => payload[i] === v);
  if (m([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])) return 'xz';
  if (m([0x28, 0xb5, 0x2f, 0xfd])) return 'zstd';
  if (m([0x1f, 0x8b])) return 'gzip';
  return undefined;
}

/** The compressed payload of a bzImage and its codec. */
export function bzImagePayload(bz: Uint8Array, source = 'vmlinuz'): { payload: Uint8Array; codec: KernelCodec; expectedSize: number } {
  if (!isBzImage(bz)) throw new FormatError(source, 'not a bzImage (no "HdrS" setup header at 0x202)', { offset: 0x202 });
  const dv = new DataView(bz.buffer, bz.byteOffset, bz.byteLength);
  const version = dv.getUint16(0x206, true);
  if (version < 0x208) throw new FormatError(source, `boot protocol 0x${version.toString(16)} has no payload fields (needs 2.08+)`, { offset: 0x206 });
  const setupSects = bz[0x1f1] || 4;
  const payloadOffset = dv.getUint32(0x248, true);
  const payloadLength = dv.getUint32(0x24c, true);
  const start = (setupSects + 1) * 512 + payloadOffset;
  if (payloadLength < 16 || start + payloadLength > bz.length) {
    throw new FormatError(source, `payload ${start}+${payloadLength} lies outside the ${bz.length}-byte image`, { offset: 0x248 });
  }
  const payload = bz.subarray(start, start + payloadLength);
  const codec = sniffCodec(payload);
  if (!codec) {
    const magic = Buffer.from(payload.subarray(0, 6)).toString('hex');
    throw new FormatError(source, `kernel payload compression with magic ${magic} is not supported (xz, zstd, gzip are)`, { offset: start });
  }
  const expectedSize = new DataView(payload.buffer, payload.byteOffset + payloadLength - 4, 4).getUint32(0, true);
  return { payload, codec, expectedSize };
}

/**
 * Extracts the vmlinux ELF from a bzImage. Runs `xz -dc` / `zstd -dc` on the
 * payload (about a second for a Debian kernel) and checks the output length
 * against the payload's size trailer.
 */
export function extractVmlinux(bz: Uint8Array, source = 'vmlinuz'): Uint8Array {
  const { payload, codec, expectedSize } = bzImagePayload(bz, source);
  let out: Uint8Array;
  if (codec === 'gzip') {
    try {
      const b = zlib().gunzipSync(payload); // gzip's own ISIZE trailer is the size (no extra one is appended)
      out = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    } catch (e) {
      throw new FormatError(source, `gzip payload does not decompress: ${(e as Error).message}`, { cause: e });
    }
  } else {
    // -q quiets the "trailing garbage" complaint that the size trailer causes.
    const r = childProcess().spawnSync(codec, ['-dcq'], { input: payload, maxBuffer: 1 << 30 });
    if (r.error) {
      throw new SourceError(codec, source, `cannot run the host's ${codec} to decompress the kernel: ${r.error.message}`, {
        cause: r.error,
        hint: `install ${codec === 'xz' ? 'xz-utils' : 'zstd'}`,
      });
    }
    out = new Uint8Array(r.stdout.buffer, r.stdout.byteOffset, r.stdout.byteLength);
  }
  if (out.length !== expectedSize) {
    throw new FormatError(source, `${codec} payload decompressed to ${out.length} bytes, the size trailer says ${expectedSize} (truncated or corrupt image)`);
  }
  if (!isElf(out)) throw new FormatError(source, 'decompressed kernel payload is not an ELF file');
  return out;
}

function toSafe(v: bigint, source: string, at: number): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new FormatError(source, `value 0x${v.toString(16)} is not a plausible file offset or size`, { offset: at });
  return Number(v);
}
