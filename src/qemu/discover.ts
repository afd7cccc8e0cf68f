/**
 * Everything vmsight can learn about a running QEMU from its QMP socket
 * alone: the QEMU process id (the process holding the listening socket), the
 * memory backend of guest RAM (`query-memdev`, `qom-get` of mem-path and
 * share) and whether its file is readable by us, the guest-physical layout
 * (`info mtree -f`), and the host virtual address of each RAM range
 * (`gpa2hva`), which is what process_vm_readv needs.
 *
 * Longer than ~400 lines on purpose: one QMP conversation whose steps (pid,
 * memdev, mtree, gpa2hva) feed each other and share one report; apart they
 * would pass half-built state around.
 */
import fs from 'node:fs';
import path from 'node:path';
import { QemuError } from '../core/errors.js';
import { guestRam, mainRamRegion, parseFlatView, type FlatRange, type RamRange } from './layout.js';
import { qmpHolderHint } from './libvirt.js';
import { QmpClient, type QemuMonitor } from './qmp.js';

export interface MemoryBackend {
  /** QOM id, e.g. 'mem' (also the name of its RAM block and memory region). */
  readonly id: string;
  /** QOM type, e.g. 'memory-backend-file', 'memory-backend-ram'. */
  readonly type: string;
  readonly size: number;
  readonly share?: boolean;
  /** For memory-backend-file: the file (or directory) given as mem-path. */
  readonly memPath?: string;
  /** Whether we can open memPath for reading, and why not. */
  readonly readable: boolean;
  readonly readableReason: string;
}

export interface QemuDiscovery {
  readonly endpoint: string;
  readonly version: string;
  /** 'running', 'paused', … from query-status. */
  readonly status: string;
  readonly pid?: number;
  /** How the pid was found, or why it was not. */
  readonly pidReason: string;
  readonly backends: readonly MemoryBackend[];
  /** The RAM block that holds guest RAM (e.g. 'mem'). */
  readonly mainBlock?: string;
  /** The backend of the main block, when it is a named backend object. */
  readonly mainBackend?: MemoryBackend;
  readonly layout: readonly RamRange[];
  readonly flat: readonly FlatRange[];
}

/** A RAM range plus where it lives in QEMU's address space. */
export interface HostRamRange extends RamRange {
  /** Host virtual address in the QEMU process of `start`. */
  readonly hva: number;
}

/** Scans at most this many /proc entries and fds, so a huge process table cannot hang us. */
const MAX_PROCS = 20_000;
const MAX_FDS_PER_PROC = 10_000;

/** Listening unix-socket inodes bound at `socketPath` (from /proc/net/unix). */
function unixListenerInodes(socketPath: string): Set<string> {
  const want = new Set([socketPath, path.resolve(socketPath)]);
  try {
    want.add(fs.realpathSync(socketPath));
  } catch {
    // The path may be gone; matching the given string is still worth a try.
  }
  const out = new Set<string>();
  let text: string;
  try {
    text = fs.readFileSync('/proc/net/unix', 'utf8');
  } catch {
    return out;
  }
  for (const line of text.split('\n').slice(1)) {
    // Num RefCount Protocol Flags Type St Inode Path
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    const listening = (parseInt(f[3]!, 16) & 0x10000) !== 0;
    if (listening && want.has(f.slice(7).join(' '))) out.add(f[6]!);
  }
  return out;
}

/** Listening TCP inodes on `port` (from /proc/net/tcp and tcp6). */
function tcpListenerInodes(port: number): Set<string> {
  const out = new Set<string>();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10) continue;
      const local = f[1]!;
      if (f[3] !== '0A') continue; // LISTEN
      if (parseInt(local.slice(local.lastIndexOf(':') + 1), 16) === port) out.add(f[9]!);
    }
  }
  return out;
}

