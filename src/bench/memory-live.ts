/**
 * Benchmark of the live memory-access techniques against one running guest:
 * live map (mmap views, readv copies, pread), live read (batched
 * process_vm_readv, /proc/PID/mem), and guest-halting access (cost of a
 * stop/cont pass). Per technique: 8-byte and 4 KiB read latency, small reads
 * per second, full-memory scan throughput and host CPU per MiB scanned.
 */
import { SourceError } from '../core/errors.js';
import { HaltingMemory, qmpControl } from '../memory/halting.js';
import { parseSourceSpec } from '../memory/open.js';
import { openQemuProcess } from '../memory/sources/qemu-process.js';
import { openQemuShm } from '../memory/sources/qemu-shm.js';
import { PhysReader } from '../arch/phys-reader.js';
import type { PhysicalMemory, PhysRange, ReadOp } from '../memory/types.js';
import { findGuest } from '../lab/vm.js';
import { acquireQmp } from '../qemu/discover.js';
import type { BenchTable } from './report.js';
import { passBlockRow } from './memory-pass-blocks.js';
import { gpa } from '../core/address.js';

export interface BenchRow {
  /** Taxonomy class and how it was driven, e.g. 'live-map (DataView)'. */
  readonly technique: string;
  readonly class: string;
  readonly implementation: string;
  /** Median latency of one 8-byte read, microseconds. */
  readonly read8Us: number;
  /** Median latency of one 4 KiB read, microseconds. */
  readonly read4kUs: number;
  /** 8-byte reads per second at 64 Ki pseudo-random addresses spread over all RAM, in this technique's best mode (views, or batches of 1024). */
  readonly readsPerSec: number;
  /** The same, for a structure-walk pattern: every word of a page, page after random page. */
  readonly localReadsPerSec: number;
  /** Whole-RAM copy-out throughput, MB/s (10^6 bytes), or NaN when not measured. */
  readonly scanMBps: number;
  /** Host CPU (user+system) per MiB scanned, milliseconds. */
  readonly cpuMsPerMiB: number;
  readonly note: string;
}

export interface LiveBenchOptions {
  /** Time budget per latency/rate measurement, ms (default 300). */
  readonly sliceMs?: number;
  /** Scan at most this many bytes per technique (default: all RAM). */
  readonly scanBytes?: number;
}

interface Endpoints {
  qmp: string;
  shm?: string;
  pid?: number;
}

function endpoints(target: string): Endpoints {
  const t = parseSourceSpec(target);
  if ('lab' in t && t.lab) {
    const g = findGuest(t.lab);
    if (!g) throw new SourceError('bench', target, 'no running lab guest of that name', { hint: `vmsight lab up ${t.lab}` });
    return { qmp: g.qmpSocket, shm: g.shmPath, pid: g.pid };
  }
  if (!t.qmp) throw new SourceError('bench', target, 'the live benchmark needs a lab guest or a QMP socket');
  return { qmp: t.qmp, ...(t.shm ? { shm: t.shm } : {}), ...(t.pid ? { pid: t.pid } : {}) };
}

/** Deterministic pseudo-random 8-byte-aligned addresses inside RAM ranges. */
export function addresses(ranges: readonly PhysRange[], n: number): number[] {
  const big = ranges.filter((r) => r.end - r.start >= 1 << 20);
  const out: number[] = [];
  let x = 0x2545f491;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    const r = big[(x >>> 0) % big.length]!;
    const a = r.start + Math.floor(((x >>> 0) / 0x1_0000_0000) * (r.end - r.start - 4096));
    out.push(a - (a % 8));
  }
  return out;
}

/** Every 8-byte word of a page, for pages taken from `addrs`: the locality of a structure walk. */
export function localAddresses(addrs: readonly number[]): number[] {
  return addrs.map((_, i) => (addrs[i >> 9]! - (addrs[i >> 9]! % 4096)) + (i & 511) * 8);
}

/** Median of per-call latencies, µs, over up to `sliceMs`. */
export function latencyUs(fn: (i: number) => void, sliceMs: number): number {
  const samples: number[] = [];
  const end = performance.now() + sliceMs;
  for (let i = 0; i < 2000 && (i < 20 || performance.now() < end); i++) {
    const t0 = performance.now();
    fn(i);
    samples.push((performance.now() - t0) * 1000);
  }
  samples.sort((a, b) => a - b);
  return samples[samples.length >> 1]!;
}

