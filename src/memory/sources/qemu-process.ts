/**
 * Live read (VEE'15 "live read"): copy guest RAM out of the running QEMU
 * process. QMP tells us where guest RAM lives (`info mtree -f` for the
 * guest-physical ranges, `gpa2hva` for their host addresses) — never a guess
 * from mapping sizes, since TCG keeps a ~1 GiB rwx code buffer that looks
 * like RAM. Reads are batched: one process_vm_readv per 1024 iovecs. Without
 * native calls, /proc/<pid>/mem pread does the same job one range at a time.
 *
 * Works for anonymous guest RAM too (no memory-backend-file needed).
 *
 * Longer than ~400 lines on purpose: one technique per file (the house rule
 * for sources): the source, its probe and the /proc/PID/mem fallback share one
 * range table and one batching path.
 */
import fs from 'node:fs';
import { SourceError } from '../../core/errors.js';
import { acquireQmp, findQemuPid, hostRanges, type HostRamRange, type MonitorLease, openOnQmpLease, type QmpLease } from '../../qemu/discover.js';
import { readDestination, splitReadFillingHoles } from '../../qemu/layout.js';
import { readCpuStates } from '../../qemu/registers.js';
import { addressOf, Errno, IOV_MAX, IovecBatch, nativeSupport, NativeError } from '../native/libc.js';
import type { OpenOptions, ProbeResult, SourceFactory, SourceTarget } from '../source-factory.js';
import type { PhysicalMemory, PhysRange, ReadFailure, ReadOp, SourceHints, TechniqueInfo } from '../types.js';
import { gpa } from '../../core/address.js';
import { QEMU_PROCESS, described } from './catalog.js';

const NAME = QEMU_PROCESS.name;
const MAX_BATCH_BYTES = 1 << 30;

export type LiveReadMethod = 'process_vm_readv' | 'proc-mem';

export interface QemuProcessOptions {
  readonly qmp: string;
  /** QEMU's pid; found from the QMP socket when absent. */
  readonly pid?: number;
  /** Force a method (default: process_vm_readv when native calls work). */
  readonly method?: LiveReadMethod;
}

/** One contiguous host-side piece of a read. */
interface Segment {
  dst: Uint8Array;
  dstOff: number;
  gpa: number;
  hva: number;
  n: number;
  failures: ReadFailure[];
  /** Host page holding the whole segment, when it may share one page read with others. */
  page?: number;
}

const PAGE = 4096;
/** Reads up to this size are candidates for sharing a page read. */
const SMALL = 512;
/** Inside a pass, read in aligned blocks of this size, kept for the pass (16 KiB measured best for pslist: README "libvirt domains"). */
export const LIVE_READ_PASS_BLOCK = 16384;

/** Why we may not read another process's memory, as one actionable line. */
export function ptraceHint(pid: number): string {
  let scope: string | undefined;
  try {
    scope = fs.readFileSync('/proc/sys/kernel/yama/ptrace_scope', 'utf8').trim();
  } catch {
    scope = undefined;
  }
  let owner = '?';
  try {
    owner = String(fs.statSync(`/proc/${pid}`).uid);
  } catch {
    // Leave unknown.
  }
  const me = process.getuid?.() ?? '?';
  const yama = scope === undefined ? 'no Yama LSM here' : `kernel.yama.ptrace_scope is ${scope}`;
  return (
    `reading QEMU's memory needs CAP_SYS_PTRACE (e.g. run as root), or the same uid as QEMU ` +
    `(QEMU runs as uid ${owner}, we are uid ${me}) with kernel.yama.ptrace_scope 0 ` +
    `(1 allows only a QEMU started by this process); ${yama}`
  );
}

