/**
 * `libvirt:NAME[?uri=…]`: a guest as libvirt runs it. libvirtd holds QEMU's only QMP session, so everything
 * the monitor tells (RAM layout with `info mtree -f`, host addresses with `gpa2hva`, vCPU registers) comes
 * through `virsh qemu-monitor-command`; the QEMU pid comes from libvirt's pid file.
 *
 * Then the fastest technique that fits the domain's memory backing:
 *   memfd or file backing, shared   live map of the RAM file through /proc/PID/fd/N (no path needed: a memfd
 *                                   has none, and libvirt's RAM files are its own business)
 *   anonymous RAM (the default)     live read (process_vm_readv at the gpa2hva addresses)
 * and guest-halting (`?halting=1`) pauses with `virsh suspend` and always resumes with `virsh resume`.
 * Nothing is held between monitor commands, so other vmsight processes and libvirt clients work beside us.
 */
import fs from 'node:fs';
import { SourceError } from '../../core/errors.js';
import { discoverQemu, hostRanges, type HostRamRange, type MonitorLease, type QemuDiscovery } from '../../qemu/discover.js';
import { backingOfXml, DEFAULT_LIBVIRT_URI, domainState, findDomainPid, LibvirtMonitor, listDomains, virsh, virshSync, type LibvirtBacking } from '../../qemu/libvirt.js';
import type { RamRange } from '../../qemu/layout.js';
import { HaltingMemory, type GuestControl } from '../halting.js';
import { nativeSupport } from '../native/libc.js';
import type { PhysicalMemory, TechniqueClass } from '../types.js';
import { QemuProcessMemory, type LiveReadMethod } from './qemu-process.js';
import { openQemuShm } from './qemu-shm.js';

export interface LibvirtTarget {
  readonly spec: string;
  readonly domain: string;
  readonly uri: string;
  readonly params: Readonly<Record<string, string>>;
}

export interface LibvirtCandidate {
  readonly factory: string;
  readonly class: TechniqueClass;
  readonly ok: boolean;
  readonly rank: number;
  readonly reason: string;
}

/** Where a domain's guest RAM is, seen from the host. */
export interface LibvirtRam {
  readonly pid: number;
  readonly pidReason: string;
  readonly discovery: QemuDiscovery;
  readonly layout: readonly HostRamRange[];
  /** What the QEMU process maps at guest RAM: a memfd, a file, or anonymous memory. */
  readonly backing: LibvirtBacking | 'private-file';
  /** /proc/PID/fd/N of the RAM file when QEMU maps it shared (live map fits). */
  readonly fdPath?: string;
  /** File offset of each layout range in that file. */
  readonly fileLayout?: readonly RamRange[];
  readonly backingReason: string;
}

/** Parses the body of `libvirt:NAME[?uri=URI]` (the query has already been split off by the caller). */
export function libvirtTarget(spec: string, domain: string, params: Readonly<Record<string, string>>): LibvirtTarget {
  return { spec, domain, uri: params['uri'] || DEFAULT_LIBVIRT_URI, params };
}

interface MapLine {
  start: number;
  end: number;
  perms: string;
  offset: number;
  inode: string;
  path: string;
}

