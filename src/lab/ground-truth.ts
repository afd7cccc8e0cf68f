/**
 * The guest's own view of itself, as printed on the serial console by /init
 * and vmi-init (see scenario/init-script.ts for the protocol), parsed into
 * typed records. Tests compare what vmsight reconstructs from memory against
 * this. The parser is tolerant of boot noise around the block but strict
 * inside it: a section it cannot read is a FormatError naming the section.
 */
import crypto from 'node:crypto';
import { FormatError } from '../core/errors.js';
import {
  big,
  fail,
  int,
  parseDmesg,
  parseInetTable,
  parseIomem,
  parseIpAddr,
  parseIpLink,
  parseMaps,
  parseModules,
  parseMountinfo,
  parseUnixTable,
  type GtAddress,
  type GtDmesgLine,
  type GtInetSocket,
  type GtIomemRange,
  type GtLink,
  type GtMap,
  type GtModule,
  type GtMount,
  type GtUnixSocket,
} from './procfs.js';

export {
  decodeProcNetAddress,
  formatIpv6,
  tcpStateName,
  parseDmesg,
  parseInetTable,
  parseIomem,
  parseIpAddr,
  parseIpLink,
  parseMaps,
  parseModules,
  parseMountinfo,
  parseUnixTable,
  type InetProto,
  type GtAddress,
  type GtDmesgLine,
  type GtInetSocket,
  type GtIomemRange,
  type GtLink,
  type GtMap,
  type GtModule,
  type GtMount,
  type GtUnixSocket,
} from './procfs.js';

export interface GtThread {
  tid: number;
  comm: string;
  state: string;
}

export interface GtProcess {
  pid: number;
  ppid: number;
  comm: string;
  /** One letter, as in /proc/<pid>/stat (R, S, D, I, Z, T…). */
  state: string;
  /** task_struct.flags as /proc/<pid>/stat shows them. */
  flags: number;
  kthread: boolean;
  /** Clock ticks after boot (/proc/<pid>/stat field 22). */
  starttime: number;
  /** [real, effective, saved, fs] */
  uid: number[];
  gid: number[];
  capInh: string;
  capPrm: string;
  capEff: string;
  capBnd: string;
  cmdline: string[];
  threads: GtThread[];
}

export interface GtFd {
  fd: number;
  /** readlink of /proc/<pid>/fd/<n>: a path, 'socket:[inode]', 'pipe:[inode]', 'anon_inode:…'. */
  target: string;
  pos?: number;
  /** Octal open flags from fdinfo, e.g. '0100002'. */
  flags?: string;
}

export interface GtProcessDetails {
  fds: GtFd[];
  environ: string[];
  /** Namespace kind → 'net:[4026531840]' etc. */
  ns: Record<string, string>;
  maps: GtMap[];
  cgroup: string[];
}

export interface GtKallsymsEntry {
  address: bigint;
  type: string;
  name: string;
}

/** A /proc/kallsyms line with a [tag]: a module's symbol (tag = module name), or bpf/ftrace. */
export interface GtTaggedKallsymsEntry extends GtKallsymsEntry {
  tag: string;
}

