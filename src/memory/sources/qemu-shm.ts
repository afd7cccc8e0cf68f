/**
 * Live memory map (VEE'15 "live map"): QEMU keeps guest RAM in a
 * `memory-backend-file` (e.g. /dev/shm/NAME, share=on); we map the same file
 * read-only and shared, so our views follow the guest as it runs, with no
 * copy and no system call per read. Without native mmap we fall back to
 * pread on the same file. The file is never opened writable.
 *
 * The guest-physical layout comes from QMP (`info mtree -f`) when a QMP
 * socket is known; a bare file gets q35's layout for its size.
 */
import fs from 'node:fs';
import { SourceError } from '../../core/errors.js';
import { acquireQmp, type MonitorLease, type QmpLease } from '../../qemu/discover.js';
import { findRange, q35Layout, type RamRange, readDestination, splitReadFillingHoles } from '../../qemu/layout.js';
import { readCpuStates } from '../../qemu/registers.js';
import { mapFileReadOnly, MAX_VIEW, nativeSupport, NativeError, type FileMapping } from '../native/libc.js';
import type { OpenOptions, ProbeResult, SourceFactory, SourceTarget } from '../source-factory.js';
import type { MappedRegion, PhysicalMemory, PhysRange, ReadFailure, ReadOp, SourceHints, TechniqueInfo } from '../types.js';
import { gpa } from '../../core/address.js';
import { QEMU_SHM, described } from './catalog.js';

const NAME = QEMU_SHM.name;

export interface QemuShmOptions {
  /** The backend file, e.g. /dev/shm/NAME. */
  readonly path: string;
  /** A QMP endpoint of the same QEMU: gives the exact layout and vCPU registers. */
  readonly qmp?: string;
  /** A layout already known (skips QMP and the q35 guess). */
  readonly layout?: readonly RamRange[];
  /** Use pread even where mmap works (for comparison and benchmarks). */
  readonly pread?: boolean;
  /** A monitor already held (e.g. libvirt's passthrough) for registers; kept and released on close. */
  readonly monitor?: MonitorLease;
  /** How to name this source in messages. */
  readonly target?: string;
}

/** A piece of guest RAM of at most MAX_VIEW bytes, with its mapping when mapped. */
interface Chunk extends RamRange {
  bytes?: Uint8Array;
}

/** Splits the layout at MAX_VIEW boundaries so each piece can be one view. */
function chunksOf(layout: readonly RamRange[]): Chunk[] {
  const out: Chunk[] = [];
  for (const r of layout) {
    for (let start: number = r.start; start < r.end; start += MAX_VIEW) {
      const end = Math.min(r.end, start + MAX_VIEW);
      out.push({ start: gpa(start), end: gpa(end), block: r.block, blockOffset: r.blockOffset + (start - r.start), name: r.name });
    }
  }
  return out;
}

export class QemuShmMemory implements PhysicalMemory {
  readonly technique: TechniqueInfo;
  readonly target: string;
  readonly size: number;
  /** How the layout was learnt: from QMP, given by the caller, or q35's rule for the file size. */
  readonly layoutSource: 'qmp' | 'q35-default' | 'given';
  /** Zero-copy views of guest RAM (≤ 1 GiB each); present only when the file is mapped (not in pread mode). */
  readonly mapped?: () => readonly MappedRegion[];
  private gen = 0;
  private closed = false;

  constructor(
    readonly path: string,
    private readonly fd: number,
    private readonly layout: readonly RamRange[],
    private readonly chunks: readonly Chunk[],
    private readonly mappings: readonly FileMapping[],
    layoutSource: 'qmp' | 'q35-default' | 'given',
    private readonly lease: MonitorLease | undefined,
    target?: string,
  ) {
    this.layoutSource = layoutSource;
    this.target = target ?? (lease ? `shm:${path}?qmp=${lease.client.endpoint}` : `shm:${path}`);
    this.size = layout.length ? layout[layout.length - 1]!.end : 0;
    const zeroCopy = mappings.length > 0;
    this.technique = { class: 'live-map', name: NAME, live: true, haltsGuest: false, zeroCopy };
    if (zeroCopy) {
      const regions: MappedRegion[] = chunks.map((c) => ({ start: c.start, bytes: c.bytes! }));
      this.mapped = () => (this.closed ? [] : regions);
    }
  }

  get generation(): number {
    return this.gen;
  }

