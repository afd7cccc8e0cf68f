/**
 * elfs: ELF images mapped in each process: VMAs whose first bytes (read
 * through the process's page tables) are an ELF header. File-backed images
 * carry their path; an anonymous mapping holding an ELF header is a sign of
 * a reflectively loaded binary. Pages not present in memory are skipped.
 */
import { definePlugin } from '../plugin.js';
import { DUMP_OPTION, dumpDirFrom } from '../dump.js';
import { PathResolver } from '../fs-path.js';
import { forEachProcessMm, forEachVma, mapsEntry, VM_READ, VMA_CONTAINERS } from '../mm.js';
import { PID_OPTION, pidFilter } from '../tasks.js';
import { processSpace } from '../user-memory.js';
import { WalkBudget } from '../walk/common.js';

export interface ElfsRow {
  pid: number;
  comm: string;
  start: bigint;
  end: bigint;
  perms: string;
  path: string;
  /** e_type: 'EXEC', 'DYN', 'REL', 'CORE' or the number. */
  elfType: string;
  /** e_machine (62 = x86-64). */
  machine: number;
  /** 64 or 32. */
  bits: number;
  /** File the mapping was written to (with --dump DIR). */
  dumped?: string;
}

const ELF_TYPES: Record<number, string> = { 1: 'REL', 2: 'EXEC', 3: 'DYN', 4: 'CORE' };

export default definePlugin<ElfsRow>()({
  name: 'elfs',
  aliases: ['linux.elfs', 'linux.elfs.Elfs'],
  version: '1.0.0',
  summary: 'ELF images mapped in each process (VMAs starting with an ELF header)',
  requires: {
    symbols: ['init_task'],
    fields: [['task_struct', 'mm'], ['mm_struct', 'pgd'], ['vm_area_struct', 'vm_start']],
    anyOf: [VMA_CONTAINERS],
  },
  options: { ...PID_OPTION, ...DUMP_OPTION },
  columns: [
    { key: 'pid', kind: 'int' },
    { key: 'comm', kind: 'str' },
    { key: 'start', kind: 'hex' },
    { key: 'end', kind: 'hex' },
    { key: 'perms', kind: 'str' },
    { key: 'elfType', title: 'type', kind: 'str' },
    { key: 'bits', kind: 'int' },
    { key: 'path', kind: 'str' },
    { key: 'dumped', kind: 'str' },
  ],
  key: (r) => `${r.pid}:${r.start.toString(16)}`,
  *run(k, { options, anomalies }) {
    const budget = new WalkBudget(); // one node budget for every walk of this run
    const pids = pidFilter(options.pid);
    const paths = new PathResolver(k, anomalies);
    const head = new Uint8Array(20);
    const dump = dumpDirFrom(options);
    for (const { pid, comm, mm } of forEachProcessMm(k, anomalies, pids)) {
      const space = processSpace(k, mm, anomalies);
      if (!space) continue;
      for (const vma of forEachVma(k, mm, anomalies, budget)) {
        const start = vma.u64('vm_start');
        const e = mapsEntry(k, mm, vma, paths, anomalies);
        if (!(e.flags & VM_READ)) continue;
        // Not-present pages are normal (never touched): no anomaly, just no header.
        if (space.readv([{ va: start, len: head.length, dst: head }]).length) continue;
        if (head[0] !== 0x7f || head[1] !== 0x45 || head[2] !== 0x4c || head[3] !== 0x46) continue;
        const dv = new DataView(head.buffer);
        const type = dv.getUint16(16, true);
        const row: ElfsRow = {
          pid,
          comm,
          start,
          end: e.end,
          perms: e.perms,
          path: e.path,
          elfType: ELF_TYPES[type] ?? String(type),
          machine: dv.getUint16(18, true),
          bits: head[4] === 2 ? 64 : head[4] === 1 ? 32 : 0,
        };
        if (dump) row.dumped = dump.writeRegion([pid, comm, start, e.path.split('/').pop() ?? 'anon', 'elf'], space, start, e.end).file;
        yield row;
      }
    }
  },
});
