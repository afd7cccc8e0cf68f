/**
 * Naming a memory source, and opening the best technique for it.
 *
 * Source names (the `<source>` argument of every command):
 *
 *   PATH                        a memory image on disk: ELF core (QEMU dump-guest-memory), LiME, or raw
 *   file:PATH                   the same, even when PATH looks like something else
 *   NAME | lab:NAME             a running lab guest (`vmsight lab up NAME`): QMP, shm file, pid and gdbstub
 *                               come from its record (a bare NAME that is not an existing file)
 *   qmp:SOCKET                  a running QEMU by its QMP socket (unix path, unix:PATH or tcp:HOST:PORT);
 *                               vmsight finds the pid and RAM file itself
 *   shm:PATH[?qmp=SOCKET]       QEMU's memory-backend-file (e.g. /dev/shm/NAME, share=on); without QMP the
 *                               q35 layout for the file size is assumed
 *   pid:PID?qmp=SOCKET          a QEMU process (live read); QMP locates guest RAM in it
 *   gdb:[HOST:]PORT             QEMU's gdbstub (-gdb tcp::PORT); HOST defaults to 127.0.0.1
 *   libvirt:NAME[?uri=URI]      a libvirt domain (default URI qemu:///system); monitor through virsh
 *                               (see sources/libvirt.ts)
 *
 * Query parameters, after `?`, joined by `&`:
 *   technique=CLASS|NAME        force one technique: a taxonomy class (live-map, live-read, guest-halting,
 *                               halt-snapshot, live-snapshot, debugger-stub, monitor-read, file) or an
 *                               implementation name (qemu-shm, qemu-process, gdb-stub, …)
 *   halting=1                   guest-halting access: pause the guest for each pass (QMP stop/cont)
 *   qmp=, shm=, pid=, gdb=      add what the scheme alone does not say
 *   anything else               passed to the technique (e.g. method=proc-mem for live read, pread=1 for live map)
 *
 * Given a lab guest or a QMP socket, every technique that fits is probed and
 * ranked; the fastest wins (live-map > live-read > debugger-stub >
 * monitor-read), and snapshots are used only when asked for. The choice and
 * its reason are returned for `vmsight info` to print.
 *
 * Longer than ~400 lines on purpose: source naming, the guest-name resolver, probing, ranking and opening are one pipeline a person reads top to bottom.
 */
import fs from 'node:fs';
import { FormatError, MissingFileError, SourceError, UsageError } from '../core/errors.js';
import type { QmpLease } from '../qemu/discover.js';
import type { SourceFactory, SourceTarget } from './source-factory.js';
import type { PhysicalMemory, TechniqueClass } from './types.js';

// The explicit list of techniques (memory/factories.ts, one entry per file in memory/sources/; add new ones there).
import { FACTORIES } from './factories.js';

export { FACTORIES };

const CLASSES: readonly TechniqueClass[] = [
  'live-map',
  'live-read',
  'guest-halting',
  'halt-snapshot',
  'live-snapshot',
  'debugger-stub',
  'monitor-read',
  'file',
];

/** Preference among techniques that fit, fastest first; snapshots are never picked unless asked for. */
const CLASS_ORDER: Partial<Record<TechniqueClass, number>> = {
  file: 0,
  'live-map': 1,
  'live-read': 2,
  'debugger-stub': 3,
  'monitor-read': 4,
};
export const ONLY_WHEN_ASKED: ReadonlySet<TechniqueClass> = new Set(['halt-snapshot', 'live-snapshot']);
/** Techniques that read the running guest, and so can be wrapped in guest-halting access. */
const LIVE: ReadonlySet<TechniqueClass> = new Set(['live-map', 'live-read', 'debugger-stub', 'monitor-read']);

export interface Candidate {
  readonly factory: string;
  readonly class: TechniqueClass;
  readonly ok: boolean;
  readonly rank: number;
  readonly reason: string;
}

export interface OpenedSource {
  readonly memory: PhysicalMemory;
  readonly chosen: { readonly factory: string; readonly class: TechniqueClass; readonly reason: string };
  readonly candidates: readonly Candidate[];
}

