/**
 * Memory-suite rows for libvirt domains (`VMSIGHT_BENCH_LIBVIRT=dom1,dom2 npm run bench -- memory lab:X`):
 * every technique that fits each domain (live read of anonymous RAM, live map of memfd or file RAM) with
 * the same figures as the lab guest's rows, measured in the same run; and warm pslist on each domain
 * against the lab guest (`libvirt-pslist`).
 */
import { openLibvirt } from '../memory/sources/libvirt.js';
import { DEFAULT_LIBVIRT_URI } from '../qemu/libvirt.js';
import { attachKernel } from '../linux/attach.js';
import { runPlugin } from '../linux/plugin.js';
import pslist from '../linux/plugins/pslist.js';
import { addresses, type BenchRow, localAddresses, measuredRow, readvFigures, round, viewFigures } from './memory-live.js';
import { median, type BenchTable } from './report.js';

export async function benchLibvirtRows(domains: readonly string[], sliceMs = 300): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  for (const domain of domains) {
    const t = { spec: `libvirt:${domain}`, domain, uri: DEFAULT_LIBVIRT_URI, params: {} };
    const first = await openLibvirt(t);
    const fitting = first.candidates.filter((c) => c.ok);
    await first.memory.close();
    for (const c of fitting) {
      const opened = await openLibvirt(t, { technique: c.factory });
      try {
        const mem = opened.memory;
        const addrs = addresses(mem.ranges(), 1 << 16);
        const label = `${c.class} libvirt:${domain}`;
        if (mem.mapped) {
          // A mapped memfd or file: the zero-copy view row, measured as the lab's shm row is.
          const v = viewFigures(mem, addrs, localAddresses(addrs), sliceMs, Number.MAX_SAFE_INTEGER);
          const r = readvFigures(mem, addrs, localAddresses(addrs), sliceMs);
          rows.push({
            technique: `${label} (zero-copy view, PhysReader.u64)`,
            class: c.class,
            implementation: c.factory,
            read8Us: round(v.read8Us),
            read4kUs: round(r.read4kUs),
            readsPerSec: round(v.readsPerSec),
            localReadsPerSec: round(v.localReadsPerSec),
            scanMBps: round(v.scanMBps),
            cpuMsPerMiB: round(v.cpuMsPerMiB),
            note: `zero-copy view of the domain's RAM through /proc/PID/fd; 4 KiB read = readv copy; scan = Buffer.indexOf over the views (first touch: ${round(v.coldScanMBps)} MB/s)`,
          });
        }
        rows.push(measuredRow(label, c.class, c.factory, mem, addrs, localAddresses(addrs), sliceMs, Number.MAX_SAFE_INTEGER, c.reason.split(':')[0]!));
      } finally {
        await opened.memory.close();
      }
    }
  }
  return rows;
}

/** Warm `pslist` (median ms) on one attached source: `runs` runs after `warmup`. */
async function warmPslistMs(source: string, runs: number, warmup: number): Promise<{ ms: number; rows: number; technique: string }> {
  const kernel = await attachKernel(source);
  try {
    for (let i = 0; i < warmup; i++) runPlugin(pslist, kernel);
    const times: number[] = [];
    let rows = 0;
    for (let i = 0; i < runs; i++) {
      const r = runPlugin(pslist, kernel);
      times.push(r.elapsedMs);
      rows = r.rows.length;
    }
    return { ms: median(times), rows, technique: kernel.memory.technique.name };
  } finally {
    await kernel.close();
  }
}

/**
 * Warm `pslist` on each libvirt domain against the lab guest `labSource`, interleaved in rounds so load
 * drifts hit both alike (issue 11's goal: a libvirt domain within 1.5× of the lab guest).
 */
export async function benchLibvirtPslist(labSource: string, domains: readonly string[], rounds = 3, runs = 100, warmup = 20): Promise<BenchTable> {
  const lab: number[] = [];
  const per = new Map<string, { ms: number[]; rows: number; technique: string }>();
  let labRows = 0;
  let labTechnique = '';
  for (let round = 0; round < rounds; round++) {
    const l = await warmPslistMs(labSource, runs, warmup);
    lab.push(l.ms);
    labRows = l.rows;
    labTechnique = l.technique;
    for (const d of domains) {
      const r = await warmPslistMs(`libvirt:${d}`, runs, warmup);
      const e = per.get(d) ?? { ms: [], rows: r.rows, technique: r.technique };
      e.ms.push(r.ms);
      per.set(d, e);
    }
  }
  const labMs = median(lab);
  const rows: Record<string, unknown>[] = [{ source: labSource, technique: labTechnique, processes: labRows, medianMs: +labMs.toFixed(3), vsLab: 1, goal: '', ok: '' }];
  for (const [d, e] of per) {
    const ms = median(e.ms);
    const ratio = ms / labMs;
    rows.push({ source: `libvirt:${d}`, technique: e.technique, processes: e.rows, medianMs: +ms.toFixed(3), vsLab: +ratio.toFixed(2), goal: '≤ 1.5×', ok: ratio <= 1.5 ? 'yes' : 'NO' });
  }
  return {
    name: 'libvirt-pslist',
    description: `warm pslist, median of ${runs} runs after ${warmup} warm-up runs, ${rounds} interleaved rounds: libvirt domains vs the lab guest`,
    columns: ['source', 'technique', 'processes', 'medianMs', 'vsLab', 'goal', 'ok'],
    rows,
  };
}
