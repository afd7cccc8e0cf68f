/**
 * Builds small kdump-compressed images in memory for the reader tests, written from the format's layout
 * (disk_dump_header, kdump_sub_header, two bitmaps, page descriptors, page data) independently of the reader.
 */
import zlib from 'node:zlib';
import snappy from 'snappyjs';
import { lzoCompress, zstdCompress } from './native-compress.js';

export type PageEncoding = 'raw' | 'zlib' | 'snappy' | 'lzo' | 'zstd';

export interface KdumpPage {
  pfn: number;
  data: Uint8Array;
  encoding: PageEncoding;
}

export interface KdumpSpec {
  blockSize?: number;
  maxMapnr: number;
  pages: KdumpPage[];
  /** Frames in the RAM bitmap but not dumped (excluded by the dump level). */
  excluded?: number[];
  vmcoreinfo?: string;
  release?: string;
}

const FLAGS: Record<PageEncoding, number> = { raw: 0, zlib: 1, lzo: 2, snappy: 4, zstd: 0x20 };

export function buildKdump(spec: KdumpSpec): Uint8Array {
  const bs = spec.blockSize ?? 4096;
  const pages = [...spec.pages].sort((a, b) => a.pfn - b.pfn);
  const bitmapHalf = Math.ceil(Math.ceil(spec.maxMapnr / 8) / bs) * bs;
  const bitmapBlocks = (2 * bitmapHalf) / bs;
  const vmci = Buffer.from(spec.vmcoreinfo ?? '', 'latin1');
  const subBlocks = 1;
  const descAt = (1 + subBlocks + bitmapBlocks) * bs;
  const compress = (p: KdumpPage): Uint8Array => {
    if (p.encoding === 'zlib') return zlib.deflateSync(p.data);
    if (p.encoding === 'snappy') return snappy.compress(new Uint8Array(p.data));
    if (p.encoding === 'lzo') return lzoCompress(p.data);
    if (p.encoding === 'zstd') return zstdCompress(p.data);
    return p.data;
  };
  // As makedumpfile does, a page that does not shrink is stored raw (flags 0); only block-sized pages qualify.
  const encoded = pages.map((p) => {
    const c = compress(p);
    return p.encoding !== 'raw' && c.length >= bs && p.data.length === bs ? p.data : c;
  });
  const flagsOf = (i: number): number => (encoded[i] === pages[i]!.data ? 0 : FLAGS[pages[i]!.encoding]);
  let dataAt = descAt + pages.length * 24;
  const vmciAt = dataAt;
  dataAt += vmci.length;
  const offsets = encoded.map((e) => {
    const at = dataAt;
    dataAt += e.length;
    return at;
  });
  const out = new Uint8Array(dataAt);
  const dv = new DataView(out.buffer);
  out.set(Buffer.from('KDUMP   ', 'latin1'), 0);
  dv.setUint32(8, 6, true);
  out.set(Buffer.from(spec.release ?? '6.1.0-test', 'latin1'), 12 + 2 * 65);
  out.set(Buffer.from('x86_64', 'latin1'), 12 + 4 * 65);
  dv.setInt32(428, bs, true);
  dv.setInt32(432, subBlocks, true);
  dv.setUint32(436, bitmapBlocks, true);
  dv.setUint32(440, Math.min(spec.maxMapnr, 0xffffffff), true);
  dv.setInt32(460, 1, true);
  // sub-header
  dv.setUint32(bs + 8, 31, true);
  dv.setBigUint64(bs + 32, BigInt(vmci.length ? vmciAt : 0), true);
  dv.setBigUint64(bs + 40, BigInt(vmci.length), true);
  dv.setBigUint64(bs + 96, BigInt(spec.maxMapnr), true);
  const bitmap1 = (1 + subBlocks) * bs;
  const bitmap2 = bitmap1 + bitmapHalf;
  const set = (base: number, pfn: number) => (out[base + (pfn >> 3)]! |= 1 << (pfn & 7));
  for (const p of pages) {
    set(bitmap1, p.pfn);
    set(bitmap2, p.pfn);
  }
  for (const pfn of spec.excluded ?? []) set(bitmap1, pfn);
  pages.forEach((p, i) => {
    const d = descAt + i * 24;
    dv.setBigInt64(d, BigInt(offsets[i]!), true);
    dv.setUint32(d + 8, encoded[i]!.length, true);
    dv.setUint32(d + 12, flagsOf(i), true);
  });
  out.set(vmci, vmciAt);
  encoded.forEach((e, i) => out.set(e, offsets[i]!));
  return out;
}

/**
 * The same image in makedumpfile's flattened format: a 4 KiB header, then {offset, size, data} records
 * (big-endian), here in pieces of `piece` bytes written in a shuffled order plus one overwritten piece,
 * ending with offset -1.
 */
export function flatten(image: Uint8Array, piece = 5000): Uint8Array {
  const records: { at: number; data: Uint8Array }[] = [];
  for (let at = 0; at < image.length; at += piece) records.push({ at, data: image.subarray(at, Math.min(image.length, at + piece)) });
  // Out of order, and a bogus early write of the first piece that the real one (written later) overrides.
  records.reverse();
  records.unshift({ at: 0, data: new Uint8Array(Math.min(piece, image.length)).fill(0xee) });
  const parts: Uint8Array[] = [];
  const head = new Uint8Array(4096);
  head.set(Buffer.from('makedumpfile', 'latin1'));
  new DataView(head.buffer).setBigInt64(16, 1n, false);
  new DataView(head.buffer).setBigInt64(24, 1n, false);
  parts.push(head);
  for (const r of records) {
    const h = new Uint8Array(16);
    new DataView(h.buffer).setBigInt64(0, BigInt(r.at), false);
    new DataView(h.buffer).setBigInt64(8, BigInt(r.data.length), false);
    parts.push(h, r.data);
  }
  const end = new Uint8Array(16);
  new DataView(end.buffer).setBigInt64(0, -1n, false);
  new DataView(end.buffer).setBigInt64(8, -1n, false);
  parts.push(end);
  return Buffer.concat(parts);
}