/** What a named guest (e.g. a lab guest) gives a source: its endpoints. */
export interface NamedGuest {
  readonly qmpSocket: string;
  /** Every QMP socket it offers, qmpSocket first (QEMU serves one client per socket). */
  readonly qmpSockets: readonly string[];
  readonly shmPath?: string;
  readonly pid?: number;
  readonly gdbPort?: number;
}

/**
 * Turns a guest name into its endpoints, or undefined when no such guest runs. The memory layer knows no
 * lab: the layer above (CLI, library entry, benchmarks, tests) hands one in with setGuestResolver.
 */
export type GuestResolver = (name: string) => NamedGuest | undefined;

let guestResolver: GuestResolver | undefined;

/** Sets the resolver of guest names used by openSource (undefined: names are not resolved). */
export function setGuestResolver(resolver: GuestResolver | undefined): void {
  guestResolver = resolver;
}

/** The endpoints of a named guest, through the resolver the layer above set. */
export function findNamedGuest(name: string): NamedGuest | undefined {
  return guestResolver?.(name);
}

export interface OpenSourceOptions {
  /** Force a technique: a taxonomy class or a factory name. */
  readonly technique?: TechniqueClass | string;
  /** Wrap the chosen live technique in guest-halting access. */
  readonly halting?: boolean;
  /** The factory list (tests substitute their own). */
  readonly factories?: readonly SourceFactory[];
  /** Where the source's warnings go, once per open (default: one `vmsight: warning:` line each on stderr). */
  readonly warn?: (line: string) => void;
}

const warnOnStderr = (line: string) => void process.stderr.write(`vmsight: warning: ${line}\n`);

function bad(spec: string, message: string, hint?: string): UsageError {
  return new UsageError(`source ${JSON.stringify(spec)}: ${message}`, hint ? { hint } : {});
}

function parsePid(spec: string, text: string): number {
  if (!/^\d{1,10}$/.test(text) || Number(text) < 1) throw bad(spec, `pid ${JSON.stringify(text)} is not a process id`);
  return Number(text);
}

function parseGdb(spec: string, text: string): string {
  const m = /^(?:(.+):)?(\d{1,5})$/.exec(text);
  if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) throw bad(spec, `gdbstub address ${JSON.stringify(text)} is not [HOST:]PORT`);
  return `${m[1] ?? '127.0.0.1'}:${m[2]}`;
}

function parseQmp(spec: string, text: string): string {
  if (!text) throw bad(spec, 'empty QMP endpoint');
  if (text.startsWith('tcp:')) {
    const m = /^tcp:(.*):(\d{1,5})$/.exec(text);
    if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) throw bad(spec, `QMP endpoint ${JSON.stringify(text)} is not tcp:HOST:PORT`);
    return `tcp:${m[1] || '127.0.0.1'}:${m[2]}`;
  }
  return text.startsWith('unix:') ? text.slice(5) : text;
}

function parseQuery(spec: string, query: string): Record<string, string> {
  const params: Record<string, string> = {};
  if (!query) return params;
  for (const part of query.split('&')) {
    if (!part) continue;
    const eq = part.indexOf('=');
    const key = eq < 0 ? part : part.slice(0, eq);
    let value: string;
    try {
      value = eq < 0 ? '1' : decodeURIComponent(part.slice(eq + 1));
    } catch {
      throw bad(spec, `parameter ${key} is not URL-encoded correctly`);
    }
    if (!/^[a-z][a-z0-9-]*$/i.test(key)) throw bad(spec, `bad parameter name ${JSON.stringify(key)}`);
    params[key] = value;
  }
  return params;
}

/**
 * A bare source that names no lab guest: a path that does not exist is an unavailable target; one that exists
 * but is no regular file (a QMP socket, a directory) was named the wrong way.
 */
function notAFile(spec: string, body: string): never {
  let st: fs.Stats | undefined;
  try {
    st = fs.statSync(body);
  } catch {
    throw new MissingFileError('memory image', body, { hint: 'give an existing memory image, a lab guest, or a scheme (qmp:, shm:, pid:, gdb:)' });
  }
  if (st.isSocket()) throw bad(spec, 'is a socket, not a memory image', `for the QEMU behind a QMP socket write qmp:${body}`);
  if (st.isDirectory()) throw bad(spec, 'is a directory, not a memory image', 'give the image file inside it');
  throw bad(spec, 'is not a regular file', `read it as a memory image with file:${body}`);
}

