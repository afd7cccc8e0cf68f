/**
 * The memory-access suite: every technique of the taxonomy against one lab
 * guest (or a QMP socket), in the same run so ratios between them hold even
 * on a noisy machine.
 */
import { findGuest } from '../lab/index.js';
import { benchLiveSources, liveBenchTable } from './memory-live.js';
import { benchSnapshotSources, snapshotBenchTable } from './memory-snapshot.js';
import type { BenchTable } from './report.js';

export async function benchMemory(source: string): Promise<BenchTable[]> {
  const rows = await benchLiveSources(source);
  // VMSIGHT_BENCH_LIBVIRT=dom1,dom2: rows for libvirt domains too, in the same run (bench/libvirt.ts).
  const domains = (process.env['VMSIGHT_BENCH_LIBVIRT'] ?? '').split(',').filter(Boolean);
  const libvirt = domains.length ? await import('./libvirt.js') : undefined;
  if (libvirt) rows.push(...(await libvirt.benchLibvirtRows(domains)));
  const live = liveBenchTable(rows);
  const extra = libvirt ? [await libvirt.benchLibvirtPslist(source, domains)] : [];
  const name = source.startsWith('lab:') ? source.slice(4) : source;
  const guest = findGuest(name);
  const qmp = guest ? guest.qmpSocket : source.startsWith('qmp:') ? source.slice(4) : undefined;
  if (!qmp) return [live, ...extra];
  const snapshots = snapshotBenchTable(
    await benchSnapshotSources({ qmp, ...(guest?.gdbPort ? { gdb: `127.0.0.1:${guest.gdbPort}` } : {}) }),
  );
  return [live, ...extra, snapshots];
}
