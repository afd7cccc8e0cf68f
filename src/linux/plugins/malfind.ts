/**
 * malfind: memory regions that look injected: mappings that are writable
 * and executable at once, or executable without a backing file (other than
 * the kernel's own [vdso]/[vsyscall]). The first bytes are shown when present, as a hexdump and as x86-64
 * instructions (iced-x86, loaded with the first row that has bytes): the table shows the instructions
 * joined with "; ", JSON gives the hexdump lines and each instruction (address, bytes, text).
 */
import { disassemble, hexdumpLines } from '../../arch/x86-64/disasm.js';
import { absent, definePlugin, type Absent } from '../plugin.js';
import { DUMP_OPTION, dumpDirFrom } from '../dump.js';
import { PathResolver } from '../fs-path.js';
import { forEachMapping, MAPPING_COLUMNS, mappingIdentity, mappingKey, VM_EXEC, VM_WRITE, VMA_CONTAINERS, type MappingRow } from '../mm.js';
import { PID_OPTION, pidFilter } from '../tasks.js';
import { gva } from '../../core/address.js';

export interface MalfindRow extends MappingRow {
  reason: string;
  /** First bytes of the region (empty when not present in memory). */
  head: Uint8Array;
  /** The first instructions, joined with "; " (absent when no bytes, or no disassembler). */
  disasm: string | Absent;
  /** JSON only: `head` as hexdump lines, and as instructions. */
  hexdump: string[];
  instructions: { address: string; bytes: string; text: string }[];
  /** File the region was written to (with --dump DIR). */
  dumped?: string;
}

/** What the table shows of the disassembly: enough to recognise a shellcode prologue. */
const TABLE_INSTRUCTIONS = 8;

/** The disassembly columns of a region's first bytes. */
function decodeHead(head: Uint8Array, start: bigint): Pick<MalfindRow, 'disasm' | 'hexdump' | 'instructions'> {
  if (head.length === 0) return { disasm: absent('unreadable', 'the first page is not present'), hexdump: [], instructions: [] };
  const hexdump = hexdumpLines(head, start);
  let decoded;
  try {
    decoded = disassemble(head, start, HEAD_BYTES);
  } catch (e) {
    return { disasm: absent('not-available', (e as Error).message), hexdump, instructions: [] };
  }
  const instructions = decoded.map((i) => ({ address: `0x${i.address.toString(16)}`, bytes: Buffer.from(i.bytes).toString('hex'), text: i.text }));
  return { disasm: decoded.slice(0, TABLE_INSTRUCTIONS).map((i) => i.text).join('; '), hexdump, instructions };
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
    { key: 'disasm', kind: 'str' },
    { key: 'hexdump', kind: 'str', jsonOnly: true },
    { key: 'instructions', kind: 'str', jsonOnly: true },
    { key: 'dumped', kind: 'str' },
  ],
  key: mappingKey,
  *run(k, { options, anomalies }) {
    const paths = new PathResolver(k, anomalies);
    const dump = dumpDirFrom(options);
    // Writable+executable, or executable without a file: only those VMAs get a maps entry (path, identity).
    const where = (flags: bigint, file: bigint) => (flags & VM_EXEC) !== 0n && ((flags & VM_WRITE) !== 0n || file === 0n);
    for (const m of forEachMapping(k, anomalies, { pids: pidFilter(options.pid), paths, where })) {
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
      const row: MalfindRow = { ...mappingIdentity(m), pid, comm, start: e.start, end: e.end, perms: e.perms, path: e.path, reason, head, ...decodeHead(head, e.start) };
      if (dump && space) row.dumped = dump.writeRegion([pid, comm, e.start, 'malfind', 'dmp'], space, e.start, e.end).file;
      yield row;
    }
  },
});
