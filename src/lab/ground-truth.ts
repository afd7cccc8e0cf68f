/**
 * The guest's own view of itself, as printed on the serial console by /init
 * and vmi-init (see scenario/init-script.ts for the protocol), parsed into
 * typed records. Tests compare what vmsight reconstructs from memory against
 * this. The parser is tolerant of boot noise around the block but strict
 * inside it: a section it cannot read is a FormatError naming the section.
 */
import crypto from 'node:crypto';
import { FormatError } from '../core/errors.js';

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

export interface GtMap {
  start: bigint;
  end: bigint;
  perms: string;
  offset: bigint;
  /** 'major:minor' in hex, as printed. */
  dev: string;
  inode: number;
  /** Path or pseudo name ('[heap]', '[stack]'), '' for anonymous. */
  path: string;
}

/** Everything recorded for one scenario (vmi-*) process besides its process row. */
export interface GtProcessDetails {
  fds: GtFd[];
  environ: string[];
  /** Namespace kind → 'net:[4026531840]' etc. */
  ns: Record<string, string>;
  maps: GtMap[];
  cgroup: string[];
}

export type InetProto = 'tcp' | 'tcp6' | 'udp' | 'udp6' | 'raw' | 'raw6';

export interface GtInetSocket {
  proto: InetProto;
  family: 4 | 6;
  localAddress: string;
  localPort: number;
  remoteAddress: string;
  remotePort: number;
  /** Numeric sk_state (0x0A = LISTEN for TCP) and its TCP name. */
  state: number;
  stateName: string;
  txQueue: number;
  rxQueue: number;
  uid: number;
  inode: number;
}

export interface GtUnixSocket {
  refCount: number;
  protocol: number;
  /** __SO_ACCEPTCON (0x10000) marks a listening socket. */
  flags: number;
  listening: boolean;
  /** 1 stream, 2 dgram, 5 seqpacket. */
  type: number;
  /** 1 unconnected, 2 connecting, 3 connected, 4 disconnecting. */
  state: number;
  inode: number;
  path: string;
}

export interface GtModule {
  name: string;
  size: number;
  refcount: number;
  deps: string[];
  state: string;
  address: bigint;
  taint: string;
}

export interface GtMount {
  id: number;
  parentId: number;
  major: number;
  minor: number;
  root: string;
  mountPoint: string;
  options: string;
  optional: string[];
  fsType: string;
  source: string;
  superOptions: string;
}

export interface GtAddress {
  index: number;
  ifname: string;
  family: 'inet' | 'inet6';
  address: string;
  prefixLen: number;
  scope: string;
}

export interface GtLink {
  index: number;
  name: string;
  flags: string[];
  mtu: number;
  linkType: string;
  mac: string;
}

export interface GtKallsymsEntry {
  address: bigint;
  type: string;
  name: string;
}

export interface GtIomemRange {
  start: bigint;
  /** Inclusive, as /proc/iomem prints it. */
  end: bigint;
  name: string;
  /** Nesting level (two spaces of indent per level). */
  depth: number;
}

