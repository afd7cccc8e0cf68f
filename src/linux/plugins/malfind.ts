/**
 * malfind: memory regions that look injected: mappings that are writable
 * and executable at once, or executable without a backing file (other than
 * the kernel's own [vdso]/[vsyscall]). The first bytes are shown when present.
 */
import { definePlugin } from '../plugin.js';
import { DUMP_OPTION, dumpDirFrom } from '../dump.js';
import { PathResolver } from '../fs-path.js';
import { forEachMapping, MAPPING_COLUMNS, mappingIdentity, mappingKey, VM_EXEC, VM_WRITE, VMA_CONTAINERS, type MappingRow } from '../mm.js';
import { PID_OPTION, pidFilter } from '../tasks.js';
import { gva } from '../../core/address.js';

export interface MalfindRow extends MappingRow {
  reason: string;
  /** First bytes of the region (empty when not present in memory). */
  head: Uint8Array;
  /** File the region was written to (with --dump DIR). */
  dumped?: string;
}

const KERNEL_PROVIDED = new Set(['[vdso]', '[vsyscall]', '[vvar]', '[uprobes]']);
const HEAD_BYTES = 64;

export default definePlugin<MalfindRow>()({
  name: 'malfind',
  aliases: ['linux.malfind', 'linux.malfind.Malfind'],
  version: '1.0.0',
  summary: 'Suspicious mappings: writable+executable, or executable without a file',
  requires: {
    symbols: ['init_task'],
    fields: [['task_struct', 'mm'], ['mm_struct', 'pgd'], ['vm_area_struct', 'vm_file']],
    anyOf: [VMA_CONTAINERS],
  },
  options: { ...PID_OPTION, ...DUMP_OPTION },
  columns: [
    ...MAPPING_COLUMNS,
    { key: 'reason', kind: 'str' },
    { key: 'path', kind: 'str' },
    { key: 'head', kind: 'bytes' },
    { key: 'dumped', kind: 'str' },
  ],
  key: mappingKey,
  *run(k, { options, anomalies }) {
    const paths = new PathResolver(k, anomalies);
    const dump = dumpDirFrom(options);
    for (const m of forEachMapping(k, anomalies, { pids: pidFilter(options.pid), paths })) {
      const { pid, comm, entry: e } = m;
      const wx = (e.flags & VM_WRITE) !== 0n && (e.flags & VM_EXEC) !== 0n;
      const anonX = (e.flags & VM_EXEC) !== 0n && e.file === 0n && !KERNEL_PROVIDED.has(e.path);
      if (!wx && !anonX) continue;
      const space = m.space();
      let head = new Uint8Array(0);
      if (space) {
        const buf = new Uint8Array(HEAD_BYTES);
        if (space.readv([{ va: gva(e.start), len: HEAD_BYTES, dst: buf }]).length === 0) head = buf;
      }
      const reason = wx && anonX ? 'writable+executable, no file' : wx ? 'writable+executable' : 'executable, no file';
      const row: MalfindRow = { ...mappingIdentity(m), pid, comm, start: e.start, end: e.end, perms: e.perms, path: e.path, reason, head };
      if (dump && space) row.dumped = dump.writeRegion([pid, comm, e.start, 'malfind', 'dmp'], space, e.start, e.end).file;
      yield row;
    }
  },
});
