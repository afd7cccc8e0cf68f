/**
 * The built-in rule kinds. Each is a function from a plain config object to a Rule, usable from TypeScript
 * directly or through a policy file (load.ts validates the file into these configs).
 *
 * Event facts read (all optional; a missing fact never matches an allowlist entry that asks for it):
 * process-start/exec: process.comm, process.argv[0], data.exe or data.path, process.uid, data.kthread;
 * socket-listen: data.local (or localAddress), data.localPort, process.comm or data.comms; cred-change: before/after
 * uid, euid and capability sets (keys starting with 'cap' or named effective/permitted/inheritable/ambient/
 * bounding, as hex strings, numbers or lists of names); module-load: data.name.
 */
import { BlockList, isIP } from 'node:net';
import type { EventType, EventValue, MonitorEvent, Severity } from '../events.js';
import { alertFor, type AlertDraft, type Rule } from './types.js';

// ---- matching helpers ------------------------------------------------------------------------------------

/** Glob with `*` (any run) and `?` (one character); anything else literal. Whole-string match. */
export function globMatcher(pattern: string): (s: string) => boolean {
  if (!/[*?]/.test(pattern)) return (s) => s === pattern;
  const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*+/g, '.*').replace(/\?/g, '.')}$`, 's');
  return (s) => re.test(s);
}

/** One allowlist entry: every field given must match (comm, path and uid are each a value or a list). */
export interface ProcessPattern {
  readonly comm?: string | readonly string[];
  /** Executable path or argv[0], glob. */
  readonly path?: string | readonly string[];
  readonly uid?: number | readonly number[];
}

const list = <T>(v: T | readonly T[] | undefined): readonly T[] | undefined => (v === undefined ? undefined : Array.isArray(v) ? (v as readonly T[]) : [v as T]);

function str(v: EventValue | undefined): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/** The executable facts of an event's process: comm, path candidates (exe, argv[0]) and uid. */
function processFacts(e: MonitorEvent): { comm?: string; paths: string[]; uid?: number } {
  const paths = [str(e.data?.['exe']), str(e.data?.['path']), e.process?.argv?.[0]].filter((p): p is string => p !== undefined && p !== '');
  return {
    ...(e.process?.comm !== undefined ? { comm: e.process.comm } : {}),
    paths,
    ...(e.process?.uid !== undefined ? { uid: e.process.uid } : {}),
  };
}

export function processMatcher(p: ProcessPattern): (e: MonitorEvent) => boolean {
  const comms = list(p.comm)?.map(globMatcher);
  const paths = list(p.path)?.map(globMatcher);
  const uids = list(p.uid);
  return (e) => {
    const f = processFacts(e);
    if (comms && (f.comm === undefined || !comms.some((m) => m(f.comm!)))) return false;
    if (paths && !f.paths.some((x) => paths.some((m) => m(x)))) return false;
    if (uids && (f.uid === undefined || !uids.includes(f.uid))) return false;
    return true;
  };
}

/** Kernel threads: flagged by the watcher, or kthreadd (pid 2) and its children, or the idle task. */
export function isKernelThread(e: MonitorEvent): boolean {
  if (e.data?.['kthread'] === true) return true;
  const p = e.process;
  return p !== undefined && (p.pid === 0 || p.pid === 2 || p.ppid === 2);
}

function who(e: MonitorEvent): string {
  const p = e.process;
  if (!p) return 'unknown process';
  const f = processFacts(e);
  const extra = [f.paths[0], f.uid === undefined ? undefined : `uid ${f.uid}`].filter((x) => x !== undefined).join(', ');
  return `${p.pid}/${p.comm ?? '?'}${extra ? ` (${extra})` : ''}`;
}

interface Base {
  readonly name: string;
  readonly severity?: Severity;
  readonly description?: string;
}

function makeRule(base: Base, severity: Severity, evaluate: (rule: Rule, e: MonitorEvent) => AlertDraft | undefined): Rule {
  const rule: Rule = {
    name: base.name,
    severity: base.severity ?? severity,
    ...(base.description !== undefined ? { description: base.description } : {}),
    evaluate: (e) => evaluate(rule, e),
  };
  return rule;
}

// ---- process allowlist -----------------------------------------------------------------------------------

export interface ProcessAllowlistConfig extends Base {
  /** A process is allowed when it matches any entry. */
  readonly allow: readonly ProcessPattern[];
  /** Kernel threads are exempt unless this is false (default true). */
  readonly ignoreKernelThreads?: boolean;
  /** Which events are judged (default process-start and process-exec). */
  readonly events?: readonly ('process-start' | 'process-exec')[];
}

export function processAllowlist(c: ProcessAllowlistConfig): Rule {
  const allowed = c.allow.map(processMatcher);
  const types = new Set<EventType>(c.events ?? ['process-start', 'process-exec']);
  const ignoreKthreads = c.ignoreKernelThreads ?? true;
  return makeRule(c, 'medium', (rule, e) => {
    if (!types.has(e.type)) return undefined;
    if (ignoreKthreads && isKernelThread(e)) return undefined;
    if (allowed.some((m) => m(e))) return undefined;
    return alertFor(rule, e, `process ${who(e)} is not in the allowlist`);
  });
}

// ---- forbidden listeners ---------------------------------------------------------------------------------

export interface PortRange {
  readonly from: number;
  readonly to: number;
}

export interface ForbiddenListenersConfig extends Base {
  /** Forbidden local ports (any when omitted). */
  readonly ports?: readonly PortRange[];
  /** Forbidden local addresses or CIDR subnets (any when omitted); `0.0.0.0` and `::` mean "all interfaces". */
  readonly addresses?: readonly string[];
  /** Only listeners owned by these comms (globs) are forbidden (any owner when omitted). */
  readonly comm?: readonly string[];
}

function addressList(addresses: readonly string[]): (a: string) => boolean {
  const block = new BlockList();
  for (const a of addresses) {
    const [ip, bits] = a.split('/');
    const family = isIP(ip!) === 6 ? 'ipv6' : 'ipv4';
    if (bits === undefined) block.addAddress(ip!, family);
    else block.addSubnet(ip!, Number(bits), family);
  }
  return (a) => {
    const bare = a.replace(/^\[|\]$/g, '').replace(/%.*$/, '');
    const v = isIP(bare);
    if (v === 0) return false;
    return block.check(bare, v === 6 ? 'ipv6' : 'ipv4');
  };
}

export function forbiddenListeners(c: ForbiddenListenersConfig): Rule {
  const addressForbidden = c.addresses ? addressList(c.addresses) : undefined;
  const comms = c.comm?.map(globMatcher);
  return makeRule(c, 'high', (rule, e) => {
    if (e.type !== 'socket-listen') return undefined;
    const port = e.data?.['localPort'];
    const addr = str(e.data?.['local']) ?? str(e.data?.['localAddress']);
    if (c.ports) {
      if (typeof port !== 'number' || !c.ports.some((r) => port >= r.from && port <= r.to)) return undefined;
    }
    if (addressForbidden && (addr === undefined || !addressForbidden(addr))) return undefined;
    if (comms) {
      const owners = [e.process?.comm, ...(Array.isArray(e.data?.['comms']) ? (e.data!['comms'] as EventValue[]) : [str(e.data?.['comms'])])]
        .flatMap((x) => (typeof x === 'string' ? x.split(',') : []))
        .filter((x) => x !== '');
      if (!owners.some((o) => comms.some((m) => m(o)))) return undefined;
    }
    const where = `${addr ?? '*'}:${typeof port === 'number' ? port : '*'}`;
    return alertFor(rule, e, `forbidden listener on ${where}${e.process ? ` by ${who(e)}` : ''}`, { localAddress: addr ?? null, localPort: typeof port === 'number' ? port : null });
  });
}

// ---- privilege escalation --------------------------------------------------------------------------------

export interface PrivilegeEscalationConfig extends Base {
  /** Processes allowed to change credentials this way (e.g. sudo, su, sshd). */
  readonly except?: readonly ProcessPattern[];
  /** Whether added capabilities count (default true). */
  readonly capabilities?: boolean;
}

const CAP_NAMES = new Set(['effective', 'permitted', 'inheritable', 'ambient', 'bounding']);

function isCapKey(k: string): boolean {
  return k.toLowerCase().startsWith('cap') || CAP_NAMES.has(k);
}

/** Capability bits or names in `after` and not in `before`, as text; undefined when none were added. */
function addedCaps(before: EventValue | undefined, after: EventValue | undefined): string | undefined {
  const asBits = (v: EventValue | undefined): bigint | undefined => {
    if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return BigInt(v);
    if (typeof v === 'string' && /^(0x)?[0-9a-f]{1,32}$/i.test(v)) return BigInt(v.startsWith('0x') || v.startsWith('0X') ? v : `0x${v}`);
    return undefined;
  };
  const b = asBits(before);
  const a = asBits(after);
  if (a !== undefined && b !== undefined) {
    const added = a & ~b;
    return added === 0n ? undefined : `0x${added.toString(16)}`;
  }
  if (Array.isArray(after)) {
    const had = new Set(Array.isArray(before) ? before.map(String) : []);
    const added = after.map(String).filter((x) => !had.has(x));
    return added.length ? added.join(',') : undefined;
  }
  return undefined;
}

export function privilegeEscalation(c: PrivilegeEscalationConfig): Rule {
  const except = (c.except ?? []).map(processMatcher);
  const caps = c.capabilities ?? true;
  return makeRule(c, 'critical', (rule, e) => {
    if (e.type !== 'cred-change' || !e.before || !e.after) return undefined;
    const reasons: string[] = [];
    for (const k of ['uid', 'euid', 'suid', 'fsuid']) {
      const b = e.before[k];
      const a = e.after[k];
      if (a === 0 && typeof b === 'number' && b !== 0) reasons.push(`${k} ${b}→0`);
    }
    if (caps) {
      for (const k of Object.keys(e.after)) {
        if (!isCapKey(k)) continue;
        const added = addedCaps(e.before[k], e.after[k]);
        if (added !== undefined) reasons.push(`${k} gained ${added}`);
      }
    }
    if (reasons.length === 0 || except.some((m) => m(e))) return undefined;
    return alertFor(rule, e, `privilege escalation without exec by ${who(e)}: ${reasons.join(', ')}`);
  });
}

// ---- kernel integrity ------------------------------------------------------------------------------------

export const INTEGRITY_CHECKS = ['syscall-hook', 'idt-change', 'hidden-process', 'hidden-module', 'module-load'] as const;
export type IntegrityCheck = (typeof INTEGRITY_CHECKS)[number];

export interface KernelIntegrityConfig extends Base {
  /** Which changes alert (default: all; module-load only when `modules` is given). */
  readonly checks?: readonly IntegrityCheck[];
  /** Modules allowed to load (globs); any other module-load alerts. */
  readonly modules?: readonly string[];
}

export function kernelIntegrity(c: KernelIntegrityConfig): Rule {
  const checks = new Set<EventType>(c.checks ?? INTEGRITY_CHECKS.filter((k) => k !== 'module-load' || c.modules !== undefined));
  const modules = c.modules?.map(globMatcher);
  return makeRule(c, 'critical', (rule, e) => {
    if (!checks.has(e.type)) return undefined;
    const name = str(e.data?.['name']) ?? str(e.data?.['module']);
    switch (e.type) {
      case 'module-load':
        if (name !== undefined && modules?.some((m) => m(name))) return undefined;
        return alertFor(rule, e, `module ${name ?? e.key ?? '?'} loaded and is not in the allowlist`);
      case 'syscall-hook': {
        const sym = str(e.data?.['symbol']) ?? str(e.before?.['symbol']) ?? `entry ${String(e.data?.['index'] ?? e.key ?? '?')}`;
        const target = e.data?.['target'] ?? e.after?.['module'] ?? e.after?.['symbol'] ?? e.after?.['address'] ?? e.data?.['module'];
        return alertFor(rule, e, `system call ${sym} hooked${target === undefined || target === null ? '' : ` (now ${String(target)})`}`);
      }
      case 'idt-change':
        return alertFor(rule, e, `IDT gate ${String(e.data?.['vector'] ?? e.key ?? '?')} changed`);
      case 'hidden-process':
        return alertFor(rule, e, `hidden process ${who(e)}`);
      case 'hidden-module':
        return alertFor(rule, e, `hidden module ${name ?? e.key ?? '?'}`);
      default:
        return undefined;
    }
  });
}