function mapsOf(pid: number): MapLine[] {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/maps`, 'utf8');
  } catch (err) {
    throw accessError(pid, err, `/proc/${pid}/maps`);
  }
  const out: MapLine[] = [];
  for (const line of text.split('\n')) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) (\S{4}) ([0-9a-f]+) \S+ (\d+)\s*(.*)$/.exec(line);
    if (!m) continue;
    out.push({ start: parseInt(m[1]!, 16), end: parseInt(m[2]!, 16), perms: m[3]!, offset: parseInt(m[4]!, 16), inode: m[5]!, path: m[6]! });
    if (out.length > 200_000) break;
  }
  return out;
}

/** Effective capabilities of this process, from /proc/self/status. */
function effectiveCaps(): bigint {
  try {
    const hex = /^CapEff:\s*([0-9a-f]+)$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))?.[1];
    return hex ? BigInt(`0x${hex}`) : 0n;
  } catch {
    return 0n;
  }
}

const CAP_SYS_PTRACE = 19n;

/**
 * Which permission is missing to read process `pid`, in one line: root or CAP_SYS_PTRACE, and Yama's
 * ptrace_scope (which even the same uid must satisfy).
 */
export function ptraceProblem(pid: number): string {
  const me = process.getuid?.() ?? -1;
  let owner = -1;
  try {
    owner = fs.statSync(`/proc/${pid}`).uid;
  } catch {
    // unknown
  }
  let scope: number | undefined;
  try {
    scope = Number(fs.readFileSync('/proc/sys/kernel/yama/ptrace_scope', 'utf8').trim());
  } catch {
    scope = undefined;
  }
  const capable = (effectiveCaps() >> CAP_SYS_PTRACE) & 1n;
  if (scope === 3) return 'kernel.yama.ptrace_scope is 3: no process may read another one until reboot, not even root';
  if (!capable && owner !== me) {
    return `QEMU (pid ${pid}) runs as uid ${owner} and we are uid ${me} without CAP_SYS_PTRACE: run vmsight as root (sudo) or give it CAP_SYS_PTRACE`;
  }
  if (!capable && scope !== undefined && scope >= 1) {
    return `kernel.yama.ptrace_scope is ${scope}: only CAP_SYS_PTRACE may read a QEMU this process did not start; run as root or set it to 0 (sysctl kernel.yama.ptrace_scope=0)`;
  }
  if (!capable) return 'missing CAP_SYS_PTRACE (needed to read another process); run as root';
  return 'we hold CAP_SYS_PTRACE, yet the kernel refused (a security module such as AppArmor or SELinux?)';
}

function accessError(pid: number, err: unknown, what: string): SourceError {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT' || code === 'ESRCH') return new SourceError('libvirt', `pid:${pid}`, `QEMU process ${pid} is gone`, { hint: 'is the domain still running?', cause: err });
  return new SourceError('libvirt', `pid:${pid}`, `cannot read ${what} (${code ?? 'error'})`, { hint: ptraceProblem(pid), cause: err });
}

/** The fd of process `pid` that holds the file mapped by `m` (same link name and inode). */
function fdHolding(pid: number, m: MapLine): string | undefined {
  let fds: string[];
  try {
    fds = fs.readdirSync(`/proc/${pid}/fd`);
  } catch {
    return undefined;
  }
  for (const fd of fds.slice(0, 10_000)) {
    const p = `/proc/${pid}/fd/${fd}`;
    try {
      if (fs.readlinkSync(p) !== m.path) continue;
      if (String(fs.statSync(p).ino) === m.inode) return p;
    } catch {
      // closed meanwhile
    }
  }
  return undefined;
}

/** Asks libvirt and /proc where the domain's guest RAM is and what backs it. */
export async function locateLibvirtRam(t: LibvirtTarget, monitor: LibvirtMonitor): Promise<LibvirtRam> {
  const state = await domainState(t.uri, t.domain);
  if (state !== 'running' && state !== 'paused') {
    throw new SourceError('libvirt', t.spec, `domain ${t.domain} is ${state}`, { hint: `start it with \`virsh -c ${t.uri} start ${t.domain}\`` });
  }
  const found = findDomainPid(t.uri, t.domain);
  if (found.pid === undefined) throw new SourceError('libvirt', t.spec, found.reason, { hint: 'run vmsight on the host that runs the domain, as root' });
  const pid = found.pid;
  const discovery = await discoverQemu(monitor, monitor.endpoint, found);
  if (!discovery.layout.length) throw new SourceError('libvirt', t.spec, 'QEMU reports no guest RAM in address space "memory"');
  const layout = await hostRanges(monitor, discovery.layout);
  const maps = mapsOf(pid);
  const at = (hva: number) => maps.find((m) => m.start <= hva && hva < m.end);
  const first = at(layout[0]!.hva);
  const base = { pid, pidReason: found.reason, discovery, layout };
  if (!first) throw new SourceError('libvirt', t.spec, `guest RAM at host 0x${layout[0]!.hva.toString(16)} is not mapped in process ${pid}`);
  if (first.inode === '0') return { ...base, backing: 'anonymous', backingReason: `guest RAM is anonymous memory of QEMU ${pid} (${discovery.mainBackend?.type ?? 'no backend object'})` };
  const memfd = first.path.startsWith('/memfd:');
  const backing: LibvirtBacking = /hugepages|hugetlb/.test(first.path) ? 'hugepages' : memfd ? 'memfd' : 'file';
  if (!first.perms.includes('s')) {
    return { ...base, backing: 'private-file', backingReason: `guest RAM is a private (copy-on-write) mapping of ${first.path}: the file does not follow the guest` };
  }
  const fdPath = fdHolding(pid, first);
  // Every range must lie in one shared mapping of that same file, at a known offset.
  const fileLayout: RamRange[] = [];
  for (const r of layout) {
    const m = at(r.hva);
    if (!m || m.inode !== first.inode || !m.perms.includes('s') || r.hva + (r.end - r.start) > m.end) break;
    fileLayout.push({ start: r.start, end: r.end, block: r.block, name: r.name, blockOffset: m.offset + (r.hva - m.start) });
  }
  const whole = fileLayout.length === layout.length;
  const reason = `guest RAM is ${memfd ? 'a memfd' : `the file ${first.path}`} mapped shared by QEMU ${pid}`;
  if (!fdPath || !whole) return { ...base, backing, backingReason: `${reason}, but ${fdPath ? 'not every RAM range is in it' : 'no open fd of QEMU holds it'}` };
  return { ...base, backing, fdPath, fileLayout, backingReason: `${reason} (${fdPath})` };
}

