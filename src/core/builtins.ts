/**
 * Node built-ins that most runs never use, loaded on first use rather than at import: a cold plugin run
 * loads every module on its path, and node:crypto (3.7 ms), node:child_process (2.3 ms, with node:net) and
 * node:zlib (1.4 ms) were loaded for a hash of a kernel without a build-id, an external decompressor and a
 * CRC of the profile cache that a --no-cache run never reaches.
 */
import { createRequire } from 'node:module';

const load = createRequire(import.meta.url);

/** A getter for built-in `id`, which requires it on the first call. */
function lazy<T>(id: string): () => T {
  let module: T | undefined;
  return () => (module ??= load(id) as T);
}

export const crypto = lazy<typeof import('node:crypto')>('node:crypto');
export const childProcess = lazy<typeof import('node:child_process')>('node:child_process');
export const zlib = lazy<typeof import('node:zlib')>('node:zlib');
