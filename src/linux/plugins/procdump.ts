/**
 * procdump: every VMA of a process written to its own file in --dump DIR
 * (names sanitized: pid, comm, start, end, perms, file name), each file as
 * long as its VMA with the pages not present in memory left as zeros (a
 * sparse file). One summary row per file: where it went, its size, pages
 * present and missing, the number of holes, and the SHA-256 of what was
 * written. A manifest per process (PID.COMM.procdump.json) lists every file
 * with its VMA and its holes (offset, length), so a zero page in a file can
 * be told apart from a page that was not in memory. Files are cut
 * at MAX_DUMP_BYTES ('truncated' anomaly): VMA sizes are guest data. The whole
 * run stops once --max-total bytes (default MAX_PROCDUMP_TOTAL_BYTES) were written: without --pid every
 * process's mappings are dumped, and pages shared by many processes (a hostile
 * guest can map the same pages thousands of times) would otherwise fill the disk.
 */
import { UsageError } from '../../core/errors.js';
import { definePlugin } from '../plugin.js';
import { DUMP_OPTION, dumpDirFrom, MAX_DUMP_BYTES, type DumpDir } from '../dump.js';
import { PathResolver } from '../fs-path.js';
import { forEachMapping, MAPPING_COLUMNS, mappingIdentity, mappingKey, VMA_CONTAINERS, type MappingRow } from '../mm.js';
import { PID_OPTION, pidFilter } from '../tasks.js';
import type { AddressSpace } from '../../arch/address-space.js';
import { pageRuns } from './memmap.js';
import { gva } from '../../core/address.js';

export interface ProcdumpRow extends MappingRow {
  /** The file written. */
  file: string;
  /** Bytes in the file (the VMA's size, unless cut at the bound). */
  size: number;
  pagesPresent: number;
  pagesMissing: number;
  /** Ranges of the file not backed by present pages (listed in the manifest). */
  holes: number;
  sha256: string;
}

/** Bytes written over one run, all files together, before the run stops (a 'truncated' anomaly); --max-total. */
export const MAX_PROCDUMP_TOTAL_BYTES = 4 * 1024 ** 3;

const SIZE_UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/** `--max-total` as bytes: a number with an optional K, M or G (powers of 1024). */
export function parseTotalBound(text: string | undefined): number {
  if (text === undefined) return MAX_PROCDUMP_TOTAL_BYTES;
  const m = /^(\d+)([kmg]?)i?b?$/i.exec(text.trim());
  const bytes = m ? Number(m[1]) * SIZE_UNITS[m[2]!.toLowerCase()]! : NaN;
  if (!Number.isSafeInteger(bytes) || bytes <= 0) throw new UsageError(`--max-total ${JSON.stringify(text)}: expected a size such as 512M or 8G`);
  return bytes;
}

/** Holes listed per file in the manifest (the count in the row is exact). */
export const MAX_LISTED_HOLES = 4096;

interface ManifestEntry {
  start: string;
  end: string;
  perms: string;
  path: string;
  file: string;
  size: number;
  sha256: string;
  pagesPresent: number;
  pagesMissing: number;
  /** [offset, length] in the file, hex. */
  holes: [string, string][];
  holesListed: boolean;
}

/** Counts and lists (bounded) the ranges of [0, size) that no piece covered. */
class HoleList {
  count = 0;
  readonly listed: [string, string][] = [];
  private at = 0;

  covered(offset: number, len: number): void {
    if (offset > this.at) this.add(this.at, offset - this.at);
    this.at = Math.max(this.at, offset + len);
  }

  end(size: number): void {
    if (size > this.at) this.add(this.at, size - this.at);
  }

  private add(offset: number, len: number): void {
    this.count++;
    if (this.listed.length < MAX_LISTED_HOLES) this.listed.push([`0x${offset.toString(16)}`, `0x${len.toString(16)}`]);
  }
}

const PAGE = 4096;
/** Bytes read from guest memory at a time. */
const CHUNK = 1 << 20;