/** Operations per second of `fn(i)` that does `perCall` reads, over `sliceMs`. */
export function rate(fn: (i: number) => void, perCall: number, sliceMs: number): number {
  let calls = 0;
  const t0 = performance.now();
  let now = t0;
  while (now - t0 < sliceMs) {
    for (let k = 0; k < 16; k++) fn(calls++);
    now = performance.now();
  }
  return (calls * perCall) / ((now - t0) / 1000);
}

/** Copies all RAM out through readv in batches of 16 × 1 MiB into reused buffers. */
function scan(mem: PhysicalMemory, limit: number): { MBps: number; cpuMsPerMiB: number; bytes: number } {
  const chunk = 1 << 20;
  const bufs = Array.from({ length: 16 }, () => new Uint8Array(chunk));
  const ops: ReadOp[] = [];
  let bytes = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const flush = () => {
    mem.readv(ops);
    ops.length = 0;
  };
  for (const r of mem.ranges()) {
    for (let a: number = r.start; a < r.end && bytes < limit; a += chunk) {
      const len = Math.min(chunk, r.end - a, limit - bytes);
      ops.push({ addr: gpa(a), len, dst: bufs[ops.length]! });
      bytes += len;
      if (ops.length === bufs.length) flush();
    }
  }
  if (ops.length) flush();
  const secs = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return { MBps: bytes / 1e6 / secs, cpuMsPerMiB: (cpu.user + cpu.system) / 1000 / (bytes / (1 << 20)), bytes };
}

/** 8-byte readv: latency of one op, and the rate in batches of 1024 ops. */
export function readvFigures(
  mem: PhysicalMemory,
  addrs: number[],
  local: number[],
  sliceMs: number,
): { read8Us: number; read4kUs: number; batchedRate: number; localRate: number } {
  const d8 = new Uint8Array(8);
  const d4k = new Uint8Array(4096);
  const op8: ReadOp = { addr: gpa(0), len: 8, dst: d8 };
  const op4k: ReadOp = { addr: gpa(0), len: 4096, dst: d4k };
  const read8Us = latencyUs((i) => {
    op8.addr = gpa(addrs[i % addrs.length]!);
    mem.readv([op8]);
  }, sliceMs);
  const read4kUs = latencyUs((i) => {
    op4k.addr = gpa(addrs[i % addrs.length]! & ~4095);
    mem.readv([op4k]);
  }, sliceMs);
  const dst = new Uint8Array(8 * 1024);
  const batch: ReadOp[] = Array.from({ length: 1024 }, (_, k) => ({ addr: gpa(0), len: 8, dst: dst.subarray(k * 8, k * 8 + 8) }));
  const batchedRate = (list: number[]) =>
    rate((i) => {
      const base = (i * 1024) % list.length;
      for (let k = 0; k < 1024; k++) batch[k]!.addr = gpa(list[(base + k) % list.length]!);
      mem.readv(batch);
    }, 1024, sliceMs);
  return { read8Us, read4kUs, batchedRate: batchedRate(addrs), localRate: batchedRate(local) };
}

/**
 * The zero-copy path as the walkers use it: PhysReader.u64Halves per
 * address (region lookup — last hit, else binary search — then two DataView
 * loads from the mapped view). Physical addresses: translation is the
 * translate suite's figure. Scans touch every byte of the views without copying.
 */
/**
 * The row of a mapped source's zero-copy view: 8-byte reads through the views, 4 KiB reads as the readv
 * copies `readv` measured, the scan over the views. `how` says what an 8-byte read costs on this source.
 */
export function zeroCopyRow(
  mem: PhysicalMemory,
  addrs: number[],
  local: number[],
  sliceMs: number,
  limit: number,
  readv: { readonly read4kUs: number },
  technique: string,
  cls: string,
  implementation: string,
  how: string,
): BenchRow {
  const v = viewFigures(mem, addrs, local, sliceMs, limit);
  return {
    technique,
    class: cls,
    implementation,
    read8Us: round(v.read8Us),
    read4kUs: round(readv.read4kUs),
    readsPerSec: round(v.readsPerSec),
    localReadsPerSec: round(v.localReadsPerSec),
    scanMBps: round(v.scanMBps),
    cpuMsPerMiB: round(v.cpuMsPerMiB),
    note: `zero-copy: ${how}; 4 KiB read = readv copy; scan = Buffer.indexOf over the views (first touch: ${round(v.coldScanMBps)} MB/s)`,
  };
}

