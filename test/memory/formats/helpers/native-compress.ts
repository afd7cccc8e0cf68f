/**
 * LZO1X and zstd compressors for building test images, from the system's reference libraries (liblzo2,
 * libzstd) through koffi: the same compressors makedumpfile uses, independent of the decoders under test
 * (vmsight decodes zstd with fzstd, a separate implementation).
 */
import { createRequire } from 'node:module';

interface Lib {
  func(signature: string): (...args: unknown[]) => number;
}
const koffi = createRequire(import.meta.url)('koffi') as { load(path: string): Lib };

let lzo: ((src: Uint8Array, len: number, dst: Uint8Array, dstLen: number[], wrk: Uint8Array) => number) | undefined;
let zstd: { compress: (dst: Uint8Array, cap: number, src: Uint8Array, len: number, level: number) => number; isError: (code: number) => number } | undefined;

/** LZO1X-1, what makedumpfile -l writes for each page. */
export function lzoCompress(data: Uint8Array): Uint8Array {
  lzo ??= koffi.load('liblzo2.so.2').func(
    'int lzo1x_1_compress(const uint8_t *src, unsigned long src_len, _Out_ uint8_t *dst, _Inout_ unsigned long *dst_len, void *wrkmem)',
  ) as unknown as typeof lzo;
  const dst = new Uint8Array(data.length + data.length / 16 + 64 + 3);
  const len = [dst.length];
  const rc = lzo!(data, data.length, dst, len, new Uint8Array(16384 * 8));
  if (rc !== 0) throw new Error(`lzo1x_1_compress failed: ${rc}`);
  return dst.slice(0, len[0]);
}

/** One zstd frame with its content size, what makedumpfile -z writes for each page. */
export function zstdCompress(data: Uint8Array, level = 1): Uint8Array {
  if (!zstd) {
    const lib = koffi.load('libzstd.so.1');
    zstd = {
      compress: lib.func('size_t ZSTD_compress(_Out_ uint8_t *dst, size_t cap, const uint8_t *src, size_t len, int level)') as unknown as NonNullable<typeof zstd>['compress'],
      isError: lib.func('unsigned int ZSTD_isError(size_t code)') as unknown as NonNullable<typeof zstd>['isError'],
    };
  }
  const dst = new Uint8Array(data.length + 512);
  const n = zstd.compress(dst, dst.length, data, data.length, level);
  if (zstd.isError(n)) throw new Error('ZSTD_compress failed');
  return dst.slice(0, n);
}