function probeLiveMap(ram: LibvirtRam): LibvirtCandidate {
  const c = { factory: 'qemu-shm', class: 'live-map' as const };
  if (!ram.fdPath) return { ...c, ok: false, rank: 0, reason: ram.backingReason };
  try {
    fs.closeSync(fs.openSync(ram.fdPath, 'r'));
  } catch (err) {
    return { ...c, ok: false, rank: 0, reason: `cannot open ${ram.fdPath} (${(err as NodeJS.ErrnoException).code}): ${ptraceProblem(ram.pid)}` };
  }
  const native = nativeSupport();
  return { ...c, ok: true, rank: native.ok ? 7 : 5.5, reason: `${ram.backingReason}: ${native.ok ? 'mmap' : 'pread'} of it, no system call per read` };
}

function probeLiveRead(ram: LibvirtRam): LibvirtCandidate {
  const c = { factory: 'qemu-process', class: 'live-read' as const };
  try {
    fs.closeSync(fs.openSync(`/proc/${ram.pid}/mem`, 'r'));
  } catch (err) {
    return { ...c, ok: false, rank: 0, reason: `cannot open /proc/${ram.pid}/mem (${(err as NodeJS.ErrnoException).code}): ${ptraceProblem(ram.pid)}` };
  }
  const native = nativeSupport();
  return { ...c, ok: true, rank: native.ok ? 6 : 5, reason: `QEMU ${ram.pid} is readable: ${native.ok ? 'batched process_vm_readv' : '/proc/PID/mem'} at gpa2hva's addresses` };
}

/** The techniques that fit a located domain, best first. */
export function rankLibvirt(ram: LibvirtRam): LibvirtCandidate[] {
  return [probeLiveMap(ram), probeLiveRead(ram)].sort((a, b) => Number(b.ok) - Number(a.ok) || b.rank - a.rank);
}

/** Pausing and resuming through libvirt (so `virsh list` tells the truth while we hold the guest). */
export function libvirtControl(uri: string, domain: string, monitor: LibvirtMonitor): GuestControl {
  return {
    endpoint: monitor.endpoint,
    status: async () => (await monitor.execute<{ status: string }>('query-status')).status,
    stop: async () => void (await virsh(uri, ['suspend', domain], { domain })),
    cont: async () => void (await virsh(uri, ['resume', domain], { domain })),
    contSync: () => void virshSync(uri, ['resume', domain]),
  };
}

export interface LibvirtOpened {
  readonly memory: PhysicalMemory;
  readonly chosen: { readonly factory: string; readonly class: TechniqueClass; readonly reason: string };
  readonly candidates: readonly LibvirtCandidate[];
}