function startTime(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 22, counted after the parenthesised comm (which may hold spaces).
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** Host mappings of a process, for checking that gpa2hva's answers belong to it. */
function processMappings(pid: number): Array<[number, number]> | undefined {
  try {
    return fs
      .readFileSync(`/proc/${pid}/maps`, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => {
        const [a, b] = l.slice(0, l.indexOf(' ')).split('-');
        return [parseInt(a!, 16), parseInt(b!, 16)] as [number, number];
      });
  } catch {
    return undefined;
  }
}

/** True when [start, end) is covered by consecutive mappings. */
function covered(maps: Array<[number, number]>, start: number, end: number): boolean {
  let pos = start;
  for (const [a, b] of maps) {
    if (a <= pos && pos < b) pos = b;
    if (pos >= end) return true;
  }
  return pos >= end;
}

export class QemuProcessMemory implements PhysicalMemory {
  readonly technique: TechniqueInfo;
  readonly target: string;
  readonly size: number;
  private gen = 0;
  private closed = false;
  private readonly batch = new IovecBatch();
  private readonly started: string | undefined;
  private memFd: number | undefined;
  private scratch: Uint8Array | undefined;
  /** See PhysicalMemory.passBlockBytes: a read costs one system call whatever its size (undefined: read as asked). */
  passBlockBytes: number | undefined = LIVE_READ_PASS_BLOCK;

  constructor(
    readonly pid: number,
    private readonly layout: readonly HostRamRange[],
    readonly method: LiveReadMethod,
    private readonly lease: MonitorLease,
    /** How to name this source in messages (default pid:PID?qmp=ENDPOINT). */
    target?: string,
  ) {
    this.target = target ?? `pid:${pid}?qmp=${lease.client.endpoint}`;
    this.size = layout.length ? layout[layout.length - 1]!.end : 0;
    this.technique = { class: 'live-read', name: NAME, live: true, haltsGuest: false, zeroCopy: false };
    this.started = startTime(pid);
  }

  get generation(): number {
    return this.gen;
  }

  ranges(): readonly PhysRange[] {
    return this.layout;
  }

  readv(ops: ReadOp[]): ReadFailure[] {
    if (this.closed) throw new SourceError('live-read', this.target, 'read after close');
    const failures: ReadFailure[] = [];
    const segments: Segment[] = [];
    for (const op of ops) {
      const dst = readDestination(op, failures);
      if (!dst) continue;
      splitReadFillingHoles(this.layout, op.addr, op.len, dst, failures, (r, _off, dstOff, n) => {
        const gpa = op.addr + dstOff;
        const hva = r.hva + (gpa - r.start);
        const seg: Segment = { dst, dstOff, gpa, hva, n, failures };
        // Small reads inside one host page of this RAM range may share a single page read.
        const page = hva - (hva % PAGE);
        if (n <= SMALL && hva + n <= page + PAGE && page >= r.hva && page + PAGE <= r.hva + (r.end - r.start)) seg.page = page;
        segments.push(seg);
      });
    }
    if (this.method === 'process_vm_readv') this.readCoalesced(segments);
    else for (const s of segments) this.readProcMem(s);
    return failures;
  }

  /**
   * The kernel's cost is per iovec (it pins each remote range), not per byte,
   * so small reads that fall in the same host page are served by one 4 KiB
   * read into a scratch page and copied out. Works in windows of IOV_MAX
   * jobs, each page job owning one scratch slot.
   */
  private readCoalesced(segments: Segment[]): void {
    let sharing = false;
    const seen = new Set<number>();
    for (const s of segments) {
      if (s.page === undefined) continue;
      if (seen.has(s.page)) {
        sharing = true;
        break;
      }
      seen.add(s.page);
    }
    if (!sharing) {
      this.readBatched(segments);
      return;
    }
    this.scratch ??= new Uint8Array(IOV_MAX * PAGE);
    const scratch = this.scratch;
    let i = 0;
    while (i < segments.length) {
      const jobs: Segment[] = [];
      const pages = new Map<number, { job: Segment; members: Segment[] }>();
      for (; i < segments.length && jobs.length < IOV_MAX; i++) {
        const s = segments[i]!;
        if (s.page === undefined) {
          jobs.push(s);
          continue;
        }
        let p = pages.get(s.page);
        if (!p) {
          const slot = jobs.length;
          const job: Segment = { dst: scratch, dstOff: slot * PAGE, gpa: s.gpa - (s.hva - s.page), hva: s.page, n: PAGE, failures: [] };
          p = { job, members: [] };
          pages.set(s.page, p);
          jobs.push(job);
        }
        p.members.push(s);
      }
      this.readBatched(jobs);
      for (const { job, members } of pages.values()) {
        if (job.failures.length) {
          // Some of the page faulted: read each member alone, so failures carry exact ranges.
          for (const m of members) this.readProcMem(m);
          continue;
        }
        for (const m of members) {
          const at = job.dstOff + (m.hva - job.hva);
          m.dst.set(scratch.subarray(at, at + m.n), m.dstOff);
        }
      }
    }
  }

  /** Issues the segments in batches of IOV_MAX; a fault stops the kernel, so the rest is re-issued. */
  private readBatched(segments: Segment[]): void {
    let i = 0;
    let lastDst: Uint8Array | undefined;
    let lastAddr = 0;
    while (i < segments.length) {
      const b = this.batch;
      b.clear();
      const first = i;
      // The kernel caps one call at MAX_RW_COUNT (~2 GiB) and silently stops there: keep batches under 1 GiB.
      while (i < segments.length && !b.full && (b.count === 0 || b.bytes + segments[i]!.n <= MAX_BATCH_BYTES)) {
        const s = segments[i++]!;
        if (s.dst !== lastDst) {
          lastDst = s.dst;
          lastAddr = addressOf(s.dst);
        }
        b.add(lastAddr + s.dstOff, s.hva, s.n);
      }
      let got: number;
      try {
        got = b.read(this.pid);
      } catch (err) {
        throw this.failure(err);
      }
      if (got === b.bytes) continue;
      // The kernel stopped inside segment k: read it alone to learn exactly what failed, then resume after it.
      let k = first;
      while (k < i && got >= segments[k]!.n) got -= segments[k++]!.n;
      this.readProcMem(segments[k]!, got);
      i = k + 1;
    }
  }

  /** Reads one segment with pread on /proc/<pid>/mem, from byte `from`, recording what fails. */
  private readProcMem(s: Segment, from = 0): void {
    this.memFd ??= this.openMem();
    let pos = from;
    while (pos < s.n) {
      let got: number;
      try {
        got = fs.readSync(this.memFd, s.dst, s.dstOff + pos, s.n - pos, s.hva + pos);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ESRCH' || !this.alive()) throw this.gone(err);
        if (code !== 'EIO' && code !== 'EFAULT') throw this.failure(err);
        got = 0;
      }
      if (got <= 0) {
        if (!this.alive()) throw this.gone(undefined);
        s.dst.fill(0, s.dstOff + pos, s.dstOff + s.n);
        s.failures.push({
          addr: gpa(s.gpa + pos),
          len: s.n - pos,
          reason: `QEMU process ${this.pid} has no memory at host address 0x${(s.hva + pos).toString(16)}`,
        });
        return;
      }
      pos += got;
    }
  }

  private openMem(): number {
    try {
      return fs.openSync(`/proc/${this.pid}/mem`, 'r');
    } catch (err) {
      throw this.failure(err);
    }
  }

  private alive(): boolean {
    return startTime(this.pid) === this.started && this.started !== undefined;
  }

  private gone(cause: unknown): SourceError {
    return new SourceError('live-read', this.target, `QEMU process ${this.pid} is gone (ESRCH)`, {
      hint: 'the guest was shut down or QEMU exited; start it again and reopen the source',
      ...(cause ? { cause } : {}),
    });
  }

  private failure(err: unknown): SourceError {
    const code = err instanceof NativeError ? err.code : (err as NodeJS.ErrnoException).code;
    if (code === 'ESRCH' || (err instanceof NativeError && err.errno === Errno.ESRCH) || !this.alive()) return this.gone(err);
    if (code === 'EPERM' || code === 'EACCES') {
      return new SourceError('live-read', this.target, `permission denied reading QEMU process ${this.pid} (${code})`, {
        hint: ptraceHint(this.pid),
        cause: err,
      });
    }
    return new SourceError('live-read', this.target, `${(err as Error).message}`, { cause: err });
  }

  async hints(): Promise<SourceHints> {
    return { cpus: await readCpuStates(this.lease.client) };
  }

  async refresh(): Promise<void> {
    if (this.closed) throw new SourceError('live-read', this.target, 'refresh after close');
    if (!this.alive()) throw this.gone(undefined);
    this.gen++;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.memFd !== undefined) fs.closeSync(this.memFd);
    await this.lease.release();
  }
}

