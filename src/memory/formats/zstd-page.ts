/**
 * One zstd-compressed kdump page (makedumpfile -z), decoded with fzstd (pure JavaScript, no native code).
 * fzstd trusts its output buffer to be large enough and grows its own without bound, so a hostile page is
 * checked first: one zstd frame whose header declares exactly the block size (makedumpfile's
 * ZSTD_compressCCtx always writes the content size), decoded into a buffer of that size.
 */
import { decompress } from 'fzstd';

const MAGIC = 0xfd2fb528;

/** The content size a zstd frame header declares, or why the frame is not acceptable. */
export function zstdFrameContentSize(b: Uint8Array): bigint | string {
  if (b.length < 6) return 'shorter than a zstd frame header';
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (dv.getUint32(0, true) !== MAGIC) return 'not a zstd frame (bad magic)';
  const fhd = b[4]!;
  const fcsFlag = fhd >> 6;
  const singleSegment = (fhd & 0x20) !== 0;
  if (fhd & 0x08) return 'reserved bit set in the zstd frame header';
  const dictBytes = [0, 1, 2, 4][fhd & 3]!;
  const at = 5 + (singleSegment ? 0 : 1) + dictBytes;
  const fcsBytes = fcsFlag === 0 ? (singleSegment ? 1 : 0) : [0, 2, 4, 8][fcsFlag]!;
  if (fcsBytes === 0) return 'the zstd frame does not declare its size';
  if (at + fcsBytes > b.length) return 'zstd frame header cut short';
  switch (fcsBytes) {
    case 1:
      return BigInt(b[at]!);
    case 2:
      return BigInt(dv.getUint16(at, true) + 256);
    case 4:
      return BigInt(dv.getUint32(at, true));
    default:
      return dv.getBigUint64(at, true);
  }
}

/** Decodes a page that must expand to exactly `size` bytes; throws an Error saying what was wrong. */
export function zstdDecompressPage(packed: Uint8Array, size: number): Uint8Array {
  const declared = zstdFrameContentSize(packed);
  if (typeof declared === 'string') throw new Error(declared);
  if (declared !== BigInt(size)) throw new Error(`the zstd frame declares ${declared} bytes, not ${size}`);
  const out = decompress(packed, new Uint8Array(size));
  if (out.length !== size) throw new Error(`decompresses to ${out.length} bytes, not ${size}`);
  return out;
}
