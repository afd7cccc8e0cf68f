/**
 * What the main thread and the bridge worker exchange. A backend module (run
 * inside the worker) exports `createBackend(params)` returning an
 * AsyncBackend; the bridge turns its async `readv` into the synchronous
 * `PhysicalMemory.readv`.
 */
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { ReadFailure } from '../types.js';
import { gpa } from '../../core/address.js';

export interface BackendReadOp {
  addr: number;
  len: number;
}

export interface BackendReadResult {
  /** The bytes of every op, concatenated (failed parts zero). */
  data: Uint8Array;
  failures: ReadFailure[];
}

export interface AsyncBackend {
  readv(ops: BackendReadOp[]): Promise<BackendReadResult>;
  /** Named async operations (refresh, hints, ranges, …). */
  call?(method: string, arg: unknown): Promise<unknown>;
  close(): Promise<void>;
}

/**
 * A batch read by an async reader: every op's bytes back to back in one
 * buffer, each op read in pieces of at most `piece` bytes so a failing
 * piece costs only itself (zeros and a failure). Once `lost()` says the
 * connection is gone, an error fails the whole batch instead.
 */
export async function readBatch(
  ops: readonly BackendReadOp[],
  piece: number,
  read: (addr: number, dst: Uint8Array) => Promise<void>,
  lost: () => boolean,
): Promise<BackendReadResult> {
  let total = 0;
  for (const op of ops) total += op.len;
  const data = new Uint8Array(total);
  const failures: ReadFailure[] = [];
  let off = 0;
  for (const op of ops) {
    for (let done = 0; done < op.len; done += piece) {
      const n = Math.min(piece, op.len - done);
      try {
        await read(op.addr + done, data.subarray(off + done, off + done + n));
      } catch (err) {
        if (lost()) throw err;
        failures.push({ addr: gpa(op.addr + done), len: n, reason: (err as Error).message });
      }
    }
    off += op.len;
  }
  return { data, failures };
}

/** The shape of a backend module. */
export interface BackendModule {
  createBackend(params: unknown): Promise<AsyncBackend>;
}

/** Index of the state word in the control SharedArrayBuffer. */
export const CTRL_STATE = 0;
export const STATE_PENDING = 0;
export const STATE_DONE = 1;
export const STATE_DEAD = 2;

export interface SyncRequest {
  seq: number;
  ops: BackendReadOp[];
  /** Instead of reads: run this backend method ('close' closes the backend), for exit paths that cannot wait asynchronously. */
  call?: string;
}
export interface SyncReply {
  seq: number;
  data?: Uint8Array;
  failures?: ReadFailure[];
  error?: SerializedError;
}
export interface SerializedError {
  name: string;
  message: string;
  hint?: string;
}

export function serializeError(err: unknown): SerializedError {
  const e = err instanceof Error ? err : new Error(String(err));
  const hint = (e as { hint?: unknown }).hint;
  return { name: e.name, message: e.message, ...(typeof hint === 'string' ? { hint } : {}) };
}

/**
 * A sibling module's URL that works both from TypeScript sources (tsx: only
 * `name.ts` exists) and from compiled output in dist/ (`name.js`).
 */
export function siblingModule(base: string | URL, name: string): URL {
  const js = new URL(`./${name}.js`, base);
  if (fs.existsSync(fileURLToPath(js))) return js;
  const ts = new URL(`./${name}.ts`, base);
  if (fs.existsSync(fileURLToPath(ts))) return ts;
  return js;
}