/** Opens the best technique for a libvirt domain (or the one asked for), optionally with guest-halting. */
export async function openLibvirt(t: LibvirtTarget, options: { technique?: string; halting?: boolean } = {}): Promise<LibvirtOpened> {
  let technique: string | undefined = options.technique ?? t.params["technique"];
  let halting = options.halting ?? ['1', 'true', 'yes', 'on'].includes(t.params['halting'] ?? '');
  if (technique === 'guest-halting') {
    halting = true;
    technique = undefined;
  }
  const monitor = new LibvirtMonitor(t.uri, t.domain);
  const lease: MonitorLease = { client: monitor, release: () => monitor.close() };
  const ram = await locateLibvirtRam(t, monitor);
  const candidates = rankLibvirt(ram);
  const fitting = candidates.filter((c) => c.ok);
  const pick = technique === undefined ? fitting[0] : fitting.find((c) => c.factory === technique || c.class === technique);
  if (!pick) {
    const asked = technique === undefined ? candidates : candidates.filter((c) => c.factory === technique || c.class === technique);
    throw new SourceError(technique ?? 'libvirt', t.spec, `${technique === undefined ? 'no technique can read this domain' : 'does not fit'}: ${asked.map((c) => `${c.factory}: ${c.reason}`).join('; ') || `libvirt offers live-map and live-read, not ${technique}`}`, {
      hint: fitting.length ? `what fits: ${fitting.map((c) => `${c.factory} (${c.class})`).join(', ')}` : ptraceProblem(ram.pid),
    });
  }
  const name = monitor.endpoint;
  let memory: PhysicalMemory;
  if (pick.class === 'live-map') {
    memory = await openQemuShm({ path: ram.fdPath!, layout: ram.fileLayout!, monitor: lease, target: name, ...(t.params['pread'] ? { pread: true } : {}) });
  } else {
    const m = t.params['method'];
    if (m !== undefined && m !== 'process_vm_readv' && m !== 'proc-mem') {
      throw new SourceError('live-read', t.spec, `unknown method ${m}`, { hint: 'use method=process_vm_readv or method=proc-mem' });
    }
    const method: LiveReadMethod = (m as LiveReadMethod | undefined) ?? (nativeSupport().ok ? 'process_vm_readv' : 'proc-mem');
    const mem = new QemuProcessMemory(ram.pid, ram.layout, method, lease, name);
    const failures = mem.readv([{ addr: ram.layout[0]!.start, len: 1 }]);
    if (failures.length) {
      await mem.close();
      throw new SourceError('live-read', name, `cannot read guest RAM: ${failures[0]!.reason}`, { hint: ptraceProblem(ram.pid) });
    }
    memory = mem;
  }
  const others = fitting.filter((c) => c !== pick).map((c) => `${c.factory} (${c.class})`);
  const why = `${technique !== undefined ? `asked for ${technique}: ` : ''}${pick.reason}; monitor through virsh qemu-monitor-command (libvirtd holds QMP)${others.length ? `; also fits: ${others.join(', ')}` : ''}`;
  if (!halting) return { memory, chosen: { factory: pick.factory, class: pick.class, reason: why }, candidates };
  try {
    const halted = await HaltingMemory.open(memory, libvirtControl(t.uri, t.domain, monitor));
    return { memory: halted, chosen: { factory: pick.factory, class: 'guest-halting', reason: `${why}; guest paused for each pass (virsh suspend/resume)` }, candidates };
  } catch (err) {
    await memory.close().catch(() => undefined);
    throw err;
  }
}

/** One row of `vmsight sources libvirt:`: a domain, its state and backing, and the techniques that fit. */
export interface LibvirtDomainRow {
  readonly domain: string;
  readonly state: string;
  readonly backing: string;
  readonly pid: number | null;
  readonly techniques: string;
  readonly reason: string;
}

/** Describes every domain of `uri` (running ones are located; the rest say what their XML asks for). */
export async function describeLibvirtDomains(uri: string = DEFAULT_LIBVIRT_URI): Promise<LibvirtDomainRow[]> {
  const rows: LibvirtDomainRow[] = [];
  for (const d of await listDomains(uri)) {
    if (d.state !== 'running' && d.state !== 'paused') {
      const xml = await virsh(uri, ['dumpxml', d.name], { domain: d.name }).catch(() => '');
      rows.push({ domain: d.name, state: d.state, backing: xml ? backingOfXml(xml).backing : 'unknown', pid: null, techniques: '', reason: 'not running' });
      continue;
    }
    const monitor = new LibvirtMonitor(uri, d.name);
    try {
      const ram = await locateLibvirtRam({ spec: `libvirt:${d.name}`, domain: d.name, uri, params: {} }, monitor);
      const fit = rankLibvirt(ram).filter((c) => c.ok);
      const techniques = [...fit.map((c) => `${c.class} (${c.factory})`), ...(fit.length ? ['guest-halting'] : [])].join(', ');
      rows.push({ domain: d.name, state: d.state, backing: ram.backing, pid: ram.pid, techniques, reason: fit[0]?.reason ?? ram.backingReason });
    } catch (err) {
      rows.push({ domain: d.name, state: d.state, backing: 'unknown', pid: null, techniques: '', reason: (err as Error).message });
    } finally {
      await monitor.close();
    }
  }
  return rows;
}