/**
 * Parses a source name (see the top of this file). Does not touch the
 * target, except to check whether a bare string names an existing file;
 * lab names are resolved by openSource.
 */
export function parseSourceSpec(spec: string): SourceTarget & { lab?: string; libvirt?: string } {
  if (!spec) throw bad(spec, 'empty source', 'give a memory image path, a lab guest name, or qmp:SOCKET');
  // A plain path that exists is a file, whatever characters it holds.
  if (!/^[a-z]+:/.test(spec) && fs.existsSync(spec) && fs.statSync(spec).isFile()) return { spec, file: spec, params: {} };
  const m = /^([a-z]+):(.*)$/s.exec(spec);
  const scheme = m && ['file', 'lab', 'qmp', 'shm', 'pid', 'gdb', 'libvirt'].includes(m[1]!) ? m[1]! : undefined;
  const rest = scheme ? m![2]! : spec;
  // A file or shm path that exists as written keeps any '?' it holds.
  const whole = (scheme === 'file' || scheme === 'shm') && fs.existsSync(rest);
  const q = whole ? -1 : rest.indexOf('?');
  const body = q < 0 ? rest : rest.slice(0, q);
  const params = parseQuery(spec, q < 0 ? '' : rest.slice(q + 1));
  const t: { -readonly [K in keyof (SourceTarget & { lab?: string; libvirt?: string })]?: (SourceTarget & { lab?: string; libvirt?: string })[K] } = { spec };
  switch (scheme) {
    case 'file':
      if (!body) throw bad(spec, 'file: needs a path');
      t.file = body;
      break;
    case 'lab':
      if (!body) throw bad(spec, 'lab: needs a guest name');
      t.lab = body;
      break;
    case 'qmp':
      t.qmp = parseQmp(spec, body);
      break;
    case 'shm':
      if (!body) throw bad(spec, 'shm: needs the memory-backend-file path');
      t.shm = body;
      break;
    case 'pid':
      t.pid = parsePid(spec, body);
      break;
    case 'gdb':
      t.gdb = parseGdb(spec, body);
      break;
    case 'libvirt':
      // An empty name is allowed here: `vmsight sources libvirt:` lists the domains.
      if (body && !/^[A-Za-z0-9_][A-Za-z0-9_.+:-]{0,63}$/.test(body)) throw bad(spec, `${JSON.stringify(body)} is not a libvirt domain name`);
      t.libvirt = body;
      break;
    default:
      if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,47}$/.test(body)) notAFile(spec, body);
      t.lab = body;
  }
  if (params['qmp'] !== undefined) t.qmp = parseQmp(spec, params['qmp']);
  if (params['shm'] !== undefined) t.shm = params['shm'];
  if (params['pid'] !== undefined) t.pid = parsePid(spec, params['pid']);
  if (params['gdb'] !== undefined) t.gdb = parseGdb(spec, params['gdb']);
  if (scheme === 'pid' && t.qmp === undefined) {
    throw bad(spec, 'pid: needs the QMP socket of that QEMU to locate guest RAM', `write pid:${t.pid}?qmp=/path/to/qmp.sock`);
  }
  t.params = params;
  return t as SourceTarget & { lab?: string; libvirt?: string };
}

/** Turns a lab guest name into the endpoints its record lists; other targets pass through. */
export function resolveSourceTarget(target: SourceTarget & { lab?: string }): SourceTarget {
  if (target.lab === undefined) return target;
  const g = findNamedGuest(target.lab);
  if (!g) {
    throw new SourceError('lab', target.lab, 'no such file and no running lab guest of that name', {
      hint: `start it with \`vmsight lab up ${target.lab}\`, or list guests with \`vmsight lab list\``,
    });
  }
  return {
    spec: target.spec,
    qmp: target.qmp ?? g.qmpSocket,
    shm: target.shm ?? g.shmPath,
    pid: target.pid ?? g.pid,
    ...(target.gdb ? { gdb: target.gdb } : g.gdbPort ? { gdb: `127.0.0.1:${g.gdbPort}` } : {}),
    params: target.params,
  };
}