/** Opens live read on the QEMU behind `qmp`. Throws SourceError/QemuError saying what is missing. */
export async function openQemuProcess(options: QemuProcessOptions): Promise<QemuProcessMemory> {
  return openOnQmpLease(options.qmp, async (lease) => {
    const d = await lease.discovery();
    const pid = options.pid ?? d.pid;
    if (pid === undefined) {
      throw new SourceError('live-read', options.qmp, `cannot tell which process is QEMU: ${d.pidReason}`, {
        hint: 'name it: pid:PID?qmp=SOCKET',
      });
    }
    if (!fs.existsSync(`/proc/${pid}`)) throw new SourceError('live-read', `pid:${pid}`, 'no such process', { hint: 'is QEMU running?' });
    if (!d.layout.length) throw new SourceError('live-read', options.qmp, 'QEMU reports no guest RAM in address space "memory"');
    const layout = await hostRanges(lease.client, d.layout);
    const maps = processMappings(pid);
    if (maps) {
      const bad = layout.find((r) => !covered(maps, r.hva, r.hva + (r.end - r.start)));
      if (bad) {
        throw new SourceError('live-read', `pid:${pid}`, `guest RAM at host 0x${bad.hva.toString(16)} is not mapped in process ${pid}`, {
          hint: `is ${pid} the QEMU behind ${options.qmp}?`,
        });
      }
    }
    const method: LiveReadMethod = options.method ?? (nativeSupport().ok ? 'process_vm_readv' : 'proc-mem');
    const mem = new QemuProcessMemory(pid, layout, method, lease);
    // One small read up front turns a permission problem into an error now, not at the first real read.
    const failures = mem.readv([{ addr: layout[0]!.start, len: 1 }]);
    if (failures.length) {
      await mem.close();
      throw new SourceError('live-read', mem.target, `cannot read guest RAM: ${failures[0]!.reason}`);
    }
    return mem;
  });
}