/** Pids that hold one of the socket inodes open. */
function pidsHoldingSockets(inodes: Set<string>, only: (pid: number) => boolean = () => true): number[] {
  if (!inodes.size) return [];
  const links = new Set([...inodes].map((i) => `socket:[${i}]`));
  const pids: number[] = [];
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc');
  } catch {
    return pids;
  }
  let seen = 0;
  for (const e of entries) {
    if (!/^\d+$/.test(e) || ++seen > MAX_PROCS || !only(Number(e))) continue;
    let fds: string[];
    try {
      fds = fs.readdirSync(`/proc/${e}/fd`);
    } catch {
      continue; // Not ours to look at, or gone.
    }
    for (const fd of fds.slice(0, MAX_FDS_PER_PROC)) {
      let target: string;
      try {
        target = fs.readlinkSync(`/proc/${e}/fd/${fd}`);
      } catch {
        continue;
      }
      if (links.has(target)) {
        pids.push(Number(e));
        break;
      }
    }
  }
  return pids;
}

function isQemu(pid: number): boolean {
  try {
    const comm = fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
    if (comm.startsWith('qemu')) return true;
    return path.basename(fs.readlinkSync(`/proc/${pid}/exe`)).startsWith('qemu');
  } catch {
    return false;
  }
}

/**
 * Finds the QEMU process serving a QMP endpoint (`/path.sock`, `unix:/path`,
 * `tcp:host:port`) by looking up the listening socket's inode and the process
 * holding it. Needs permission to read other processes' /proc/<pid>/fd (same
 * user, or root).
 */
export function findQemuPid(endpoint: string): { pid?: number; reason: string } {
  let inodes: Set<string>;
  if (endpoint.startsWith('tcp:')) {
    const port = Number(endpoint.slice(endpoint.lastIndexOf(':') + 1));
    if (!Number.isInteger(port) || port <= 0 || port > 65535) return { reason: `bad port in ${endpoint}` };
    inodes = tcpListenerInodes(port);
  } else {
    inodes = unixListenerInodes(endpoint.startsWith('unix:') ? endpoint.slice(5) : endpoint);
  }
  if (!inodes.size) return { reason: `no listening socket for ${endpoint} in /proc/net (another network namespace?)` };
  // QEMU processes first (a comm read each), every process only when none holds the socket.
  let pids = pidsHoldingSockets(inodes, (p) => p !== process.pid && isQemu(p));
  if (!pids.length) pids = pidsHoldingSockets(inodes).filter((p) => p !== process.pid);
  const qemus = pids.filter(isQemu);
  const pick = qemus.length ? qemus : pids;
  if (pick.length === 1) return { pid: pick[0]!, reason: `process ${pick[0]} holds the listening socket of ${endpoint}` };
  if (pick.length > 1) return { reason: `several processes hold ${endpoint}: ${pick.join(', ')}; name one with pid:` };
  return {
    reason: `no process we can inspect holds ${endpoint}`,
  };
}

interface QomProperty {
  name: string;
  type: string;
}

async function listBackends(qmp: QemuMonitor): Promise<MemoryBackend[]> {
  let memdevs: Array<{ id?: string; size: number; share?: boolean }>;
  try {
    memdevs = await qmp.execute<Array<{ id?: string; size: number; share?: boolean }>>('query-memdev');
  } catch (err) {
    if (qmp.closed) throw err;
    return []; // An old QEMU without query-memdev: no named backends, live read still works.
  }
  if (!Array.isArray(memdevs)) return [];
  let objects: QomProperty[] = [];
  try {
    objects = await qmp.execute<QomProperty[]>('qom-list', { path: '/objects' });
  } catch {
    // Without QOM we still know ids and sizes from query-memdev.
  }
  const out: MemoryBackend[] = [];
  for (const m of memdevs) {
    if (!m.id) continue;
    const child = objects.find((o) => o.name === m.id);
    const type = child ? child.type.replace(/^child<(.*)>$/, '$1') : 'memory-backend';
    let memPath: string | undefined;
    if (type === 'memory-backend-file') {
      try {
        memPath = await qmp.execute<string>('qom-get', { path: `/objects/${m.id}`, property: 'mem-path' });
      } catch {
        memPath = undefined;
      }
    }
    const { readable, reason } = checkReadable(memPath, m.size);
    out.push({
      id: m.id,
      type,
      size: m.size,
      ...(m.share !== undefined ? { share: m.share } : {}),
      ...(memPath !== undefined ? { memPath } : {}),
      readable,
      readableReason: reason,
    });
  }
  return out;
}