  ranges(): readonly PhysRange[] {
    return this.layout;
  }

  readv(ops: ReadOp[]): ReadFailure[] {
    if (this.closed) throw new SourceError('live-map', this.target, 'read after close');
    const failures: ReadFailure[] = [];
    for (const op of ops) {
      const dst = readDestination(op, failures);
      if (!dst) continue;
      // Fast path: the whole op inside one mapped chunk (almost every read).
      const i = findRange(this.chunks, op.addr);
      const c = i >= 0 ? this.chunks[i]! : undefined;
      if (c?.bytes && op.addr + op.len <= c.end) {
        const at = op.addr - c.start;
        if (op.len <= 32) {
          const src = c.bytes;
          for (let k = 0; k < op.len; k++) dst[k] = src[at + k]!;
        } else {
          dst.set(c.bytes.subarray(at, at + op.len));
        }
        continue;
      }
      splitReadFillingHoles(this.chunks, op.addr, op.len, dst, failures, (chunk, off, dstOff, n) => {
        if (chunk.bytes) {
          const at = off - chunk.blockOffset;
          dst.set(chunk.bytes.subarray(at, at + n), dstOff);
        } else {
          this.pread(dst, dstOff, n, off);
        }
      });
    }
    return failures;
  }

  private pread(dst: Uint8Array, dstOff: number, n: number, fileOff: number): void {
    let done = 0;
    // A short read only happens at end of file (checked at open), so this loop ends.
    while (done < n) {
      const got = fs.readSync(this.fd, dst, dstOff + done, n - done, fileOff + done);
      if (got <= 0) {
        dst.fill(0, dstOff + done, dstOff + n);
        return;
      }
      done += got;
    }
  }

  async hints(): Promise<SourceHints> {
    if (!this.lease) return {};
    return { cpus: await readCpuStates(this.lease.client) };
  }

  /**
   * A live map has nothing to re-fetch: a new pass only tells caches to drop
   * what they hold. It also checks that the guest is still the one we mapped:
   * a guest restarted under the same name has a new file, and our mapping
   * would silently show the old RAM, frozen.
   */
  async refresh(): Promise<void> {
    if (this.closed) throw new SourceError('live-map', this.target, 'refresh after close');
    const mine = fs.fstatSync(this.fd);
    let now: fs.Stats | undefined;
    try {
      now = fs.statSync(this.path);
    } catch {
      now = undefined;
    }
    if (!now || now.ino !== mine.ino || now.dev !== mine.dev || (this.lease && this.lease.client.closed)) {
      throw new SourceError('live-map', this.target, 'the guest behind this RAM file is gone (file removed or replaced, or QEMU exited)', {
        hint: 'reopen the source',
      });
    }
    this.gen++;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const m of this.mappings) m.unmap();
    fs.closeSync(this.fd);
    await this.lease?.release();
  }
}

function sameFile(a: string, b: string): boolean {
  try {
    const sa = fs.statSync(a);
    const sb = fs.statSync(b);
    return sa.dev === sb.dev && sa.ino === sb.ino;
  } catch {
    return false;
  }
}

