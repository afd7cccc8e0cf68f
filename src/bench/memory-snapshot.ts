/**
 * Benchmarks of the snapshot, debugger-stub and monitor techniques (and the
 * files they produce): 8-byte and 4 KiB read latency, reads per second,
 * scan throughput, host CPU per MiB, and the time a snapshot takes. Called
 * by the bench runner; rows share memory-live's BenchRow shape plus the
 * snapshot figures.
 */
import { factory as gdbStub } from '../memory/sources/gdb-stub.js';
import { factory as haltSnapshot } from '../memory/sources/halt-snapshot.js';
import { factory as liveSnapshot } from '../memory/sources/live-snapshot.js';
import { factory as monitorRead } from '../memory/sources/monitor-read.js';
import type { SourceFactory, SourceTarget } from '../memory/source-factory.js';
import type { PhysicalMemory, ReadOp } from '../memory/types.js';
import { addresses, localAddresses, type BenchRow } from './memory-live.js';
import { type BenchTable, median } from './report.js';
import { gpa } from '../core/address.js';

export interface SnapshotBenchRow extends BenchRow {
  /** Time to open (first snapshot / connect), ms. */
  readonly openMs: number;
  /** Time of one refresh (a new snapshot, or a resume for the gdb stub), ms. */
  readonly refreshMs: number;
}

export interface SnapshotBenchOptions {
  /** QMP socket of the guest. */
  readonly qmp: string;
  /** gdbstub HOST:PORT, when the guest has one. */
  readonly gdb?: string;
  /** Time budget per rate measurement, ms (default 300). */
  readonly sliceMs?: number;
  /** Bytes scanned by the slow remote techniques (gdb, monitor); default 1 MiB. */
  readonly remoteScanBytes?: number;
}

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0);
}

/** Random page-aligned RAM addresses (only backed ranges). */
function randomAddrs(mem: PhysicalMemory, n: number, align: number): number[] {
  const ranges = mem.ranges().filter((r) => r.end - r.start >= 0x10000);
  const total = ranges.reduce((a, r) => a + (r.end - r.start), 0);
  const rnd = lcg(42);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    let off = (rnd() * 65536 + (rnd() & 0xffff)) % (total - 4096);
    for (const r of ranges) {
      const len = r.end - r.start;
      if (off < len - 4096) {
        out.push(r.start + off - (off % align));
        break;
      }
      off -= len;
      if (off < 0) off = 0;
    }
  }
  return out;
}

function latencyUs(mem: PhysicalMemory, addrs: number[], len: number, budgetMs: number): number {
  const samples: number[] = [];
  const dst = new Uint8Array(len);
  const stop = performance.now() + budgetMs;
  for (let i = 0; i < addrs.length && (performance.now() < stop || samples.length < 5); i++) {
    const t = performance.now();
    mem.readv([{ addr: gpa(addrs[i]!), len, dst }]);
    samples.push((performance.now() - t) * 1000);
  }
  return median(samples);
}

function batchedRate(mem: PhysicalMemory, addrs: number[], budgetMs: number, batch: number): number {
  const ops: ReadOp[] = [];
  const buf = new Uint8Array(8 * batch);
  let reads = 0;
  const t0 = performance.now();
  for (let i = 0; performance.now() - t0 < budgetMs; i += batch) {
    ops.length = 0;
    for (let j = 0; j < batch; j++) ops.push({ addr: gpa(addrs[(i + j) % addrs.length]!), len: 8, dst: buf.subarray(j * 8, j * 8 + 8) });
    mem.readv(ops);
    reads += batch;
  }
  return reads / ((performance.now() - t0) / 1000);
}

function scan(mem: PhysicalMemory, limit: number): { mbps: number; cpuMsPerMiB: number } {
  const chunk = Math.min(1 << 20, limit);
  const dst = new Uint8Array(chunk);
  let bytes = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (const r of mem.ranges()) {
    for (let a: number = r.start; a < r.end && bytes < limit; a += chunk) {
      const n = Math.min(chunk, r.end - a, limit - bytes);
      mem.readv([{ addr: gpa(a), len: n, dst: dst.subarray(0, n) }]);
      bytes += n;
    }
  }
  const s = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return { mbps: bytes / 1e6 / s, cpuMsPerMiB: (cpu.user + cpu.system) / 1000 / (bytes / (1 << 20)) };
}

