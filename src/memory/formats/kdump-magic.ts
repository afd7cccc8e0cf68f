/**
 * The signatures that tell a kdump-compressed image, in a module of their own: every file source probes a file
 * with them, and the reader (formats/kdump.ts) loads zlib, snappy, zstd and the LZO binding, which a cold
 * start on an ELF dump should not pay for.
 */

const SIGNATURES = ['KDUMP   ', 'DISKDUMP'];
/** The flattened format's signature; its records start after a 4 KiB header. */
const FLATTENED = 'makedumpfile';

export function isKdump(head: Uint8Array): boolean {
  const sig = Buffer.from(head.subarray(0, 8)).toString('latin1');
  return SIGNATURES.includes(sig);
}

/** makedumpfile's flattened format (`-F`, and QEMU's kdump formats unless `reassembled`). */
export function isFlattenedKdump(head: Uint8Array): boolean {
  return Buffer.from(head.subarray(0, FLATTENED.length)).toString('latin1') === FLATTENED;
}
