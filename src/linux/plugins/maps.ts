/**
 * maps: the memory mappings of each process, line for line as
 * /proc/<pid>/maps (VMAs from the maple tree on 6.1+, the vm_next list
 * before), with the vsyscall gate page appended as /proc does.
 */
import { definePlugin } from '../plugin.js';
import { PathResolver } from '../fs-path.js';
import { forEachProcessMm, forEachVma, gateVma, mapsEntry, VMA_CONTAINERS } from '../mm.js';
import { PID_OPTION, pidFilter } from '../tasks.js';
import { WalkBudget } from '../walk/common.js';

export interface MapsRow {
  pid: number;
  comm: string;
  start: bigint;
  end: bigint;
  perms: string;
  offset: bigint;
  dev: string;
  inode: number;
  path: string;
  vma: bigint;
}

export default definePlugin<MapsRow>()({
  name: 'maps',
  aliases: ['linux.proc.Maps', 'linux.proc'],
  version: '1.0.0',
  summary: 'Memory mappings of each process, as /proc/<pid>/maps',
  requires: {
    symbols: ['init_task'],
    fields: [['task_struct', 'mm'], ['vm_area_struct', 'vm_start'], ['vm_area_struct', 'vm_end'], ['vm_area_struct', 'vm_file']],
    anyOf: [VMA_CONTAINERS],
  },
  options: PID_OPTION,
  columns: [
    { key: 'pid', kind: 'int' },
    { key: 'comm', kind: 'str' },
    { key: 'start', kind: 'hex' },
    { key: 'end', kind: 'hex' },
    { key: 'perms', kind: 'str' },
    { key: 'offset', kind: 'hex' },
    { key: 'dev', kind: 'str' },
    { key: 'inode', kind: 'int' },
    { key: 'path', kind: 'str' },
  ],
  key: (r) => `${r.pid}:${r.start.toString(16)}`,
  *run(k, { options, anomalies }) {
    const budget = new WalkBudget(); // one node budget for every walk of this run
    const pids = pidFilter(options.pid);
    const paths = new PathResolver(k, anomalies);
    const gate = gateVma(k, anomalies);
    const gateEntry = gate ? mapsEntry(k, undefined, gate, paths, anomalies) : undefined;
    for (const { pid, comm, mm } of forEachProcessMm(k, anomalies, pids)) {
      for (const vma of forEachVma(k, mm, anomalies, budget)) {
        const e = mapsEntry(k, mm, vma, paths, anomalies);
        yield { pid, comm, start: e.start, end: e.end, perms: e.perms, offset: e.offset, dev: e.dev, inode: e.inode, path: e.path, vma: e.vma };
      }
      if (gateEntry) yield { pid, comm, ...gateEntry, vma: gateEntry.vma };
    }
  },
});
