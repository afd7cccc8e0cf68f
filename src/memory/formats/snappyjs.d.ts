// Types for the parts of snappyjs (raw Snappy, MIT, no dependencies) that the kdump reader uses.
declare module 'snappyjs' {
  /** Decompresses raw Snappy data; throws when it is invalid or would exceed `maxLength` bytes. */
  export function uncompress(compressed: Uint8Array, maxLength?: number): Uint8Array;
  export function compress(uncompressed: Uint8Array): Uint8Array;
}
