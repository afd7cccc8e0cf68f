/**
 * Parsers for the text formats of /proc and friends that the lab guest prints
 * as ground truth: /proc/net/{tcp,udp,raw}[6] and unix, /proc/modules,
 * mountinfo, maps, iomem, `ip -o addr|link` and dmesg. Each returns typed
 * records; a line that cannot be read is a FormatError naming the section.
 */
import { FormatError } from '../core/errors.js';

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

/** Internal to the ground-truth parsers: a FormatError for one section. */
export function fail(section: string, why: string): never {
  throw new FormatError('ground truth', `section '${section}': ${why}`);
}

export function int(s: string | undefined, section: string, radix = 10): number {
  const v = s === undefined ? NaN : Number.parseInt(s, radix);
  if (!Number.isFinite(v)) fail(section, `expected a number, got '${s}'`);
  return v;
}

export function big(s: string | undefined, section: string): bigint {
  const t = (s ?? '').replace(/^0x/i, '');
  if (!/^[0-9a-fA-F]+$/.test(t)) fail(section, `expected a hex number, got '${s}'`);
  return BigInt(`0x${t}`);
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