/** Whether the backend file can serve reads: it must be a regular file we can read, large enough. */
export function checkReadable(memPath: string | undefined, size: number): { readable: boolean; reason: string } {
  if (memPath === undefined) return { readable: false, reason: 'guest RAM is not in a named file (anonymous memory)' };
  let st: fs.Stats;
  try {
    st = fs.statSync(memPath);
  } catch (err) {
    return { readable: false, reason: `${memPath}: ${(err as NodeJS.ErrnoException).code ?? 'cannot stat'}` };
  }
  if (st.isDirectory()) {
    return { readable: false, reason: `${memPath} is a directory: QEMU created and unlinked a file inside it` };
  }
  if (!st.isFile()) return { readable: false, reason: `${memPath} is not a regular file` };
  if (st.size < size) return { readable: false, reason: `${memPath} holds ${st.size} bytes, less than the ${size}-byte backend` };
  try {
    fs.accessSync(memPath, fs.constants.R_OK);
  } catch {
    return { readable: false, reason: `${memPath}: permission denied (run as its owner or root)` };
  }
  return { readable: true, reason: `${memPath} is readable` };
}

/** Asks QEMU everything above. Each step that fails is reported in the result, not thrown, except QMP itself. */
export async function discoverQemu(qmp: QemuMonitor, endpoint = qmp.endpoint, pidOverride?: { pid?: number; reason: string }): Promise<QemuDiscovery> {
  const v = qmp.greeting?.version?.qemu;
  const version = v ? `${v.major}.${v.minor}.${v.micro}` : 'unknown';
  const status = (await qmp.execute<{ status: string }>('query-status')).status;
  const { pid, reason: pidReason } = pidOverride ?? findQemuPid(endpoint);
  const flat = parseFlatView(await qmp.hmp('info mtree -f'));
  const backends = await listBackends(qmp);
  let mainBlock = mainRamRegion(flat);
  // The machine's memory-backend names guest RAM outright when set.
  try {
    const qomPath = await qmp.execute<string>('qom-get', { path: '/machine', property: 'memory-backend' });
    const id = qomPath.replace(/^\/objects\//, '');
    if (id && flat.some((r) => r.region === id)) mainBlock = id;
  } catch {
    // Older QEMU or -m without a backend: keep the largest RAM region.
  }
  const mainBackend = backends.find((b) => b.id === mainBlock);
  return {
    endpoint,
    version,
    status,
    ...(pid !== undefined ? { pid } : {}),
    pidReason,
    backends,
    ...(mainBlock !== undefined ? { mainBlock } : {}),
    ...(mainBackend ? { mainBackend } : {}),
    layout: guestRam(flat, mainBlock),
    flat,
  };
}

/** Parses one `gpa2hva` answer: `Host virtual address for 0x1000 (mem) is 0x7f...`. */
export function parseGpa2hva(text: string): { region: string; hva: number } | undefined {
  const m = /Host virtual address for 0x[0-9a-f]+ \((.*)\) is 0x([0-9a-f]+)/i.exec(text);
  if (!m) return undefined;
  const hva = Number(BigInt(`0x${m[2]}`));
  return Number.isSafeInteger(hva) ? { region: m[1]!, hva } : undefined;
}

/** Host virtual addresses of each RAM range, asked with HMP `gpa2hva` (one round trip per range). */
export async function hostRanges(qmp: QemuMonitor, layout: readonly RamRange[]): Promise<HostRamRange[]> {
  const out: HostRamRange[] = [];
  for (const r of layout) {
    const text = await qmp.hmp(`gpa2hva 0x${r.start.toString(16)}`);
    const got = parseGpa2hva(text);
    if (!got) throw new QemuError(`QMP ${qmp.endpoint}`, `gpa2hva 0x${r.start.toString(16)} answered ${JSON.stringify(text.trim())}`, {
      hint: 'this QEMU cannot translate guest-physical addresses (HMP gpa2hva needs QEMU ≥ 2.11)',
    });
    if (got.region !== r.block) {
      throw new QemuError(`QMP ${qmp.endpoint}`, `gpa2hva 0x${r.start.toString(16)} is in ${got.region}, expected ${r.block}`, {
        hint: 'the memory map changed while reading it; try again',
      });
    }
    out.push({ ...r, hva: got.hva });
  }
  return out;
}

/**
 * A shared QMP connection. QEMU serves one client per QMP socket at a time,
 * so every source of this process that talks to the same QEMU (a live map
 * wanting registers, a halting wrapper, a monitor-read source) must share one
 * connection: take a lease, release it when done; the last release closes.
 */
/** What a source keeps of its monitor connection: the monitor, and a way to let it go. */
export interface MonitorLease {
  readonly client: QemuMonitor;
  release(): Promise<void>;
}

export interface QmpLease extends MonitorLease {
  readonly client: QmpClient;
  /** Discovery of this QEMU, asked once per connection. */
  discovery(): Promise<QemuDiscovery>;
  release(): Promise<void>;
}

interface PoolEntry {
  client: Promise<QmpClient>;
  refs: number;
  discovery?: Promise<QemuDiscovery>;
}

const pool = new Map<string, PoolEntry>();

/** `unix:/a/b.sock`, `./b.sock` and `/a/b.sock` are one endpoint; tcp endpoints stay as given. */
export function normalizeEndpoint(endpoint: string): string {
  if (endpoint.startsWith('tcp:')) return endpoint;
  return path.resolve(endpoint.startsWith('unix:') ? endpoint.slice(5) : endpoint);
}

/**
 * How long to wait for QEMU's greeting. QEMU queues a second client until the
 * first disconnects, so a short wait turns brief contention into a failure.
 */
function greetingTimeoutMs(): number {
  const v = Number(process.env['VMSIGHT_QMP_TIMEOUT_MS']);
  return Number.isFinite(v) && v > 0 ? v : 10_000;
}

/** True for the ways a busy QMP socket fails: full listen backlog (EAGAIN) or no greeting yet. */
function busy(err: unknown): boolean {
  const cause = (err as { cause?: { code?: string } }).cause;
  return cause?.code === 'EAGAIN' || /no QMP greeting within/.test((err as Error).message);
}

/**
 * Connects, waiting out other clients: QEMU serves one QMP client at a time,
 * queues one more, and refuses the rest with EAGAIN until they are gone.
 */
async function connectPatiently(endpoint: string, timeoutMs: number): Promise<QmpClient> {
  const deadline = Date.now() + timeoutMs;
  let delay = 20;
  for (;;) {
    const left = deadline - Date.now();
    try {
      return await QmpClient.connect(endpoint, { timeoutMs: Math.max(100, left) });
    } catch (err) {
      if (!busy(err) || Date.now() + delay >= deadline) {
        if (busy(err)) {
          throw new QemuError(`QMP ${endpoint}`, `busy: another client held the socket for ${timeoutMs} ms`, {
            hint: endpoint.startsWith('tcp:') ? 'QEMU serves one QMP client at a time; close the other client or raise VMSIGHT_QMP_TIMEOUT_MS' : qmpHolderHint(endpoint),
            cause: err,
          });
        }
        throw err;
      }
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 250);
    }
  }
}

