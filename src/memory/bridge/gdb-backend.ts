/**
 * Bridge backend for the debugger-stub technique (runs in the bridge
 * worker). All-stop: a read batch stops the guest if it runs and leaves it
 * stopped, so every read of one pass sees the same instant; `resume` (the
 * source's refresh) lets it run again; `close` detaches, which resumes it.
 */
import { GDB_MAX_READ, GdbClient } from '../../qemu/gdb.js';
import type { ReadFailure } from '../types.js';
import type { AsyncBackend, BackendReadOp, BackendReadResult } from './protocol.js';

export interface GdbBackendParams {
  endpoint: string;
  timeoutMs?: number;
}

export async function createBackend(params: unknown): Promise<AsyncBackend> {
  const p = params as GdbBackendParams;
  const gdb = await GdbClient.connect(p.endpoint, { timeoutMs: p.timeoutMs ?? 3000, physical: true });
  // QEMU stopped the guest when we connected: let it run until the first read.
  await gdb.resume();
  let stops = 0;
  return {
    async readv(ops: BackendReadOp[]): Promise<BackendReadResult> {
      if (gdb.running) {
        await gdb.stop();
        stops++;
      }
      let total = 0;
      for (const op of ops) total += op.len;
      const data = new Uint8Array(total);
      const failures: ReadFailure[] = [];
      let off = 0;
      for (const op of ops) {
        // Per 2 KiB chunk so a failure (E14 on unbacked memory) costs only that chunk.
        for (let done = 0; done < op.len; done += GDB_MAX_READ) {
          const n = Math.min(GDB_MAX_READ, op.len - done);
          try {
            await gdb.readMemory(op.addr + done, data.subarray(off + done, off + done + n));
          } catch (err) {
            // A lost connection fails the whole batch (SourceError upstream), not chunk by chunk.
            if (gdb.closed) throw err;
            failures.push({ addr: op.addr + done, len: n, reason: (err as Error).message });
          }
        }
        off += op.len;
      }
      return { data, failures };
    },
    async call(method: string): Promise<unknown> {
      if (method === 'resume') return gdb.resume();
      if (method === 'stop') return gdb.stop();
      if (method === 'stats') return { stops, running: gdb.running };
      throw new Error(`unknown method ${method}`);
    },
    async close(): Promise<void> {
      await gdb.detach();
    },
  };
}