/** The present pages of [start, start+size) as file pieces (offset from start), read a chunk at a time. */
function* presentPieces(space: AddressSpace, start: bigint, size: number, unread: { bytes: number }, holes: HoleList): Generator<{ offset: number; bytes: Uint8Array }> {
  for (const run of pageRuns(space, start, start + BigInt(size))) {
    for (let off = 0; off < run.size; off += CHUNK) {
      const len = Math.min(CHUNK, run.size - off);
      const op = { va: gva(run.va + BigInt(off)), len, dst: new Uint8Array(len) };
      const at = Number(run.va - start) + off;
      // A page present at the walk may fail to read (outside the image): zeros, counted as missing.
      const failures = space.readv([op]);
      let covered = at;
      for (const f of failures) {
        unread.bytes += f.len;
        const fo = at + Number(f.va - op.va);
        holes.covered(covered, fo - covered);
        covered = fo + f.len;
      }
      holes.covered(covered, at + len - covered);
      yield { offset: at, bytes: op.dst };
    }
  }
}

/** Writes the manifest of one process's files. */
function writeManifest(dump: DumpDir, pid: number, comm: string, entries: ManifestEntry[]): void {
  dump.write([pid, comm, 'procdump', 'json'], Buffer.from(`${JSON.stringify({ pid, comm, files: entries }, null, 1)}\n`));
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
  options: {
    ...PID_OPTION,
    dump: { ...DUMP_OPTION.dump, required: true },
    'max-total': { type: 'string', valueName: 'SIZE', description: 'stop once this much was written over all files (K, M, G)', byDefault: '4G' },
  },
  columns: [
    ...MAPPING_COLUMNS,
    { key: 'path', kind: 'str' },
    { key: 'file', kind: 'str' },
    { key: 'size', kind: 'int' },
    { key: 'pagesPresent', title: 'present', kind: 'int' },
    { key: 'pagesMissing', title: 'missing', kind: 'int' },
    { key: 'holes', kind: 'int' },
    { key: 'sha256', kind: 'str' },
  ],
  key: mappingKey,
  *run(k, { options, anomalies }) {
    const dump = dumpDirFrom(options);
    if (!dump) throw new UsageError('procdump needs --dump DIR (the folder the mapping files go to)', { hint: 'vmsight procdump <source> --pid PID --dump DIR' });
    const paths = new PathResolver(k, anomalies);
    let manifest: { pid: number; comm: string; entries: ManifestEntry[] } | undefined;
    const bound = parseTotalBound(options['max-total']);
    let total = 0;
    for (const m of forEachMapping(k, anomalies, { pids: pidFilter(options.pid), paths })) {
      const space = m.space();
      if (!space) continue;
      if (total >= bound) {
        anomalies.add({ kind: 'truncated', where: 'procdump', address: m.entry.start, detail: `stopped before a mapping of pid ${m.pid}: ${total} bytes written in all, --max-total ${bound}; name the processes with --pid or raise --max-total` });
        break;
      }
      const { pid, comm, entry: e } = m;
      if (manifest && manifest.pid !== pid) writeManifest(dump, manifest.pid, manifest.comm, manifest.entries);
      if (!manifest || manifest.pid !== pid) manifest = { pid, comm, entries: [] };
      const holes = new HoleList();
      const want = e.end > e.start ? e.end - e.start : 0n;
      const size = Number(want > BigInt(MAX_DUMP_BYTES) ? BigInt(MAX_DUMP_BYTES) + 1n : want);
      const unread = { bytes: 0 };
      const name = e.path ? (e.path.split('/').pop() ?? '') : 'anon';
      const w = dump.writeSparse([pid, comm, e.start, e.end, e.perms, name || 'anon', 'vma'], size, presentPieces(space, e.start, size, unread, holes));
      holes.end(w.size);
      total += w.written;
      if (w.truncated) anomalies.add({ kind: 'truncated', where: 'procdump', address: e.start, detail: `mapping of ${want} bytes cut at ${MAX_DUMP_BYTES}` });
      const present = Math.floor((w.written - unread.bytes) / PAGE);
      const missing = Math.ceil(w.size / PAGE) - present;
      manifest.entries.push({
        start: `0x${e.start.toString(16)}`,
        end: `0x${e.end.toString(16)}`,
        perms: e.perms,
        path: e.path,
        file: w.file,
        size: w.size,
        sha256: w.sha256,
        pagesPresent: present,
        pagesMissing: missing,
        holes: holes.listed,
        holesListed: holes.listed.length === holes.count,
      });
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
        pagesMissing: missing,
        holes: holes.count,
        sha256: w.sha256,
      };
    }
    if (manifest) writeManifest(dump, manifest.pid, manifest.comm, manifest.entries);
  },
});
