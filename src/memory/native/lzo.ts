/**
 * LZO1X decompression of kdump pages through the system's liblzo2 (the reference implementation, Debian's
 * liblzo2-2, which makedumpfile itself links) called with koffi, which vmsight already uses for libc.
 * npm has no maintained decoder that fits: `lzo` is a native addon built at install time, `lzo-wasm` is a
 * browser bundle that cannot report how many bytes it produced. Loaded on first LZO page only.
 *
 * Pages are hostile: lzo1x_decompress_safe checks every input and output bound, and the output must be
 * exactly one block.
 */
import { createRequire } from 'node:module';

interface KoffiLib {
  func(signature: string): (...args: unknown[]) => number;
}

const LIBRARY = 'liblzo2.so.2';
/** LZO_E_OK, and LZO_E_INPUT_NOT_CONSUMED (trailing bytes after the end marker: the page is whole). */
const LZO_E_OK = 0;
const LZO_E_INPUT_NOT_CONSUMED = -8;

let decompressSafe: ((src: Uint8Array, srcLen: number, dst: Uint8Array, dstLen: number[], wrk: null) => number) | undefined;
let loadError: string | undefined;

function load(): NonNullable<typeof decompressSafe> {
  if (decompressSafe) return decompressSafe;
  if (loadError) throw new Error(loadError);
  try {
    const koffi = createRequire(import.meta.url)('koffi') as { load(path: string): KoffiLib };
    const lib = koffi.load(LIBRARY);
    decompressSafe = lib.func(
      'int lzo1x_decompress_safe(const uint8_t *src, unsigned long src_len, _Out_ uint8_t *dst, _Inout_ unsigned long *dst_len, void *wrkmem)',
    ) as unknown as NonNullable<typeof decompressSafe>;
    return decompressSafe;
  } catch (e) {
    loadError = `LZO pages need ${LIBRARY} (Debian package liblzo2-2: 'apt-get install liblzo2-2', or 'npm run setup'): ${(e as Error).message}`;
    throw new Error(loadError);
  }
}

/** Why LZO cannot be decoded here, or undefined when it can (loads the library). */
export function lzoUnavailable(): string | undefined {
  try {
    load();
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}

/**
 * Decompresses one LZO1X block that must expand to exactly `size` bytes.
 * Throws an Error saying what was wrong (library missing, corrupt data, wrong size).
 */
export function lzoDecompress(packed: Uint8Array, size: number): Uint8Array {
  const fn = load();
  const out = new Uint8Array(size);
  const len = [size];
  const rc = fn(packed, packed.length, out, len, null);
  if (rc !== LZO_E_OK && rc !== LZO_E_INPUT_NOT_CONSUMED) throw new Error(`corrupt LZO data (liblzo2 error ${rc})`);
  if (len[0] !== size) throw new Error(`decompresses to ${len[0]} bytes, not ${size}`);
  return out;
}
