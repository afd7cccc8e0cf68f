/**
 * elfs: ELF images mapped in each process: VMAs whose first bytes (read
 * through the process's page tables) are an ELF header. File-backed images
 * carry their path; an anonymous mapping holding an ELF header is a sign of
 * a reflectively loaded binary. Pages not present in memory are skipped.
 *
 * With --dump DIR the whole image is written: every mapping of the same file
 * that follows the header mapping (up to the file's next offset-0 mapping, a
 * new image), each at its file offset (vm_pgoff), in file-offset order; pages
 * not present in memory are zeros and counted in `missing`.
 */
import { definePlugin } from '../plugin.js';
import { DUMP_OPTION, dumpDirFrom, type ImagePiece } from '../dump.js';
import { PathResolver } from '../fs-path.js';
import { forEachMapping, MAPPING_COLUMNS, mappingIdentity, mappingKey, VM_READ, VMA_CONTAINERS, type Mapping, type MappingRow, type MapsEntry } from '../mm.js';
import { PID_OPTION, pidFilter } from '../tasks.js';
import { gva } from '../../core/address.js';

export interface ElfsRow extends MappingRow {
  /** e_type: 'EXEC', 'DYN', 'REL', 'CORE' or the number. */
  elfType: string;
  /** e_machine (62 = x86-64). */
  machine: number;
  /** 64 or 32. */
  bits: number;
  /** File the image was written to (with --dump DIR). */
  dumped?: string;
  /** Mappings written to the dump. */
  mappings?: number;
  /** Bytes of those mappings not present in memory (zeros in the dump). */
  missing?: number;
}

const ELF_TYPES: Record<number, string> = { 1: 'REL', 2: 'EXEC', 3: 'DYN', 4: 'CORE' };

/** Same backing file: same device and inode when known, else the same struct file. */
function sameFile(a: MapsEntry, b: MapsEntry): boolean {
  if (a.file === 0n || b.file === 0n) return false;
  if (a.inode !== 0 && b.inode !== 0) return a.inode === b.inode && a.dev === b.dev;
  return a.file === b.file;
}

/** The mappings making up the image whose header mapping is maps[i]. */
function imageMappings(maps: readonly Mapping[], i: number): Mapping[] {
  const head = maps[i]!;
  const out = [head];
  if (head.entry.file === 0n) return out;
  for (let j = i + 1; j < maps.length; j++) {
    const e = maps[j]!.entry;
    if (!sameFile(head.entry, e)) continue;
    if (e.offset === 0n) break; // the same file mapped again: another image
    out.push(maps[j]!);
  }
  return out;
}

/** A process's mappings at a time (the image of a header mapping spans the mappings after it). */
function* byProcess(mappings: Iterable<Mapping>): Generator<Mapping[]> {
  let group: Mapping[] = [];
  for (const m of mappings) {
    if (group.length && group[0]!.pid !== m.pid) yield group, (group = []);
    group.push(m);
  }
  if (group.length) yield group;
}

export default definePlugin<ElfsRow>()({
  name: 'elfs',
  aliases: ['linux.elfs', 'linux.elfs.Elfs'],
  version: '1.1.0',
  summary: 'ELF images mapped in each process (VMAs starting with an ELF header)',
  requires: {
    symbols: ['init_task'],
    fields: [['task_struct', 'mm'], ['mm_struct', 'pgd'], ['vm_area_struct', 'vm_start']],
    anyOf: [VMA_CONTAINERS],
  },
  options: { ...PID_OPTION, ...DUMP_OPTION },
  columns: [
    ...MAPPING_COLUMNS,
    { key: 'elfType', title: 'type', kind: 'str' },
    { key: 'bits', kind: 'int' },
    { key: 'path', kind: 'str' },
    { key: 'dumped', kind: 'str' },
    { key: 'mappings', kind: 'int' },
    { key: 'missing', kind: 'int' },
  ],
  key: mappingKey,
  *run(k, { options, anomalies }) {
    const paths = new PathResolver(k, anomalies);
    const head = new Uint8Array(20);
    const dump = dumpDirFrom(options);
    for (const maps of byProcess(forEachMapping(k, anomalies, { pids: pidFilter(options.pid), paths }))) {
      for (let i = 0; i < maps.length; i++) {
        const m = maps[i]!;
        const { pid, comm, entry: e } = m;
        if (!(e.flags & VM_READ)) continue;
        const space = m.space();
        if (!space) break;
        // Not-present pages are normal (never touched): no anomaly, just no header.
        if (space.readv([{ va: gva(e.start), len: head.length, dst: head }]).length) continue;
        if (head[0] !== 0x7f || head[1] !== 0x45 || head[2] !== 0x4c || head[3] !== 0x46) continue;
        const dv = new DataView(head.buffer);
        const type = dv.getUint16(16, true);
        const row: ElfsRow = {
          ...mappingIdentity(m),
          pid,
          comm,
          start: e.start,
          end: e.end,
          perms: e.perms,
          path: e.path,
          elfType: ELF_TYPES[type] ?? String(type),
          machine: dv.getUint16(18, true),
          bits: head[4] === 2 ? 64 : head[4] === 1 ? 32 : 0,
        };
        if (dump) {
          const image = imageMappings(maps, i);
          const base = e.offset; // 0 for a file's header mapping; an anonymous image starts at its own start
          const pieces: ImagePiece[] = image
            .filter((x) => x.entry.offset >= base)
            .map((x) => ({ space, start: x.entry.start, end: x.entry.end, fileOffset: x.entry.offset - base }));
          const w = dump.writeImage([pid, comm, e.start, e.path.split('/').pop() ?? 'anon', 'elf'], pieces);
          if (w.truncated) anomalies.add({ kind: 'truncated', where: 'elfs --dump', address: e.start, detail: `image cut at the dump size bound` });
          row.dumped = w.file;
          row.mappings = pieces.length;
          row.missing = w.unreadable;
        }
        yield row;
      }
    }
  },
});
