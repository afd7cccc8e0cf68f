/**
 * memmap: for each VMA of a process, the runs of present pages and the
 * physical memory behind them (virtual start, physical address, size),
 * as Volatility's memmap / linux.proc.Maps --dump see a process. Pages not
 * present (never touched, swapped out) have no row. Runs merge pages that
 * are contiguous both virtually and physically. Bounded: page-table walk
 * limits per VMA and a row bound per run, cut with a 'truncated' anomaly.
 */
import { definePlugin } from '../plugin.js';
import { PathResolver } from '../fs-path.js';
import { forEachMapping, MAPPING_COLUMNS, mappingIdentity, mappingKey, VMA_CONTAINERS, type MappingRow } from '../mm.js';
import { PID_OPTION, pidFilter } from '../tasks.js';
import type { AddressSpace } from '../../arch/address-space.js';

export interface MemmapRow extends MappingRow {
  /** First virtual address of the run. */
  va: bigint;
  /** Guest-physical address of `va`. */
  pa: bigint;
  /** Bytes in the run. */
  size: number;
}

/** Rows (page runs) per run of the plugin: a hostile mm cannot make the output unbounded. */
export const MAX_MEMMAP_ROWS = 1 << 20;

export interface PageRun {
  readonly va: bigint;
  readonly pa: bigint;
  readonly size: number;
}

/**
 * The present pages of [start, end) in `space` as runs contiguous in both
 * virtual and physical memory. A huge page reaching outside the range is
 * clipped to it.
 */
export function* pageRuns(space: AddressSpace, start: bigint, end: bigint, limit = MAX_MEMMAP_ROWS): Generator<PageRun> {
  let run: { va: bigint; pa: bigint; size: bigint } | undefined;
  for (const m of space.mappings({ start, end, limit })) {
    let va = m.va;
    let pa = BigInt(m.pa);
    let vaEnd = m.va + BigInt(m.size);
    if (va < start) (pa += start - va), (va = start);
    if (vaEnd > end) vaEnd = end;
    if (vaEnd <= va) continue;
    const size = vaEnd - va;
    if (run && run.va + run.size === va && run.pa + run.size === pa) run.size += size;
    else {
      if (run) yield { va: run.va, pa: run.pa, size: Number(run.size) };
      run = { va, pa, size };
    }
  }
  if (run) yield { va: run.va, pa: run.pa, size: Number(run.size) };
}

export default definePlugin<MemmapRow>()({
  name: 'memmap',
  aliases: ['linux.memmap'],
  version: '1.0.0',
  summary: 'Virtual to physical page runs of each process mapping (present pages only)',
  requires: {
    symbols: ['init_task'],
    fields: [['task_struct', 'mm'], ['mm_struct', 'pgd'], ['vm_area_struct', 'vm_start'], ['vm_area_struct', 'vm_end']],
    anyOf: [VMA_CONTAINERS],
  },
  options: PID_OPTION,
  columns: [
    ...MAPPING_COLUMNS,
    { key: 'va', title: 'virtual', kind: 'hex' },
    { key: 'pa', title: 'physical', kind: 'hex' },
    { key: 'size', kind: 'hex' },
    { key: 'path', kind: 'str' },
  ],
  key: (r) => `${mappingKey(r)}:${r.va.toString(16)}`,
  *run(k, { options, anomalies }) {
    const paths = new PathResolver(k, anomalies);
    let rows = 0;
    for (const m of forEachMapping(k, anomalies, { pids: pidFilter(options.pid), paths })) {
      const space = m.space();
      if (!space) continue;
      const { pid, comm, entry: e } = m;
      const id = mappingIdentity(m);
      for (const r of pageRuns(space, e.start, e.end, MAX_MEMMAP_ROWS - rows + 1)) {
        if (rows++ >= MAX_MEMMAP_ROWS) {
          anomalies.add({ kind: 'truncated', where: 'memmap', address: r.va, detail: `more than ${MAX_MEMMAP_ROWS} page runs` });
          return;
        }
        yield { ...id, pid, comm, start: e.start, end: e.end, perms: e.perms, path: e.path, va: r.va, pa: r.pa, size: r.size };
      }
    }
  },
});