export interface GroundTruth {
  /** `uname -r` */
  release: string;
  /** /proc/version: the kernel banner (linux_banner without its trailing newline). */
  banner: string;
  cmdline: string;
  hostname: string;
  kallsyms: {
    /** Lines of /proc/kallsyms without a [module] tag (see kallsymsDigest). */
    coreCount: number;
    coreSha256: string;
    first?: GtKallsymsEntry;
    last?: GtKallsymsEntry;
    /** Lines with a [module]-style tag (modules, bpf, ftrace trampolines). */
    taggedCount: number;
    /** Those lines themselves, with their tag (absent in consoles of older lab images). */
    tagged?: GtTaggedKallsymsEntry[];
    /** Spot values by name (first occurrence; see KALLSYMS_SPOTS). */
    spots: Record<string, GtKallsymsEntry>;
  };
  /** /sys/kernel/vmcoreinfo: physical address and size of the VMCOREINFO ELF note. */
  vmcoreinfo?: { paddr: bigint; size: number };
  /** The fw_cfg etc/vmcoreinfo entry the guest wrote for QEMU (qemu_fw_cfg loaded). */
  fwCfgVmcoreinfo?: { hostFormat: number; guestFormat: number; size: number; paddr: bigint };
  /** CPU feature flags of cpu0 (/proc/cpuinfo): 'la57' means 5-level paging is available and used by Debian kernels. */
  cpuFlags: string[];
  /** /proc/iomem as root sees it: RAM ranges, 'Kernel code', PCI windows. */
  iomem: GtIomemRange[];
  addresses: GtAddress[];
  links: GtLink[];
  /** The last ~30 lines of the kernel log at ground-truth time. */
  dmesg: GtDmesgLine[];
  processes: GtProcess[];
  /** Keyed by pid: fds, environ, namespaces, maps and cgroup of each vmi-* process. */
  details: Map<number, GtProcessDetails>;
  net: { tcp: GtInetSocket[]; tcp6: GtInetSocket[]; udp: GtInetSocket[]; udp6: GtInetSocket[]; raw: GtInetSocket[]; raw6: GtInetSocket[]; unix: GtUnixSocket[] };
  modules: GtModule[];
  /** /proc/1/mountinfo */
  mounts: GtMount[];
  uptime: { seconds: number; idle: number };
  /** Guest uptime printed with VMI-BOOTED and VMI-READY. */
  bootedUptime?: number;
  readyUptime?: number;
  /** VMI-WARN lines: parts of the scenario that did not come up. */
  warnings: string[];
}

// ---------------------------------------------------------------- kallsyms digest

/**
 * The text the guest hashes for `kallsyms.coreSha256`: every line of
 * /proc/kallsyms that carries no `[module]` tag, in /proc/kallsyms order
 * (which is kallsyms table order), each formatted exactly as the kernel prints
 * it: 16 lowercase hex digits of the address, a space, the type letter as
 * stored, a space, the name, a newline (`"%016lx %c %s\n"`). The guest's
 * vmi-ksyms computes the same as `grep -v '\[' /proc/kallsyms | sha256sum`,
 * as root so addresses are real. Host side: decode the kallsyms table in
 * table order and pass every entry here.
 */
export function kallsymsLine(e: GtKallsymsEntry): string {
  return `${e.address.toString(16).padStart(16, '0')} ${e.type} ${e.name}\n`;
}

/** sha256 (hex) and count of the core-kernel symbols, comparable with GroundTruth.kallsyms. */
export function kallsymsDigest(entries: Iterable<GtKallsymsEntry>): { sha256: string; count: number } {
  const h = crypto.createHash('sha256');
  let count = 0;
  let batch = '';
  for (const e of entries) {
    batch += kallsymsLine(e);
    count++;
    if (batch.length > 65536) {
      h.update(batch);
      batch = '';
    }
  }
  h.update(batch);
  return { sha256: h.digest('hex'), count };
}

// ---------------------------------------------------------------- parsing

function parseJson(line: string, section: string): unknown {
  try {
    return JSON.parse(line);
  } catch {
    return fail(section, `not JSON: ${line.slice(0, 80)}`);
  }
}

export function parseKallsymsLine(line: string, section = 'kallsyms'): GtKallsymsEntry {
  const m = /^([0-9a-fA-F]{1,16}) (\S) (\S+)/.exec(line.trim());
  if (!m) fail(section, `bad kallsyms line '${line}'`);
  return { address: BigInt(`0x${m[1]}`), type: m[2]!, name: m[3]! };
}

export function parseTaggedKallsymsLine(line: string, section = 'kallsyms-tagged'): GtTaggedKallsymsEntry {
  const m = /^([0-9a-fA-F]{1,16}) (\S) (\S+)\s+\[([^\]]+)\]$/.exec(line.trim());
  if (!m) fail(section, `bad kallsyms line '${line}'`);
  return { address: BigInt(`0x${m[1]}`), type: m[2]!, name: m[3]!, tag: m[4]! };
}

// ---------------------------------------------------------------- the document

interface Section {
  name: string;
  arg?: string;
  lines: string[];
}