export interface GtDmesgLine {
  /** Seconds since boot, from the [   1.234567] prefix (undefined when the line had none). */
  time?: number;
  text: string;
  raw: string;
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

// ---------------------------------------------------------------- parsing helpers

const TCP_STATES: Record<number, string> = {
  1: 'ESTABLISHED',
  2: 'SYN_SENT',
  3: 'SYN_RECV',
  4: 'FIN_WAIT1',
  5: 'FIN_WAIT2',
  6: 'TIME_WAIT',
  7: 'CLOSE',
  8: 'CLOSE_WAIT',
  9: 'LAST_ACK',
  10: 'LISTEN',
  11: 'CLOSING',
  12: 'NEW_SYN_RECV',
};

export function tcpStateName(state: number): string {
  return TCP_STATES[state] ?? `UNKNOWN(${state})`;
}

/** IPv6 text form (RFC 5952: lowercase, longest zero run of 2+ groups compressed). */
export function formatIpv6(bytes: Uint8Array): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((bytes[i]! << 8) | bytes[i + 1]!);
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  // IPv4-mapped addresses keep the dotted tail.
  if (bestStart === 0 && bestLen === 5 && groups[5] === 0xffff) {
    return `::ffff:${bytes[12]}.${bytes[13]}.${bytes[14]}.${bytes[15]}`;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

/**
 * Decodes a /proc/net address: the kernel prints each 32-bit word of the
 * network-order address as a host-order (little-endian here) %08X, so the
 * bytes of every word are reversed.
 */
export function decodeProcNetAddress(hex: string): { family: 4 | 6; address: string } {
  if (!/^[0-9A-Fa-f]+$/.test(hex) || (hex.length !== 8 && hex.length !== 32)) throw new RangeError(`bad /proc/net address '${hex}'`);
  const bytes = new Uint8Array(hex.length / 2);
  for (let w = 0; w < hex.length / 8; w++) {
    for (let b = 0; b < 4; b++) bytes[w * 4 + b] = Number.parseInt(hex.slice(w * 8 + (3 - b) * 2, w * 8 + (3 - b) * 2 + 2), 16);
  }
  if (bytes.length === 4) return { family: 4, address: Array.from(bytes).join('.') };
  return { family: 6, address: formatIpv6(bytes) };
}

function fail(section: string, why: string): never {
  throw new FormatError('ground truth', `section '${section}': ${why}`);
}

function int(s: string | undefined, section: string, radix = 10): number {
  const v = s === undefined ? NaN : Number.parseInt(s, radix);
  if (!Number.isFinite(v)) fail(section, `expected a number, got '${s}'`);
  return v;
}

function big(s: string | undefined, section: string): bigint {
  const t = (s ?? '').replace(/^0x/i, '');
  if (!/^[0-9a-fA-F]+$/.test(t)) fail(section, `expected a hex number, got '${s}'`);
  return BigInt(`0x${t}`);
}

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

export function parseInetTable(lines: readonly string[], proto: InetProto): GtInetSocket[] {
  const out: GtInetSocket[] = [];
  for (const line of lines) {
    const t = line.trim();
    if (!t || t.startsWith('sl')) continue;
    const f = t.split(/\s+/);
    // sl: local rem st tx:rx tr:when retrnsmt uid timeout inode ...
    if (f.length < 10) fail(`net/${proto}`, `short line '${t}'`);
    const [lAddr, lPort] = f[1]!.split(':');
    const [rAddr, rPort] = f[2]!.split(':');
    const [tx, rx] = f[4]!.split(':');
    let local, remote;
    try {
      local = decodeProcNetAddress(lAddr ?? '');
      remote = decodeProcNetAddress(rAddr ?? '');
    } catch (e) {
      fail(`net/${proto}`, (e as Error).message);
    }
    const state = int(f[3], `net/${proto}`, 16);
    out.push({
      proto,
      family: local.family,
      localAddress: local.address,
      localPort: int(lPort, `net/${proto}`, 16),
      remoteAddress: remote.address,
      remotePort: int(rPort, `net/${proto}`, 16),
      state,
      stateName: tcpStateName(state),
      txQueue: int(tx, `net/${proto}`, 16),
      rxQueue: int(rx, `net/${proto}`, 16),
      uid: int(f[7], `net/${proto}`),
      inode: int(f[9], `net/${proto}`),
    });
  }
  return out;
}

export function parseUnixTable(lines: readonly string[]): GtUnixSocket[] {
  const out: GtUnixSocket[] = [];
  for (const line of lines) {
    const t = line.trim();
    if (!t || t.startsWith('Num')) continue;
    // "(ptr): RefCount Protocol Flags Type St Inode [Path]"
    const m = /^\S+:\s+([0-9A-Fa-f]+)\s+([0-9A-Fa-f]+)\s+([0-9A-Fa-f]+)\s+([0-9A-Fa-f]+)\s+([0-9A-Fa-f]+)\s+(\d+)(?:\s(.*))?$/.exec(t);
    if (!m) fail('net/unix', `bad line '${t}'`);
    const flags = Number.parseInt(m[3]!, 16);
    out.push({
      refCount: Number.parseInt(m[1]!, 16),
      protocol: Number.parseInt(m[2]!, 16),
      flags,
      listening: (flags & 0x10000) !== 0,
      type: Number.parseInt(m[4]!, 16),
      state: Number.parseInt(m[5]!, 16),
      inode: Number.parseInt(m[6]!, 10),
      path: (m[7] ?? '').trim(),
    });
  }
  return out;
}

export function parseModules(lines: readonly string[]): GtModule[] {
  return lines
    .filter((l) => l.trim())
    .map((l) => {
      const f = l.trim().split(/\s+/);
      if (f.length < 6) fail('modules', `bad line '${l}'`);
      return {
        name: f[0]!,
        size: int(f[1], 'modules'),
        refcount: int(f[2], 'modules'),
        deps: f[3] === '-' ? [] : f[3]!.split(',').filter(Boolean),
        state: f[4]!,
        address: big(f[5], 'modules'),
        taint: f.slice(6).join(' ').replace(/[()]/g, ''),
      };
    });
}

/** Undoes the octal escapes (\040 for space, …) of /proc mount and maps paths. */
function unescapeOctal(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));
}

