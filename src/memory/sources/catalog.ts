/**
 * What every technique is, and what a target must name for it to apply, known without loading it. Each
 * file of sources/ builds its factory from its entry here; memory/open.ts lists the entries and loads a
 * technique's module only when the target names what it needs. A cold `pslist` of a dump used to load every
 * technique (the QMP client, libvirt, the worker bridge, the kdump codecs, 27 modules and 7 of Node's own)
 * before reading a byte. A technique's probe says the same as `needs` when the target lacks what it needs
 * (test/memory/catalog.test.ts holds them to it).
 */
import type { SourceTarget } from '../source-factory.js';
import type { TechniqueClass } from '../types.js';

export interface SourceInfo {
  /** Implementation name, e.g. 'qemu-shm'. */
  readonly name: string;
  readonly class: TechniqueClass;
  /** One line for `vmsight sources`. */
  readonly summary: string;
  /** Why the technique cannot apply to what the target names, or undefined when it may (then its probe decides). */
  readonly needs: (target: SourceTarget) => string | undefined;
}

const aFile = (t: SourceTarget): string | undefined => (t.file ? undefined : 'no file given');
const aQmpSocket = (t: SourceTarget): string | undefined => (t.qmp ? undefined : 'no QMP socket given');

export const QEMU_SHM: SourceInfo = {
  name: 'qemu-shm',
  class: 'live-map',
  summary: "live map: mmap of QEMU's memory-backend-file (zero-copy views, pread fallback)",
  needs: (t) => (t.shm || t.qmp ? undefined : 'needs a memory-backend-file path or a QMP socket'),
};

export const QEMU_PROCESS: SourceInfo = {
  name: 'qemu-process',
  class: 'live-read',
  summary: 'live read: process_vm_readv on the QEMU process, batched (/proc/PID/mem fallback); RAM located by QMP',
  needs: (t) => (t.qmp ? undefined : 'needs a QMP socket to locate guest RAM (pid:PID?qmp=SOCK)'),
};

export const GDB_STUB: SourceInfo = {
  name: 'gdb-stub',
  class: 'debugger-stub',
  summary: 'QEMU gdbstub in physical-memory mode (pauses the guest during each pass)',
  needs: (t) => (t.gdb ? undefined : 'no gdbstub address given'),
};

export const MONITOR_READ: SourceInfo = {
  name: 'monitor-read',
  class: 'monitor-read',
  summary: 'HMP xp over QMP (slowest; for completeness and cross-checks)',
  needs: aQmpSocket,
};

export const HALT_SNAPSHOT: SourceInfo = {
  name: 'halt-snapshot',
  class: 'halt-snapshot',
  summary: 'QMP stop + pmemsave (or dump-guest-memory) + cont, then read the file',
  needs: aQmpSocket,
};

export const LIVE_SNAPSHOT: SourceInfo = {
  name: 'live-snapshot',
  class: 'live-snapshot',
  summary: 'QMP migrate to a file (background-snapshot copy-on-write, else pre-copy); guest keeps running',
  needs: aQmpSocket,
};

export const ELF_CORE: SourceInfo = {
  name: 'elf-core',
  class: 'file',
  summary: 'ELF core dump (QEMU dump-guest-memory paging:false/true, kdump ELF)',
  needs: aFile,
};

export const KDUMP: SourceInfo = {
  name: 'kdump',
  class: 'file',
  summary: 'kdump-compressed image (makedumpfile, QEMU dump-guest-memory kdump-zlib/-snappy; LZO reported as unsupported)',
  needs: aFile,
};

export const LIME: SourceInfo = {
  name: 'lime',
  class: 'file',
  summary: 'LiME memory image (Linux Memory Extractor format, version 1)',
  needs: aFile,
};

export const RAW_FILE: SourceInfo = {
  name: 'raw-file',
  class: 'file',
  summary: 'raw image of guest-physical memory (file offset = guest-physical address)',
  needs: aFile,
};

/** The metadata of an entry without its check (what a factory spreads). */
export function described(info: SourceInfo): Pick<SourceInfo, 'name' | 'class' | 'summary'> {
  return { name: info.name, class: info.class, summary: info.summary };
}