/** Splits the last VMI-GT-BEGIN … VMI-GT-END block of a console log into sections. */
function splitSections(consoleText: string): { sections: Section[]; before: string[]; after: string[] } {
  const lines = consoleText.replace(/\r/g, '').split('\n');
  let begin = -1;
  for (let i = lines.length - 1; i >= 0; i--) {
    if (lines[i]!.startsWith('VMI-GT-BEGIN')) {
      begin = i;
      break;
    }
  }
  if (begin < 0) throw new FormatError('ground truth', 'console log has no VMI-GT-BEGIN marker (guest not ready, or not a lab guest)');
  const version = lines[begin]!.split(/\s+/)[1];
  if (version !== 'v1') throw new FormatError('ground truth', `unsupported ground-truth version '${version ?? ''}' (want v1)`);
  let end = -1;
  for (let i = begin + 1; i < lines.length; i++) {
    if (lines[i] === 'VMI-GT-END') {
      end = i;
      break;
    }
  }
  if (end < 0) throw new FormatError('ground truth', 'console log has VMI-GT-BEGIN but no VMI-GT-END (guest still printing, or it died)');
  const sections: Section[] = [];
  for (let i = begin + 1; i < end; i++) {
    const l = lines[i]!;
    if (l.startsWith('@@ ')) {
      const [name, arg] = l.slice(3).trim().split(/\s+/, 2);
      sections.push({ name: name!, ...(arg !== undefined ? { arg } : {}), lines: [] });
    } else if (sections.length) sections[sections.length - 1]!.lines.push(l);
  }
  return { sections, before: lines.slice(0, begin), after: lines.slice(end + 1) };
}

function asProcess(v: unknown): GtProcess {
  const p = v as Partial<GtProcess>;
  if (typeof p?.pid !== 'number' || typeof p.comm !== 'string' || !Array.isArray(p.threads) || !Array.isArray(p.cmdline)) {
    fail('procs', `bad process record ${JSON.stringify(v).slice(0, 80)}`);
  }
  return p as GtProcess;
}