export function viewFigures(mem: PhysicalMemory, addrs: number[], local: number[], sliceMs: number, limit: number) {
  const regions = mem.mapped!();
  // A scan that touches every byte without copying: search for a pattern that is not there. The first
  // pass also maps every page into this process (first-touch faults); the second is the steady state.
  const needle = Buffer.from('vmsight-bench-needle-not-in-ram\x01\x02');
  let sink = 0;
  const viewScan = () => {
    let bytes = 0;
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    for (const r of regions) {
      if (bytes >= limit) break;
      const len = Math.min(r.bytes.length, limit - bytes);
      sink ^= Buffer.from(r.bytes.buffer, r.bytes.byteOffset, len).indexOf(needle);
      bytes += len;
    }
    const secs = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    return { MBps: bytes / 1e6 / secs, cpuMsPerMiB: (cpu.user + cpu.system) / 1000 / (bytes / (1 << 20)) };
  };
  const cold = viewScan();
  const warm = viewScan();
  const phys = new PhysReader(mem);
  const halves = new Uint32Array(2);
  const perCall = 4096;
  const viewRate = (list: readonly number[]) =>
    rate((i) => {
      const base = i * perCall;
      for (let k = 0; k < perCall; k++) {
        phys.u64Halves(list[(base + k) % list.length]!, halves);
        sink ^= halves[0]! ^ halves[1]!;
      }
    }, perCall, sliceMs);
  const read8Us = latencyUs((i) => {
    phys.u64Halves(addrs[i % addrs.length]!, halves);
    sink ^= halves[0]!;
  }, sliceMs / 4);
  const readsPerSec = viewRate(addrs);
  const localReadsPerSec = viewRate(local);
  return {
    read8Us,
    readsPerSec,
    localReadsPerSec,
    scanMBps: warm.MBps,
    cpuMsPerMiB: warm.cpuMsPerMiB,
    coldScanMBps: cold.MBps,
    sink,
  };
}

export const round = (x: number, digits = 2) => Number(x.toPrecision(digits + 2));


/**
 * Measures every live technique against `target` (a lab guest name,
 * `lab:NAME`, `qmp:SOCKET` or `shm:FILE?qmp=SOCKET`). The guest keeps
 * running except during the guest-halting measurement.
 */
/** One technique's row from the readv figures and a scan of the same source. */
export function measuredRow(technique: string, cls: BenchRow['class'], implementation: string, mem: PhysicalMemory, addrs: number[], local: number[], sliceMs: number, limit: number, note: string): BenchRow {
  const r = readvFigures(mem, addrs, local, sliceMs);
  const s = scan(mem, limit);
  return {
    technique,
    class: cls,
    implementation,
    read8Us: round(r.read8Us),
    read4kUs: round(r.read4kUs),
    readsPerSec: round(r.batchedRate),
    localReadsPerSec: round(r.localRate),
    scanMBps: round(s.MBps),
    cpuMsPerMiB: round(s.cpuMsPerMiB),
    note,
  };
}

