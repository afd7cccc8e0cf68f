/**
 * Bridge backend for the monitor-read technique (runs in the bridge worker):
 * HMP `xp /Ngx ADDR` over QMP `human-monitor-command`. The worker owns the
 * QMP connection (QEMU serves one QMP client per socket), so the source asks
 * it for the layout too.
 */
import { discoverQemu } from '../../qemu/discover.js';
import { QmpClient } from '../../qemu/qmp.js';
import { type AsyncBackend, type BackendReadOp, type BackendReadResult, readBatch } from './protocol.js';
import { parseXp } from './xp.js';

export interface MonitorBackendParams {
  endpoint: string;
  /** Other QMP sockets of the same QEMU, tried first (briefly): this process may hold `endpoint` itself. */
  alternatives?: readonly string[];
  timeoutMs?: number;
}

/** The first of the alternatives that greets within half a second, else `endpoint` (with the full timeout). */
async function connectAny(p: MonitorBackendParams): Promise<{ qmp: QmpClient; endpoint: string }> {
  for (const endpoint of p.alternatives ?? []) {
    try {
      return { qmp: await QmpClient.connect(endpoint, { timeoutMs: 500 }), endpoint };
    } catch {
      // held by another client, or gone: try the next one
    }
  }
  return { qmp: await QmpClient.connect(p.endpoint, { timeoutMs: p.timeoutMs ?? 5000 }), endpoint: p.endpoint };
}

/** Words per `xp` command: 4 KiB of data, about 10 KiB of text. */
const WORDS_PER_XP = 512;

export async function createBackend(params: unknown): Promise<AsyncBackend> {
  const p = params as MonitorBackendParams;
  const { qmp, endpoint } = await connectAny(p);
  const timeoutMs = p.timeoutMs ?? 10_000;
  let commands = 0;

  /** Reads the 8-byte-aligned words covering [addr, addr+len) into `dst`. */
  async function readAligned(addr: number, len: number, dst: Uint8Array): Promise<void> {
    const first = Math.floor(addr / 8) * 8;
    const last = Math.ceil((addr + len) / 8) * 8;
    const words = new Uint8Array(last - first);
    for (let at = first; at < last; at += WORDS_PER_XP * 8) {
      const n = Math.min(WORDS_PER_XP, (last - at) / 8);
      const text = await qmp.hmp(`xp /${n}gx 0x${at.toString(16)}`, timeoutMs);
      commands++;
      parseXp(text, at, n, words.subarray(at - first, at - first + n * 8));
    }
    dst.set(words.subarray(addr - first, addr - first + len));
  }

  return {
    async readv(ops: BackendReadOp[]): Promise<BackendReadResult> {
      // One failure per op; a lost connection fails the whole batch.
      return readBatch(ops, Infinity, (addr, dst) => readAligned(addr, dst.length, dst), () => qmp.closed);
    },
    async call(method: string): Promise<unknown> {
      if (method === 'layout') return (await discoverQemu(qmp, endpoint)).layout;
      if (method === 'registers') return qmp.hmp('info registers -a', timeoutMs);
      if (method === 'stats') return { commands };
      throw new Error(`unknown method ${method}`);
    },
    async close(): Promise<void> {
      await qmp.close();
    },
  };
}