export function parseMountinfo(lines: readonly string[]): GtMount[] {
  const out: GtMount[] = [];
  for (const l of lines) {
    if (!l.trim()) continue;
    const f = l.trim().split(' ');
    const dash = f.indexOf('-');
    if (dash < 6 || f.length < dash + 3) fail('mountinfo', `bad line '${l}'`);
    const [maj, min] = (f[2] ?? '').split(':');
    out.push({
      id: int(f[0], 'mountinfo'),
      parentId: int(f[1], 'mountinfo'),
      major: int(maj, 'mountinfo'),
      minor: int(min, 'mountinfo'),
      root: unescapeOctal(f[3]!),
      mountPoint: unescapeOctal(f[4]!),
      options: f[5]!,
      optional: f.slice(6, dash),
      fsType: f[dash + 1]!,
      source: unescapeOctal(f[dash + 2]!),
      superOptions: f[dash + 3] ?? '',
    });
  }
  return out;
}

export function parseMaps(lines: readonly string[], section = 'maps'): GtMap[] {
  const out: GtMap[] = [];
  for (const l of lines) {
    if (!l.trim()) continue;
    const m = /^([0-9a-f]+)-([0-9a-f]+)\s+(\S{4})\s+([0-9a-f]+)\s+(\S+)\s+(\d+)\s*(.*)$/.exec(l);
    if (!m) fail(section, `bad line '${l}'`);
    out.push({ start: BigInt(`0x${m[1]}`), end: BigInt(`0x${m[2]}`), perms: m[3]!, offset: BigInt(`0x${m[4]}`), dev: m[5]!, inode: Number(m[6]), path: m[7]!.trim() });
  }
  return out;
}

export function parseIpAddr(lines: readonly string[]): GtAddress[] {
  const out: GtAddress[] = [];
  for (const l of lines) {
    const m = /^(\d+):\s+(\S+)\s+(inet6?)\s+([0-9a-fA-F.:]+)\/(\d+)(?:.*?\bscope\s+(\S+))?/.exec(l.trim());
    if (!m) continue;
    out.push({ index: Number(m[1]), ifname: m[2]!, family: m[3] as 'inet' | 'inet6', address: m[4]!, prefixLen: Number(m[5]), scope: m[6] ?? '' });
  }
  return out;
}

export function parseIpLink(lines: readonly string[]): GtLink[] {
  const out: GtLink[] = [];
  for (const l of lines) {
    const m = /^(\d+):\s+([^:@\s]+)(?:@\S+)?:\s+<([^>]*)>\s+mtu\s+(\d+).*?link\/(\S+)(?:\s+([0-9a-f:]{17}))?/.exec(l.trim());
    if (!m) continue;
    out.push({ index: Number(m[1]), name: m[2]!, flags: m[3] ? m[3].split(',') : [], mtu: Number(m[4]), linkType: m[5]!, mac: m[6] ?? '' });
  }
  return out;
}

export function parseIomem(lines: readonly string[]): GtIomemRange[] {
  const out: GtIomemRange[] = [];
  for (const l of lines) {
    const m = /^(\s*)([0-9a-fA-F]+)-([0-9a-fA-F]+) : (.*)$/.exec(l);
    if (!m) continue;
    out.push({ start: BigInt(`0x${m[2]}`), end: BigInt(`0x${m[3]}`), name: m[4]!.trim(), depth: Math.floor(m[1]!.length / 2) });
  }
  return out;
}

export function parseDmesg(lines: readonly string[]): GtDmesgLine[] {
  return lines
    .filter((l) => l.length > 0)
    .map((raw) => {
      const m = /^\[\s*(\d+\.\d+)\]\s?(.*)$/.exec(raw);
      return m ? { time: Number(m[1]), text: m[2]!, raw } : { text: raw, raw };
    });
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
