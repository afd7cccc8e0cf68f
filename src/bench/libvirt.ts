/**
 * Memory-suite rows for libvirt domains (`VMSIGHT_BENCH_LIBVIRT=dom1,dom2 npm run bench -- memory lab:X`):
 * every technique that fits each domain (live read of anonymous RAM, live map of memfd or file RAM) with
 * the same figures as the lab guest's rows, measured in the same run.
 */
import { openLibvirt } from '../memory/sources/libvirt.js';
import { DEFAULT_LIBVIRT_URI } from '../qemu/libvirt.js';
import { addresses, type BenchRow, localAddresses, measuredRow, readvFigures, round, viewFigures } from './memory-live.js';

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
