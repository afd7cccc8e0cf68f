/**
 * maps: the memory mappings of each process, line for line as
 * /proc/<pid>/maps (VMAs from the maple tree on 6.1+, the vm_next list
 * before), with the vsyscall gate page appended as /proc does.
 */
import { definePlugin } from '../plugin.js';
import { PathResolver } from '../fs-path.js';
import { forEachMapping, gateVma, MAPPING_COLUMNS, mappingIdentity, mappingKey, mapsEntry, VMA_CONTAINERS, type MappingRow } from '../mm.js';
import { PID_OPTION, pidFilter } from '../tasks.js';

export interface MapsRow extends MappingRow {
  offset: bigint;
  dev: string;
  inode: number;
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
    ...MAPPING_COLUMNS,
    { key: 'offset', kind: 'hex' },
    { key: 'dev', kind: 'str' },
    { key: 'inode', kind: 'int' },
    { key: 'path', kind: 'str' },
  ],
  key: mappingKey,
  *run(k, { options, anomalies }) {
    const paths = new PathResolver(k, anomalies);
    const gate = gateVma(k, anomalies);
    const gateEntry = gate ? mapsEntry(k, undefined, gate, paths, anomalies) : undefined;
    let last: Pick<MapsRow, 'pid' | 'comm' | 'task' | 'startTime'> | undefined;
    const gateRow = (p: NonNullable<typeof last>): MapsRow => ({ ...p, ...gateEntry!, vma: gateEntry!.vma });
    for (const m of forEachMapping(k, anomalies, { pids: pidFilter(options.pid), paths })) {
      const { pid, comm, entry: e } = m;
      const id = mappingIdentity(m);
      // The gate page closes each process's list, as /proc appends it after the last VMA.
      if (gateEntry && last && last.pid !== pid) yield gateRow(last);
      last = { ...id, pid, comm };
      yield { ...id, pid, comm, start: e.start, end: e.end, perms: e.perms, offset: e.offset, dev: e.dev, inode: e.inode, path: e.path, vma: e.vma };
    }
    if (gateEntry && last) yield gateRow(last);
  },
});