export const factory: SourceFactory = {
  ...described(QEMU_PROCESS),
  async probe(target: SourceTarget): Promise<ProbeResult> {
    if (!target.qmp) return { ok: false, rank: 0, reason: 'needs a QMP socket to locate guest RAM (pid:PID?qmp=SOCK)' };
    const native = nativeSupport();
    let lease: QmpLease | undefined;
    try {
      lease = await acquireQmp(target.qmp);
      const d = await lease.discovery();
      const pid = target.pid ?? d.pid ?? findQemuPid(target.qmp).pid;
      if (pid === undefined) return { ok: false, rank: 0, reason: d.pidReason };
      try {
        fs.closeSync(fs.openSync(`/proc/${pid}/mem`, 'r'));
      } catch (err) {
        return { ok: false, rank: 0, reason: `cannot open /proc/${pid}/mem (${(err as NodeJS.ErrnoException).code}): ${ptraceHint(pid)}` };
      }
      return native.ok
        ? { ok: true, rank: 6, reason: `process ${pid} is readable: batched process_vm_readv` }
        : { ok: true, rank: 5, reason: `process ${pid} is readable: /proc/${pid}/mem (${native.reason})` };
    } catch (err) {
      return { ok: false, rank: 0, reason: (err as Error).message };
    } finally {
      await lease?.release();
    }
  },
  async open(target: SourceTarget, _options?: OpenOptions): Promise<PhysicalMemory> {
    if (!target.qmp) throw new SourceError('live-read', target.spec, 'needs a QMP socket', { hint: 'use pid:PID?qmp=SOCKET or qmp:SOCKET' });
    const method = target.params['method'];
    if (method !== undefined && method !== 'process_vm_readv' && method !== 'proc-mem') {
      throw new SourceError('live-read', target.spec, `unknown method ${method}`, { hint: 'use method=process_vm_readv or method=proc-mem' });
    }
    return openQemuProcess({
      qmp: target.qmp,
      ...(target.pid !== undefined ? { pid: target.pid } : {}),
      ...(method ? { method } : {}),
    });
  },
};