async function benchOne(
  technique: string,
  factory: SourceFactory,
  target: SourceTarget,
  opts: SnapshotBenchOptions,
  remote: boolean,
): Promise<SnapshotBenchRow> {
  const slice = opts.sliceMs ?? 300;
  const t0 = performance.now();
  const mem = await factory.open(target);
  const openMs = performance.now() - t0;
  try {
    const addrs8 = randomAddrs(mem, 4096, 8);
    const addrs4k = randomAddrs(mem, 1024, 4096);
    const read8Us = latencyUs(mem, addrs8, 8, slice);
    const read4kUs = latencyUs(mem, addrs4k, 4096, slice);
    // The same experiments as the live rows' (memory-live.ts): one address set, batches of 1024 (64 remote).
    const spread = addresses(mem.ranges(), 1 << 16);
    const readsPerSec = batchedRate(mem, spread, slice, remote ? 64 : 1024);
    const localReadsPerSec = batchedRate(mem, localAddresses(spread), slice, remote ? 64 : 1024);
    const sc = scan(mem, remote ? (opts.remoteScanBytes ?? 1 << 20) : Number.MAX_SAFE_INTEGER);
    const t1 = performance.now();
    await mem.refresh?.();
    const refreshMs = performance.now() - t1;
    return {
      technique,
      class: mem.technique.class,
      implementation: mem.technique.name,
      read8Us,
      read4kUs,
      readsPerSec,
      localReadsPerSec,
      scanMBps: sc.mbps,
      cpuMsPerMiB: sc.cpuMsPerMiB,
      openMs,
      refreshMs,
      note: remote ? `scan limited to ${((opts.remoteScanBytes ?? 1 << 20) / 1024).toFixed(0)} KiB` : 'reads from the snapshot file (page cache)',
    };
  } finally {
    await mem.close();
  }
}

/** Runs each technique in turn (they share one QMP socket, so never in parallel). */
export async function benchSnapshotSources(opts: SnapshotBenchOptions): Promise<SnapshotBenchRow[]> {
  const q = (params: Record<string, string> = {}): SourceTarget => ({ spec: `qmp:${opts.qmp}`, qmp: opts.qmp, params });
  const rows: SnapshotBenchRow[] = [];
  rows.push(await benchOne('halt snapshot (pmemsave)', haltSnapshot, q(), opts, false));
  rows.push(await benchOne('halt snapshot (dump-guest-memory)', haltSnapshot, q({ method: 'dump' }), opts, false));
  rows.push(await benchOne('live snapshot (background)', liveSnapshot, q(), opts, false));
  rows.push(await benchOne('live snapshot (pre-copy)', liveSnapshot, q({ mode: 'precopy' }), opts, false));
  if (opts.gdb) rows.push(await benchOne('debugger stub', gdbStub, { ...q(), spec: `gdb:${opts.gdb}`, gdb: opts.gdb }, opts, true));
  rows.push(await benchOne('monitor reads (xp)', monitorRead, q(), { ...opts, remoteScanBytes: Math.min(opts.remoteScanBytes ?? 1 << 20, 256 << 10) }, true));
  return rows;
}

const r = (x: number, d = 1) => (Number.isFinite(x) ? Number(x.toFixed(d)) : x);

export function snapshotBenchTable(rows: readonly SnapshotBenchRow[]): BenchTable {
  return {
    name: 'memory-snapshot',
    description: 'snapshot, debugger-stub and monitor techniques: latency (µs), reads/s, scan MB/s, CPU ms/MiB, open and refresh (snapshot) ms',
    columns: ['technique', 'read8Us', 'read4kUs', 'readsPerSec', 'localReadsPerSec', 'scanMBps', 'cpuMsPerMiB', 'openMs', 'refreshMs', 'note'],
    rows: rows.map((x) => ({
      ...x,
      read8Us: r(x.read8Us),
      read4kUs: r(x.read4kUs),
      readsPerSec: r(x.readsPerSec, 0),
      localReadsPerSec: r(x.localReadsPerSec, 0),
      scanMBps: r(x.scanMBps),
      cpuMsPerMiB: r(x.cpuMsPerMiB, 2),
      openMs: r(x.openMs, 0),
      refreshMs: r(x.refreshMs, 0),
    })),
  };
}