/** Parses the ground truth out of a whole console log. */
export function parseGroundTruth(consoleText: string): GroundTruth {
  const { sections, before, after } = splitSections(consoleText);
  const one = (name: string): string[] => sections.find((s) => s.name === name)?.lines ?? [];
  const text = (name: string): string => one(name).join('\n').trim();
  const need = (name: string): string[] => {
    const s = sections.find((x) => x.name === name);
    if (!s) fail(name, 'missing');
    return s.lines;
  };

  const digest = new Map<string, string>();
  for (const l of need('kallsyms-digest')) {
    const i = l.indexOf(' ');
    if (i > 0) digest.set(l.slice(0, i), l.slice(i + 1));
  }
  const spots: Record<string, GtKallsymsEntry> = {};
  for (const l of one('kallsyms-spots')) {
    if (!l.trim()) continue;
    const e = parseKallsymsLine(l, 'kallsyms-spots');
    if (!(e.name in spots)) spots[e.name] = e;
  }
  const coreSha256 = digest.get('sha256') ?? '';
  if (!/^[0-9a-f]{64}$/.test(coreSha256)) fail('kallsyms-digest', `bad sha256 '${coreSha256}'`);
  const first = digest.get('first');
  const last = digest.get('last');

  let vmcoreinfo: GroundTruth['vmcoreinfo'];
  const vm = text('vmcoreinfo').split(/\s+/);
  if (vm.length === 2 && vm[0]) vmcoreinfo = { paddr: big(vm[0], 'vmcoreinfo'), size: int(vm[1], 'vmcoreinfo', 16) };
  let fwCfgVmcoreinfo: GroundTruth['fwCfgVmcoreinfo'];
  const fw = text('fw-cfg-vmcoreinfo');
  if (/^[0-9a-f]{32}$/.test(fw)) {
    const b = Buffer.from(fw, 'hex');
    fwCfgVmcoreinfo = { hostFormat: b.readUInt16LE(0), guestFormat: b.readUInt16LE(2), size: b.readUInt32LE(4), paddr: b.readBigUInt64LE(8) };
  }

  const processes = need('procs')
    .filter((l) => l.trim())
    .map((l) => asProcess(parseJson(l, 'procs')));

  const details = new Map<number, GtProcessDetails>();
  const detail = (pid: number): GtProcessDetails => {
    let d = details.get(pid);
    if (!d) {
      d = { fds: [], environ: [], ns: {}, maps: [], cgroup: [] };
      details.set(pid, d);
    }
    return d;
  };
  for (const s of sections) {
    if (!['fds', 'environ', 'ns', 'maps', 'cgroup'].includes(s.name)) continue;
    const pid = int(s.arg, s.name);
    const d = detail(pid);
    const body = s.lines.filter((l) => l.trim());
    if (s.name === 'fds') d.fds = body.map((l) => parseJson(l, `fds ${pid}`) as GtFd);
    else if (s.name === 'environ') d.environ = body.length ? (parseJson(body[0]!, `environ ${pid}`) as string[]) : [];
    else if (s.name === 'ns') d.ns = body.length ? (parseJson(body[0]!, `ns ${pid}`) as Record<string, string>) : {};
    else if (s.name === 'maps') d.maps = parseMaps(body, `maps ${pid}`);
    else d.cgroup = body;
  }

  const up = text('uptime').split(/\s+/);
  const markerUptime = (lines: string[], marker: string): number | undefined => {
    const l = lines.find((x) => x.startsWith(marker));
    const m = l ? /uptime=([\d.]+)/.exec(l) : null;
    return m ? Number(m[1]) : undefined;
  };
  const bootedUptime = markerUptime(before, 'VMI-BOOTED');
  const readyUptime = markerUptime(after, 'VMI-READY');

  return {
    release: text('uname'),
    banner: text('version'),
    cmdline: text('cmdline'),
    hostname: text('hostname'),
    kallsyms: {
      coreCount: int(digest.get('count'), 'kallsyms-digest'),
      coreSha256,
      ...(first ? { first: parseKallsymsLine(first, 'kallsyms-digest') } : {}),
      ...(last ? { last: parseKallsymsLine(last, 'kallsyms-digest') } : {}),
      taggedCount: Number.parseInt(text('kallsyms-modules'), 10) || 0,
      ...(sections.some((x) => x.name === 'kallsyms-tagged')
        ? { tagged: one('kallsyms-tagged').filter((l) => l.trim()).map((l) => parseTaggedKallsymsLine(l)) }
        : {}),
      spots,
    },
    ...(vmcoreinfo ? { vmcoreinfo } : {}),
    ...(fwCfgVmcoreinfo ? { fwCfgVmcoreinfo } : {}),
    cpuFlags: text('cpu-flags').replace(/^flags\s*:\s*/, '').split(/\s+/).filter(Boolean),
    iomem: parseIomem(one('iomem')),
    addresses: parseIpAddr(one('ip-addr')),
    links: parseIpLink(one('ip-link')),
    dmesg: parseDmesg(one('dmesg')),
    processes,
    details,
    net: {
      tcp: parseInetTable(one('net/tcp'), 'tcp'),
      tcp6: parseInetTable(one('net/tcp6'), 'tcp6'),
      udp: parseInetTable(one('net/udp'), 'udp'),
      udp6: parseInetTable(one('net/udp6'), 'udp6'),
      raw: parseInetTable(one('net/raw'), 'raw'),
      raw6: parseInetTable(one('net/raw6'), 'raw6'),
      unix: parseUnixTable(one('net/unix')),
    },
    modules: parseModules(one('modules')),
    mounts: parseMountinfo(one('mountinfo')),
    uptime: { seconds: Number(up[0]) || 0, idle: Number(up[1]) || 0 },
    ...(bootedUptime !== undefined ? { bootedUptime } : {}),
    ...(readyUptime !== undefined ? { readyUptime } : {}),
    warnings: before.filter((l) => l.startsWith('VMI-WARN')).map((l) => l.slice(9)),
  };
}

// ---------------------------------------------------------------- lookups for tests

/** The (first) process whose comm is `comm`. */
export function processByComm(gt: GroundTruth, comm: string): GtProcess | undefined {
  return gt.processes.find((p) => p.comm === comm);
}

/** All sockets (inet and unix inodes) a process holds, from its fd list. */
export function socketInodes(gt: GroundTruth, pid: number): number[] {
  const d = gt.details.get(pid);
  if (!d) return [];
  const out: number[] = [];
  for (const f of d.fds) {
    const m = /^socket:\[(\d+)\]$/.exec(f.target);
    if (m) out.push(Number(m[1]));
  }
  return out;
}
