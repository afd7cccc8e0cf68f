/**
 * procdump: every VMA of a process written to its own file in --dump DIR
 * (names sanitized: pid, comm, start, end, perms, file name), each file as
 * long as its VMA with the pages not present in memory left as zeros (a
 * sparse file). One summary row per file: where it went, its size, pages
 * present and missing, and the SHA-256 of what was written. Files are cut
 * at MAX_DUMP_BYTES ('truncated' anomaly): VMA sizes are guest data.
 */
import { UsageError } from '../../core/errors.js';
import { definePlugin } from '../plugin.js';
import { DUMP_OPTION, dumpDirFrom, MAX_DUMP_BYTES } from '../dump.js';
import { PathResolver } from '../fs-path.js';
import { forEachMapping, MAPPING_COLUMNS, mappingIdentity, mappingKey, VMA_CONTAINERS, type MappingRow } from '../mm.js';
import { PID_OPTION, pidFilter } from '../tasks.js';
import type { AddressSpace } from '../../arch/address-space.js';
import { pageRuns } from './memmap.js';

export interface ProcdumpRow extends MappingRow {
  /** The file written. */
  file: string;
  /** Bytes in the file (the VMA's size, unless cut at the bound). */
  size: number;
  pagesPresent: number;
  pagesMissing: number;
  sha256: string;
}

const PAGE = 4096;
/** Bytes read from guest memory at a time. */
const CHUNK = 1 << 20;

/** The present pages of [start, start+size) as file pieces (offset from start), read a chunk at a time. */
function* presentPieces(space: AddressSpace, start: bigint, size: number, unread: { bytes: number }): Generator<{ offset: number; bytes: Uint8Array }> {
  for (const run of pageRuns(space, start, start + BigInt(size))) {
    for (let off = 0; off < run.size; off += CHUNK) {
      const len = Math.min(CHUNK, run.size - off);
      const op = { va: run.va + BigInt(off), len, dst: new Uint8Array(len) };
      // A page present at the walk may fail to read (outside the image): zeros, counted as missing.
      for (const f of space.readv([op])) unread.bytes += f.len;
      yield { offset: Number(run.va - start) + off, bytes: op.dst };
    }
  }
}

export default definePlugin<ProcdumpRow>()({
  name: 'procdump',
  aliases: ['linux.proc.Maps.dump'],
  version: '1.0.0',
  summary: 'Writes every mapping of a process to a file in --dump DIR (missing pages as zeros), with sizes and SHA-256',
  requires: {
    symbols: ['init_task'],
    fields: [['task_struct', 'mm'], ['mm_struct', 'pgd'], ['vm_area_struct', 'vm_start'], ['vm_area_struct', 'vm_end']],
    anyOf: [VMA_CONTAINERS],
  },
  options: { ...PID_OPTION, dump: { ...DUMP_OPTION.dump, required: true } },
  columns: [
    ...MAPPING_COLUMNS,
    { key: 'path', kind: 'str' },
    { key: 'file', kind: 'str' },
    { key: 'size', kind: 'int' },
    { key: 'pagesPresent', title: 'present', kind: 'int' },
    { key: 'pagesMissing', title: 'missing', kind: 'int' },
    { key: 'sha256', kind: 'str' },
  ],
  key: mappingKey,
  *run(k, { options, anomalies }) {
    const dump = dumpDirFrom(options);
    if (!dump) throw new UsageError('procdump needs --dump DIR (the folder the mapping files go to)', { hint: 'vmsight procdump <source> --pid PID --dump DIR' });
    const paths = new PathResolver(k, anomalies);
    for (const m of forEachMapping(k, anomalies, { pids: pidFilter(options.pid), paths })) {
      const space = m.space();
      if (!space) continue;
      const { pid, comm, entry: e } = m;
      const want = e.end > e.start ? e.end - e.start : 0n;
      const size = Number(want > BigInt(MAX_DUMP_BYTES) ? BigInt(MAX_DUMP_BYTES) + 1n : want);
      const unread = { bytes: 0 };
      const name = e.path ? (e.path.split('/').pop() ?? '') : 'anon';
      const w = dump.writeSparse([pid, comm, e.start, e.end, e.perms, name || 'anon', 'vma'], size, presentPieces(space, e.start, size, unread));
      if (w.truncated) anomalies.add({ kind: 'truncated', where: 'procdump', address: e.start, detail: `mapping of ${want} bytes cut at ${MAX_DUMP_BYTES}` });
      const present = Math.floor((w.written - unread.bytes) / PAGE);
      yield {
        ...mappingIdentity(m),
        pid,
        comm,
        start: e.start,
        end: e.end,
        perms: e.perms,
        path: e.path,
        file: w.file,
        size: w.size,
        pagesPresent: present,
        pagesMissing: Math.ceil(w.size / PAGE) - present,
        sha256: w.sha256,
      };
    }
  },
});
