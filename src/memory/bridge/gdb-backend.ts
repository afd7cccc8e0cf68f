/**
 * Bridge backend for the debugger-stub technique (runs in the bridge
 * worker). All-stop: a read batch stops the guest if it runs and leaves it
 * stopped, so every read of one pass sees the same instant; `resume` (the
 * source's refresh) lets it run again; `close` detaches, which resumes it.
 */
import { GDB_MAX_READ, GdbClient } from '../../qemu/gdb.js';
import { type AsyncBackend, type BackendReadOp, type BackendReadResult, readBatch } from './protocol.js';

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
      // Per 2 KiB chunk so a failure (E14 on unbacked memory) costs only that chunk;
      // a lost connection fails the whole batch (SourceError upstream).
      return readBatch(ops, GDB_MAX_READ, (addr, dst) => gdb.readMemory(addr, dst), () => gdb.closed);
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
