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
import { addresses, type BenchRow, localAddresses, measuredRow, readvFigures, zeroCopyRow } from './memory-live.js';
import { passBlockRow } from './memory-pass-blocks.js';
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
          rows.push(
            zeroCopyRow(mem, addrs, localAddresses(addrs), sliceMs, Number.MAX_SAFE_INTEGER, readvFigures(mem, addrs, localAddresses(addrs), sliceMs), `${label} (zero-copy view, PhysReader.u64)`, c.class, c.factory, "a view of the domain's RAM through /proc/PID/fd"),
          );
        }
        rows.push(measuredRow(label, c.class, c.factory, mem, addrs, localAddresses(addrs), sliceMs, Number.MAX_SAFE_INTEGER, c.reason.split(':')[0]!));
        // Live read of anonymous RAM: also the walkers' path, in pass blocks, as the lab's live-read rows.
        if (!mem.mapped && mem.passBlockBytes) rows.push(passBlockRow(mem, addrs, localAddresses(addrs), sliceMs, `${label} (pass blocks, PhysReader.u64)`, c.factory));
      } finally {
        await opened.memory.close();
      }
    }
  }
  return rows;
}

/** Warm `pslist` (median ms) on one attached source: `runs` runs after `warmup`; `blocks: false` reads as asked, without pass blocks. */
async function warmPslistMs(source: string, runs: number, warmup: number, blocks = true): Promise<{ ms: number; rows: number; technique: string; cls: string }> {
  const kernel = await attachKernel(source);
  try {
    if (!blocks) (kernel.memory as { passBlockBytes?: number }).passBlockBytes = undefined;
    for (let i = 0; i < warmup; i++) runPlugin(pslist, kernel);
    const times: number[] = [];
    let rows = 0;
    for (let i = 0; i < runs; i++) {
      const r = runPlugin(pslist, kernel);
      times.push(r.elapsedMs);
      rows = r.rows.length;
    }
    return { ms: median(times), rows, technique: kernel.memory.technique.name, cls: kernel.memory.technique.class };
  } finally {
    await kernel.close();
  }
}

/**
 * Warm `pslist` on each libvirt domain against the lab guest `labSource`, interleaved in rounds so load
 * drifts hit both alike (issue 11's goal: a libvirt domain within 1.5× of the lab guest). The lab guest is
 * measured with its own best technique (live map) and forced to live read, so a domain with anonymous RAM
 * (live read is all it allows) is also compared technique for technique: what libvirt itself costs.
 */
export async function benchLibvirtPslist(labSource: string, domains: readonly string[], rounds = 3, runs = 100, warmup = 20): Promise<BenchTable> {
  const sep = labSource.includes('?') ? '&' : '?';
  const labs: Record<string, string> = { 'live-map': labSource, 'live-read': `${labSource}${sep}technique=live-read` };
  // The lab guest's live read without pass blocks too: what the blocks save, in the same run.
  const unblocked = `${labs['live-read']} (no pass blocks)`;
  const per = new Map<string, { ms: number[]; rows: number; technique: string; cls: string }>();
  const add = (key: string, r: Awaited<ReturnType<typeof warmPslistMs>>): void => {
    const e = per.get(key) ?? { ms: [], rows: r.rows, technique: r.technique, cls: r.cls };
    e.ms.push(r.ms);
    per.set(key, e);
  };
  for (let round = 0; round < rounds; round++) {
    for (const [, src] of Object.entries(labs)) add(src, await warmPslistMs(src, runs, warmup));
    add(unblocked, await warmPslistMs(labs['live-read']!, runs, warmup, false));
    for (const d of domains) {
      add(`libvirt:${d}`, await warmPslistMs(`libvirt:${d}`, runs, warmup));
      // A live-read domain without pass blocks as well: the figure before them.
      const e = per.get(`libvirt:${d}`);
      if (e?.cls === 'live-read') add(`libvirt:${d} (no pass blocks)`, await warmPslistMs(`libvirt:${d}`, runs, warmup, false));
    }
  }
  const labMs = median(per.get(labSource)!.ms);
  const rows: Record<string, unknown>[] = [];
  for (const [source, e] of per) {
    const ms = median(e.ms);
    const sameSource = source.endsWith('(no pass blocks)') ? unblocked : labs[e.cls];
    const same = sameSource !== undefined ? median(per.get(sameSource)!.ms) : NaN;
    const isLab = Object.values(labs).includes(source) || source === unblocked;
    rows.push({
      source,
      technique: e.technique,
      processes: e.rows,
      medianMs: +ms.toFixed(3),
      vsLab: +(ms / labMs).toFixed(2),
      vsLabSameTechnique: +(ms / same).toFixed(2),
      goal: isLab || source.endsWith('(no pass blocks)') ? '' : '≤ 1.5×',
      ok: isLab || source.endsWith('(no pass blocks)') ? '' : ms / labMs <= 1.5 ? 'yes' : ms / same <= 1.5 ? 'same technique only' : 'NO',
    });
  }
  return {
    name: 'libvirt-pslist',
    description: `warm pslist, median of ${runs} runs after ${warmup} warm-up runs, ${rounds} interleaved rounds: libvirt domains vs the lab guest (vsLab: against its live map; vsLabSameTechnique: against the lab guest read the domain's way; "no pass blocks": live read as asked, one read per access)`,
    columns: ['source', 'technique', 'processes', 'medianMs', 'vsLab', 'vsLabSameTechnique', 'goal', 'ok'],
    rows,
  };
}
