/**
 * maps: the memory mappings of each process, line for line as
 * /proc/<pid>/maps (VMAs from the maple tree on 6.1+, the vm_next list
 * before), with the vsyscall gate page appended as /proc does.
 */
import { definePlugin } from '../plugin.js';
import { PathResolver } from '../fs-path.js';
import { forEachVma, gateVma, mapsEntry } from '../mm.js';
import { pidFilter, readObject, snapshotProcesses } from '../tasks.js';
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

export default definePlugin<MapsRow>({
  name: 'maps',
  aliases: ['linux.proc.Maps', 'linux.proc'],
  version: '1.0.0',
  summary: 'Memory mappings of each process, as /proc/<pid>/maps',
  requires: {
    symbols: ['init_task'],
    fields: [['task_struct', 'mm'], ['vm_area_struct', 'vm_start'], ['vm_area_struct', 'vm_end'], ['vm_area_struct', 'vm_file']],
    anyOf: [[['mm_struct', 'mm_mt'], ['mm_struct', 'mmap']]],
  },
  options: { pid: { type: 'string', multiple: true } },
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
    const { leaders } = snapshotProcesses(k, anomalies);
    for (const t of leaders) {
      const pid = t.s32('pid');
      if (pids && !pids.has(pid)) continue;
      const mmVa = t.ptr('mm');
      if (mmVa === 0n) continue;
      const mm = readObject(k, 'mm_struct', mmVa, anomalies, 'task_struct.mm');
      if (!mm) continue;
      const comm = t.str('comm');
      for (const vma of forEachVma(k, mm, anomalies, budget)) {
        const e = mapsEntry(k, mm, vma, paths, anomalies);
        yield { pid, comm, start: e.start, end: e.end, perms: e.perms, offset: e.offset, dev: e.dev, inode: e.inode, path: e.path, vma: e.vma };
      }
      if (gateEntry) yield { pid, comm, ...gateEntry, vma: gateEntry.vma };
    }
  },
});