export async function benchLiveSources(target: string, options: LiveBenchOptions = {}): Promise<BenchRow[]> {
  const sliceMs = options.sliceMs ?? 300;
  const ep = endpoints(target);
  const rows: BenchRow[] = [];
  const lease = await acquireQmp(ep.qmp);
  try {
    const d = await lease.discovery();
    const shmPath = ep.shm ?? (d.mainBackend?.readable ? d.mainBackend.memPath : undefined);
    const limit = options.scanBytes ?? Number.MAX_SAFE_INTEGER;
    const addrs = addresses(d.layout, 1 << 16);
    const local = localAddresses(addrs);

    if (shmPath) {
      const mapped = await openQemuShm({ path: shmPath, qmp: ep.qmp });
      try {
        if (mapped.mapped) {
          const r = readvFigures(mapped, addrs, local, sliceMs);
          rows.push(
            zeroCopyRow(mapped, addrs, local, sliceMs, limit, r, 'live-map (zero-copy view, PhysReader.u64)', 'live-map', 'qemu-shm', 'region lookup + DataView loads per 8 B read (physical addresses, no translation)'),
          );
          const s = scan(mapped, limit);
          rows.push({
            technique: 'live-map (readv copy)',
            class: 'live-map',
            implementation: 'qemu-shm',
            read8Us: round(r.read8Us),
            read4kUs: round(r.read4kUs),
            readsPerSec: round(r.batchedRate),
          localReadsPerSec: round(r.localRate),
            scanMBps: round(s.MBps),
            cpuMsPerMiB: round(s.cpuMsPerMiB),
            note: 'readv batches of 1024 × 8 B; scan copies 1 MiB ops',
          });
          // Guest-halting, measured: a one-read pass (stop, read, cont) for the latencies; the rates
          // and the scan inside one pass, the guest paused meanwhile.
          const h = new HaltingMemory(mapped, qmpControl(lease.client));
          const passUs = (len: number) => {
            const samples: number[] = [];
            const dst = new Uint8Array(len);
            return async () => {
              for (let i = 0; i < 20; i++) {
                const t0 = performance.now();
                await h.begin();
                h.readv([{ addr: gpa(addrs[i]! & (len === 8 ? ~7 : ~4095)), len, dst }]);
                await h.end();
                samples.push((performance.now() - t0) * 1000);
              }
              samples.sort((a, b) => a - b);
              return samples[samples.length >> 1]!;
            };
          };
          const pass8 = await passUs(8)();
          const pass4k = await passUs(4096)();
          let inPass: ReturnType<typeof viewFigures> | undefined;
          try {
            await h.begin();
            inPass = viewFigures(h, addrs, local, sliceMs, limit);
          } finally {
            await h.end();
          }
          rows.push({
            technique: 'guest-halting (live-map inside)',
            class: 'guest-halting',
            implementation: 'halting(qemu-shm)',
            read8Us: round(pass8),
            read4kUs: round(pass4k),
            readsPerSec: round(inPass.readsPerSec),
            localReadsPerSec: round(inPass.localReadsPerSec),
            scanMBps: round(inPass.scanMBps),
            cpuMsPerMiB: round(inPass.cpuMsPerMiB),
            note: 'latencies: a pass of one read (stop, read, cont); rates and scan as the zero-copy row, inside one pass (guest paused)',
          });
        }
      } finally {
        await mapped.close();
      }
      const pread = await openQemuShm({ path: shmPath, qmp: ep.qmp, pread: true });
      try {
        rows.push(measuredRow('live-map (pread fallback)', 'live-map', 'qemu-shm?pread=1', pread, addrs, local, sliceMs, limit, 'one pread per op'));
      } finally {
        await pread.close();
      }
    }

    for (const method of ['process_vm_readv', 'proc-mem'] as const) {
      let mem;
      try {
        mem = await openQemuProcess({ qmp: ep.qmp, ...(ep.pid ? { pid: ep.pid } : {}), method });
      } catch (err) {
        rows.push({
          technique: `live-read (${method})`,
          class: 'live-read',
          implementation: 'qemu-process',
          read8Us: NaN,
          read4kUs: NaN,
          readsPerSec: NaN,
          localReadsPerSec: NaN,
          scanMBps: NaN,
          cpuMsPerMiB: NaN,
          note: `not measured: ${(err as Error).message}`,
        });
        continue;
      }
      try {
        rows.push(measuredRow(`live-read (${method})`, 'live-read', 'qemu-process', mem, addrs, local, sliceMs, limit, method === 'process_vm_readv' ? 'one system call per 1024 iovecs' : 'one pread per op'));
        if (method === 'process_vm_readv') rows.push(passBlockRow(mem, addrs, local, sliceMs, 'live-read (pass blocks, PhysReader.u64)', 'qemu-process'));
      } finally {
        await mem.close();
      }
    }
  } finally {
    await lease.release();
  }
  return rows;
}

/** The rows as a table for the bench runner's printTable/writeJson. */
export function liveBenchTable(rows: readonly BenchRow[]): BenchTable {
  return {
    name: 'memory-live',
    description: 'live memory-access techniques on a running guest (µs, reads/s, MB/s, CPU ms per MiB)',
    columns: ['technique', 'read8Us', 'read4kUs', 'readsPerSec', 'localReadsPerSec', 'scanMBps', 'cpuMsPerMiB', 'note'],
    rows: rows.map((r) => ({ ...r })),
  };
}