/** Opens a QEMU RAM file. Throws SourceError naming the file and what to do. */
export async function openQemuShm(options: QemuShmOptions): Promise<QemuShmMemory> {
  const file = options.path;
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new SourceError('live-map', file, code === 'ENOENT' ? 'no such file' : `cannot open (${code})`, {
      hint: code === 'EACCES' ? 'run as the owner of the QEMU process or as root' : 'give the mem-path of the QEMU memory-backend-file',
      cause: err,
    });
  }
  let lease: MonitorLease | undefined = options.monitor;
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new SourceError('live-map', file, 'not a regular file', { hint: 'give the mem-path file, not a directory or device' });
    let layout: readonly RamRange[];
    let layoutSource: 'qmp' | 'q35-default' | 'given';
    if (options.layout) {
      layout = options.layout;
      layoutSource = 'given';
    } else if (options.qmp) {
      const qmpLease = await acquireQmp(options.qmp);
      lease = qmpLease;
      const d = await qmpLease.discovery();
      const backend = d.backends.find((b) => b.memPath !== undefined && sameFile(b.memPath, file));
      if (!backend) {
        throw new SourceError('live-map', file, `QEMU at ${options.qmp} does not keep RAM in this file`, {
          hint: `its memory backends: ${d.backends.map((b) => `${b.id}=${b.memPath ?? 'anonymous'}`).join(', ') || 'none'}`,
        });
      }
      if (backend.share === false) {
        throw new SourceError('live-map', file, `backend ${backend.id} has share=off, so guest writes never reach the file`, {
          hint: 'start QEMU with memory-backend-file,...,share=on, or use the live-read technique',
        });
      }
      layout = d.layout.filter((r) => r.block === backend.id);
      layoutSource = 'qmp';
    } else {
      layout = q35Layout(st.size, 'mem');
      layoutSource = 'q35-default';
    }
    const need = layout.reduce((m, r) => Math.max(m, r.blockOffset + (r.end - r.start)), 0);
    if (!layout.length || need > st.size) {
      throw new SourceError('live-map', file, `file holds ${st.size} bytes but the layout needs ${need}`, {
        hint: 'is this the memory-backend-file of the guest? give its QMP socket too (shm:PATH?qmp=SOCK)',
      });
    }
    const chunks = chunksOf(layout);
    const mappings: FileMapping[] = [];
    if (!options.pread && nativeSupport().ok) {
      try {
        for (const c of chunks) {
          const m = mapFileReadOnly(fd, c.end - c.start, c.blockOffset);
          mappings.push(m);
          c.bytes = m.bytes;
        }
      } catch (err) {
        // e.g. a filesystem that cannot be mapped: pread still works.
        for (const m of mappings) m.unmap();
        mappings.length = 0;
        for (const c of chunks) delete c.bytes;
        if (!(err instanceof NativeError)) throw err;
      }
    }
    return new QemuShmMemory(file, fd, layout, chunks, mappings, layoutSource, lease, options.target);
  } catch (err) {
    fs.closeSync(fd);
    await lease?.release();
    throw err;
  }
}

export const factory: SourceFactory = {
  ...described(QEMU_SHM),
  async probe(target: SourceTarget): Promise<ProbeResult> {
    // Loading the native binding costs a cold start ~10 ms: only when this technique can apply at all.
    if (!target.shm && !target.qmp) return { ok: false, rank: 0, reason: 'needs a memory-backend-file path or a QMP socket' };
    const native = nativeSupport();
    const speed = native.ok ? 7 : 5.5;
    const how = native.ok ? 'mmap' : `pread (${native.reason})`;
    if (target.shm) {
      try {
        fs.accessSync(target.shm, fs.constants.R_OK);
        return { ok: true, rank: speed, reason: `${target.shm} is readable: ${how}, no system call per read` };
      } catch (err) {
        return { ok: false, rank: 0, reason: `${target.shm}: ${(err as NodeJS.ErrnoException).code ?? 'not readable'}` };
      }
    }
    if (!target.qmp) return { ok: false, rank: 0, reason: 'needs a memory-backend-file path or a QMP socket' };
    let lease: QmpLease | undefined;
    try {
      lease = await acquireQmp(target.qmp);
      const d = await lease.discovery();
      const b = d.mainBackend;
      if (!b) return { ok: false, rank: 0, reason: 'guest RAM is not a named memory backend' };
      if (!b.memPath) return { ok: false, rank: 0, reason: `backend ${b.id} is ${b.type}, not a file` };
      if (b.share === false) return { ok: false, rank: 0, reason: `backend ${b.id} has share=off: the file does not follow the guest` };
      if (!b.readable) return { ok: false, rank: 0, reason: b.readableReason };
      return { ok: true, rank: speed, reason: `QEMU keeps RAM in ${b.memPath} (share=on), readable: ${how}` };
    } catch (err) {
      return { ok: false, rank: 0, reason: (err as Error).message };
    } finally {
      await lease?.release();
    }
  },
  async open(target: SourceTarget, _options?: OpenOptions): Promise<PhysicalMemory> {
    let shm = target.shm;
    if (!shm && target.qmp) {
      const lease = await acquireQmp(target.qmp);
      try {
        shm = (await lease.discovery()).mainBackend?.memPath;
      } finally {
        await lease.release();
      }
    }
    if (!shm) throw new SourceError('live-map', target.spec, 'no memory-backend-file is known for this target');
    return openQemuShm({ path: shm, ...(target.qmp ? { qmp: target.qmp } : {}), ...(target.params['pread'] ? { pread: true } : {}) });
  },
};