function matches(f: SourceFactory, technique: string): boolean {
  return f.name === technique || f.class === technique;
}

function order(c: Candidate): number {
  return CLASS_ORDER[c.class] ?? 9;
}

/**
 * Probes every factory against the target; the ones that fit come first,
 * best first. One QMP connection is held meanwhile, so every probe shares it
 * (QEMU serves one QMP client at a time); it is released before returning.
 */
export async function rankTechniques(target: SourceTarget, factories: readonly SourceFactory[] = FACTORIES): Promise<Candidate[]> {
  const out: Candidate[] = [];
  let lease: QmpLease | undefined;
  if (target.qmp) lease = await (await import('../qemu/discover.js')).acquireQmp(target.qmp);
  try {
    if (lease && target.pid !== undefined) await checkPidMatchesQmp(target, lease);
    // One at a time: several probes talk to the same QEMU, and a gdbstub probe may pause it.
    for (const f of factories) {
      let r;
      try {
        r = await f.probe(target);
      } catch (err) {
        r = { ok: false, rank: 0, reason: (err as Error).message };
      }
      out.push({ factory: f.name, class: f.class, ok: r.ok, rank: r.ok ? r.rank : 0, reason: r.reason });
    }
  } finally {
    await lease?.release();
  }
  return out.sort((a, b) => Number(b.ok) - Number(a.ok) || order(a) - order(b) || b.rank - a.rank);
}

/**
 * A pid named beside a QMP socket must be the QEMU behind that socket: otherwise every technique would read
 * the socket's guest (or blame permissions for a process that does not exist).
 */
async function checkPidMatchesQmp(target: SourceTarget, lease: QmpLease): Promise<void> {
  const pid = target.pid!;
  if (!fs.existsSync(`/proc/${pid}`)) {
    throw new SourceError('pid', target.spec, `no process ${pid} is running`, { hint: `give the pid of the QEMU behind ${target.qmp}, or leave pid out` });
  }
  const d = await lease.discovery().catch(() => undefined);
  if (d?.pid !== undefined && d.pid !== pid) {
    throw new SourceError('pid', target.spec, `process ${pid} is not the QEMU behind QMP ${target.qmp} (that QEMU is pid ${d.pid})`, {
      hint: `write pid:${d.pid}?qmp=${target.qmp}, or leave pid out`,
    });
  }
}

function describe(c: Candidate): string {
  return `${c.factory} (${c.class})`;
}

/** Picks the technique to open among the probed candidates, and says why. */
function choose(
  candidates: readonly Candidate[],
  target: SourceTarget,
  technique: string | undefined,
  halting: boolean,
): { pick: Candidate; why: string } {
  const fitting = candidates.filter((c) => c.ok);
  let pick: Candidate | undefined;
  if (technique !== undefined) {
    pick = fitting.find((c) => c.factory === technique || c.class === technique);
    if (!pick) {
      const asked = candidates.filter((c) => c.factory === technique || c.class === technique);
      throw new SourceError(technique, target.spec, `does not fit: ${asked.map((c) => `${c.factory}: ${c.reason}`).join('; ')}`, {
        hint: fitting.length ? `what fits: ${fitting.map(describe).join(', ')}` : 'nothing fits this target',
      });
    }
  } else {
    const eligible = fitting.filter((c) => !ONLY_WHEN_ASKED.has(c.class));
    pick = (halting ? eligible.find((c) => LIVE.has(c.class)) : undefined) ?? eligible[0];
    if (!pick) {
      // A file that no file format accepts is not a memory image: an analysis failure, not an unreachable target.
      if (target.file)
        throw new FormatError(target.file, 'not a memory image vmsight can read', {
          hint: candidates.filter((c) => c.class === 'file').map((c) => `${c.factory}: ${c.reason}`).join('; '),
        });
      throw new SourceError('open', target.spec, 'no technique can read this target', {
        hint: candidates.map((c) => `${c.factory}: ${c.reason}`).join('; '),
      });
    }
  }
  if (halting && !LIVE.has(pick.class)) {
    throw new SourceError('guest-halting', target.spec, `${describe(pick)} does not read a running guest, so halting it means nothing`);
  }
  if (halting && !target.qmp) {
    throw new SourceError('guest-halting', target.spec, 'needs a QMP socket to pause and resume the guest', { hint: 'add ?qmp=SOCKET' });
  }
  const others = fitting.filter((c) => c !== pick).map(describe);
  const why =
    technique !== undefined
      ? `asked for ${technique}: ${pick.reason}`
      : `${pick.reason}${others.length ? `; fastest of ${fitting.length} that fit (also: ${others.join(', ')})` : ''}`;
  return { pick, why };
}