export async function acquireQmp(endpoint: string, timeoutMs = greetingTimeoutMs()): Promise<QmpLease> {
  const key = normalizeEndpoint(endpoint);
  let entry = pool.get(key);
  if (entry) {
    const client = await entry.client.catch(() => undefined);
    if (!client || client.closed) {
      pool.delete(key);
      entry = undefined;
    }
  }
  if (!entry) {
    entry = { client: connectPatiently(key, timeoutMs), refs: 0 };
    pool.set(key, entry);
    entry.client.catch(() => pool.get(key) === entry && pool.delete(key));
  }
  const e = entry;
  const client = await e.client;
  e.refs++;
  let released = false;
  return {
    client,
    discovery: () => (e.discovery ??= discoverQemu(client, key)),
    async release() {
      if (released) return;
      released = true;
      if (--e.refs > 0) return;
      if (pool.get(key) === e) pool.delete(key);
      await client.close();
    },
  };
}

/**
 * Acquires a lease and hands it to `open`, whose result keeps it (and
 * releases it on close); when `open` fails the lease is released here.
 */
export async function openOnQmpLease<T>(endpoint: string, open: (lease: QmpLease) => Promise<T>): Promise<T> {
  const lease = await acquireQmp(endpoint);
  try {
    return await open(lease);
  } catch (err) {
    await lease.release();
    throw err;
  }
}