/** Opens the best technique for `spec` (or the one asked for), optionally with guest-halting access. */
export async function openSource(spec: string, options: OpenSourceOptions = {}): Promise<OpenedSource> {
  const parsed = parseSourceSpec(spec);
  if (parsed.libvirt !== undefined) {
    if (!parsed.libvirt) throw bad(spec, 'libvirt: needs a domain name', 'list domains with `vmsight sources libvirt:`');
    const { libvirtTarget, openLibvirt } = await import('./sources/libvirt.js');
    const opened = await openLibvirt(libvirtTarget(spec, parsed.libvirt, parsed.params), {
      ...(options.technique !== undefined ? { technique: options.technique } : {}),
      ...(options.halting !== undefined ? { halting: options.halting } : {}),
    });
    for (const w of opened.memory.warnings ?? []) (options.warn ?? warnOnStderr)(w);
    return opened;
  }
  let target = resolveSourceTarget(parsed);
  // QEMU serves one client per QMP socket: for a lab guest with several, take one nobody holds.
  const sockets = parsed.lab !== undefined && !parsed.qmp ? (findNamedGuest(parsed.lab)?.qmpSockets ?? []) : [];
  const hold = await leaseFreeSocket(sockets);
  if (hold) target = { ...target, qmp: hold.socket, qmpAlternatives: sockets.filter((s) => s !== hold.socket) };
  try {
    return await openResolved(target, options);
  } finally {
    await hold?.lease.release();
  }
}

/** The first of `sockets` whose QMP answers at once (held for the caller), or undefined when all are busy. */
async function leaseFreeSocket(sockets: readonly string[]): Promise<{ socket: string; lease: QmpLease } | undefined> {
  if (sockets.length < 2) return undefined;
  const { acquireQmp } = await import('../qemu/discover.js');
  for (const socket of sockets) {
    try {
      return { socket, lease: await acquireQmp(socket, 300) };
    } catch {
      // busy or gone: try the next one
    }
  }
  return undefined;
}

async function openResolved(target: SourceTarget, options: OpenSourceOptions): Promise<OpenedSource> {
  const factories = options.factories ?? FACTORIES;
  let technique: string | undefined = options.technique ?? target.params['technique'];
  let halting = options.halting ?? ['1', 'true', 'yes', 'on'].includes(target.params['halting'] ?? '');
  if (technique === 'guest-halting') {
    halting = true;
    technique = undefined;
  }
  if (technique !== undefined && !factories.some((f) => matches(f, technique!))) {
    throw new UsageError(`unknown technique ${JSON.stringify(technique)}`, {
      hint: `known: ${[...new Set([...CLASSES, ...factories.map((f) => f.name)])].join(', ')}`,
    });
  }
  const candidates = await rankTechniques(target, factories);
  const { pick, why } = choose(candidates, target, technique, halting);
  const factory = factories.find((f) => f.name === pick.factory)!;
  const memory = await factory.open(target, { halting });
  for (const w of memory.warnings ?? []) (options.warn ?? warnOnStderr)(w);
  if (!halting) return { memory, chosen: { factory: pick.factory, class: pick.class, reason: why }, candidates };
  // The QMP client and the halting wrapper load only for a live target (a cold start on a dump skips them).
  const [{ acquireQmp }, { HaltingMemory, qmpControl }] = await Promise.all([import('../qemu/discover.js'), import('./halting.js')]);
  const control = await acquireQmp(target.qmp!);
  try {
    const halted = await HaltingMemory.open(memory, qmpControl(control.client), () => control.release());
    const reason = `${why}; guest paused for each pass (QMP stop/cont)`;
    return { memory: halted, chosen: { factory: pick.factory, class: 'guest-halting', reason }, candidates };
  } catch (err) {
    await memory.close().catch(() => undefined);
    await control.release();
    throw err;
  }
}
