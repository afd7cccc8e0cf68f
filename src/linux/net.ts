/**
 * Network state from kernel memory: sockets (struct socket -> struct sock,
 * sock_common addresses/ports/state, owning pids via the fd tables), unix
 * socket paths, network namespaces and their interfaces with IPv4/IPv6
 * addresses.
 *
 * sk_protocol was a bitfield before Linux kernel commit bf9765145b85 ("sock:
 * Make sk_protocol a 16-bit value") (in v5.6); ObjValue.int() reads either
 * form from BTF bit offsets.
 */
import { FaultError } from '../core/errors.js';
import type { ObjValue } from '../profile/typed.js';
import type { AnomalySink } from './anomaly.js';
import type { Kernel } from './kernel.js';
import { listForEachEntry } from './walk/list.js';
import { isKernelPointer } from './walk/common.js';

export const AF_UNIX = 1;
export const AF_INET = 2;
export const AF_INET6 = 10;
export const AF_NETLINK = 16;
export const AF_PACKET = 17;

const FAMILY_NAMES: Record<number, string> = { 1: 'unix', 2: 'inet', 10: 'inet6', 16: 'netlink', 17: 'packet' };
const TYPE_NAMES: Record<number, string> = { 1: 'stream', 2: 'dgram', 3: 'raw', 4: 'rdm', 5: 'seqpacket', 10: 'packet' };

/** include/net/tcp_states.h */
export const TCP_STATES = [
  '',
  'ESTABLISHED',
  'SYN_SENT',
  'SYN_RECV',
  'FIN_WAIT1',
  'FIN_WAIT2',
  'TIME_WAIT',
  'CLOSE',
  'CLOSE_WAIT',
  'LAST_ACK',
  'LISTEN',
  'CLOSING',
  'NEW_SYN_RECV',
] as const;

export function tcpStateName(state: number): string {
  return TCP_STATES[state] || `UNKNOWN(${state})`;
}

/** Dotted quad of a network-order IPv4 address stored little-endian in a u32 read. */
export function formatIpv4(bytes: Uint8Array): string {
  return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
}

/** RFC 5952 text of a 16-byte IPv6 address (longest zero run compressed, ::ffff:a.b.c.d for mapped). */
export function formatIpv6(b: Uint8Array): string {
  const words: number[] = [];
  for (let i = 0; i < 8; i++) words.push((b[i * 2]! << 8) | b[i * 2 + 1]!);
  if (words.slice(0, 5).every((w) => w === 0) && words[5] === 0xffff) return `::ffff:${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = words.map((w) => w.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

/** Network to host order for a 16-bit port read little-endian. */
export function ntohs(v: number): number {
  return ((v & 0xff) << 8) | ((v >> 8) & 0xff);
}

export interface InetEndpoint {
  readonly address: string;
  readonly port: number;
}

export interface SocketInfo {
  /** struct socket address (0 when reached from a sock only). */
  readonly socket: bigint;
  /** struct sock address. */
  readonly sock: bigint;
  readonly family: number;
  readonly familyName: string;
  /** sk_type: 1 stream, 2 dgram, 3 raw, 5 seqpacket. */
  readonly type: number;
  readonly typeName: string;
  /** sk_protocol (IPPROTO_TCP 6, UDP 17, ...). */
  readonly protocol: number;
  /** 'tcp', 'udp', 'raw' (+'6'), 'unix', 'netlink', 'packet' or the family name. */
  readonly proto: string;
  /** skc_state (TCP numbering). */
  readonly state: number;
  readonly stateName: string;
  readonly local: InetEndpoint | undefined;
  readonly remote: InetEndpoint | undefined;
  /** Unix socket path ('@name' for abstract), '' when unbound. */
  readonly unixPath: string | undefined;
  /** Network namespace inode (net->ns.inum). */
  readonly netns: number | undefined;
}

/** Reads a struct sock and decodes its sock_common. */
export function decodeSock(kernel: Kernel, sockVa: bigint, socketVa: bigint, anomalies: AnomalySink): SocketInfo | undefined {
  const { typed } = kernel;
  let sk: ObjValue;
  try {
    sk = typed.obj('sock', sockVa).read();
  } catch (e) {
    if (!(e instanceof FaultError)) throw e;
    anomalies.add({ kind: 'fault', where: 'struct sock', address: sockVa, detail: e.message });
    return undefined;
  }
  const family = sk.u16('__sk_common.skc_family');
  const state = sk.u8('__sk_common.skc_state');
  const type = Number(sk.int('sk_type'));
  const protocol = Number(sk.int('sk_protocol'));
  let local: InetEndpoint | undefined;
  let remote: InetEndpoint | undefined;
  let proto = FAMILY_NAMES[family] ?? `af${family}`;
  let unixPath: string | undefined;
  if (family === AF_INET || family === AF_INET6) {
    const v6 = family === AF_INET6;
    const lport = sk.u16('__sk_common.skc_num');
    const rport = ntohs(sk.u16('__sk_common.skc_dport'));
    if (v6) {
      local = { address: formatIpv6(sk.raw('__sk_common.skc_v6_rcv_saddr')), port: lport };
      remote = { address: formatIpv6(sk.raw('__sk_common.skc_v6_daddr')), port: rport };
    } else {
      local = { address: formatIpv4(sk.raw('__sk_common.skc_rcv_saddr')), port: lport };
      remote = { address: formatIpv4(sk.raw('__sk_common.skc_daddr')), port: rport };
    }
    const base = type === 3 ? 'raw' : protocol === 6 ? 'tcp' : protocol === 17 ? 'udp' : protocol === 136 ? 'udplite' : type === 2 ? 'udp' : `ip${protocol}`;
    proto = base + (v6 ? '6' : '');
  } else if (family === AF_UNIX) {
    unixPath = unixSocketPath(kernel, sockVa, anomalies);
  }
  let netns: number | undefined;
  try {
    const net = sk.ptr('__sk_common.skc_net.net');
    if (isKernelPointer(net)) netns = typed.obj('net', net).field('ns.inum').num();
  } catch (e) {
    if (!(e instanceof FaultError)) throw e;
    anomalies.add({ kind: 'fault', where: 'sock_common.skc_net', address: sockVa, detail: e.message });
  }
  return {
    socket: socketVa,
    sock: sockVa,
    family,
    familyName: FAMILY_NAMES[family] ?? `af${family}`,
    type,
    typeName: TYPE_NAMES[type] ?? String(type),
    protocol,
    proto,
    state,
    stateName: family === AF_UNIX ? unixStateName(state) : tcpStateName(state),
    local,
    remote,
    unixPath,
    netns,
  };
}

/** Unix sockets keep TCP_* numbering in sk_state: LISTEN, ESTABLISHED, CLOSE. */
function unixStateName(state: number): string {
  return state === 10 ? 'LISTEN' : state === 1 ? 'ESTABLISHED' : state === 7 ? 'UNCONNECTED' : tcpStateName(state);
}

/** Largest struct unix_address name: sizeof(struct sockaddr_un). */
const SOCKADDR_UN_MAX = 110;

/**
 * The bound path of a unix socket: unix_sock->addr (struct unix_address
 * {refcnt, len, name[]}), name = struct sockaddr_un {sun_family; sun_path[]}.
 * An abstract name starts with NUL and is shown '@name' (as /proc/net/unix).
 */
export function unixSocketPath(kernel: Kernel, sockVa: bigint, anomalies: AnomalySink): string {
  const { typed, space } = kernel;
  try {
    const us = typed.obj('unix_sock', sockVa).field('addr');
    const addr = us.ptr();
    if (addr === 0n) return '';
    const ua = typed.obj('unix_address', addr).read();
    const len = ua.num('len');
    if (len <= 2 || len > SOCKADDR_UN_MAX) {
      if (len > SOCKADDR_UN_MAX) anomalies.add({ kind: 'invalid', where: 'unix_address.len', address: addr, detail: String(len) });
      return '';
    }
    const nameVa = ua.addrOf('name');
    const b = space.read(nameVa + 2n, len - 2);
    if (b[0] === 0) return '@' + Buffer.from(b.subarray(1)).toString('latin1').replace(/\0/g, '@');
    const end = b.indexOf(0);
    return Buffer.from(b.buffer, b.byteOffset, end < 0 ? b.length : end).toString('utf8');
  } catch (e) {
    if (!(e instanceof FaultError)) throw e;
    anomalies.add({ kind: 'fault', where: 'unix_sock.addr', address: sockVa, detail: e.message });
    return '';
  }
}

/** A socket from a process fd: struct socket (file->private_data) -> sk. */
export function decodeSocket(kernel: Kernel, socketVa: bigint, anomalies: AnomalySink): SocketInfo | undefined {
  if (!isKernelPointer(socketVa)) {
    anomalies.add({ kind: 'bad-pointer', where: 'file.private_data (socket)', address: socketVa });
    return undefined;
  }
  let sk: bigint;
  try {
    sk = kernel.typed.obj('socket', socketVa).field('sk').ptr();
  } catch (e) {
    if (!(e instanceof FaultError)) throw e;
    anomalies.add({ kind: 'fault', where: 'struct socket', address: socketVa, detail: e.message });
    return undefined;
  }
  if (sk === 0n) return undefined; // not yet (or no longer) attached to a sock
  if (!isKernelPointer(sk)) {
    anomalies.add({ kind: 'bad-pointer', where: 'socket.sk', address: sk });
    return undefined;
  }
  return decodeSock(kernel, sk, socketVa, anomalies);
}

// ------------------------------------------------------------------ namespaces and interfaces

export interface NetNamespace {
  /** struct net address. */
  readonly net: bigint;
  readonly inum: number;
}

/** Every network namespace on net_namespace_list (init_net first). */
export function* netNamespaces(kernel: Kernel, anomalies: AnomalySink): Generator<NetNamespace> {
  const head = kernel.symbol('net_namespace_list');
  for (const ref of listForEachEntry(kernel.typed, head, 'net', 'list', { anomalies, limit: 65536 })) {
    try {
      yield { net: ref.address, inum: ref.field('ns.inum').num() };
    } catch (e) {
      if (!(e instanceof FaultError)) throw e;
      anomalies.add({ kind: 'fault', where: 'net.ns', address: ref.address, detail: e.message });
    }
  }
}

export interface InterfaceAddress {
  readonly family: 'inet' | 'inet6';
  readonly address: string;
  readonly prefixLen: number;
  readonly scope: string;
  readonly label: string;
}

export interface NetInterface {
  readonly netns: number;
  readonly device: bigint;
  readonly index: number;
  readonly name: string;
  readonly flags: number;
  readonly flagNames: string[];
  readonly mtu: number;
  readonly mac: string;
  readonly addresses: InterfaceAddress[];
}

/** include/uapi/linux/if.h net_device_flags, in the order `ip link` prints the common ones. */
const IFF: [number, string][] = [
  [0x1, 'UP'],
  [0x2, 'BROADCAST'],
  [0x4, 'DEBUG'],
  [0x8, 'LOOPBACK'],
  [0x10, 'POINTOPOINT'],
  [0x20, 'NOTRAILERS'],
  [0x40, 'RUNNING'],
  [0x80, 'NOARP'],
  [0x100, 'PROMISC'],
  [0x200, 'ALLMULTI'],
  [0x1000, 'MULTICAST'],
  [0x10000, 'LOWER_UP'],
  [0x20000, 'DORMANT'],
];

/** net_device.state bits (enum netdev_state_t). */
const LINK_STATE_START = 1n << 0n;
const LINK_STATE_NOCARRIER = 1n << 2n;
/** IF_OPER_* values netif_oper_up() accepts: UP (6) and UNKNOWN (0). */
const IF_OPER_UP = 6;
const IF_OPER_DORMANT = 5;

/**
 * dev_get_flags(): dev->flags without the volatile bits, plus RUNNING,
 * LOWER_UP and DORMANT derived from the running/carrier/operstate of the
 * device, as SIOCGIFFLAGS and `ip link` report them.
 */
export function deviceFlags(flags: number, state: bigint, operstate: number): number {
  let f = flags & ~(0x40 | 0x10000 | 0x20000);
  if (state & LINK_STATE_START) {
    if (operstate === IF_OPER_UP || operstate === 0) f |= 0x40;
    if (!(state & LINK_STATE_NOCARRIER)) f |= 0x10000;
    if (operstate === IF_OPER_DORMANT) f |= 0x20000;
  }
  return f >>> 0;
}

export function interfaceFlagNames(flags: number): string[] {
  return IFF.filter(([bit]) => (flags & bit) !== 0).map(([, n]) => n);
}

/** RT_SCOPE_* names as ip prints them. */
function scopeName(scope: number): string {
  return scope === 0 ? 'global' : scope === 200 ? 'site' : scope === 253 ? 'link' : scope === 254 ? 'host' : scope === 255 ? 'nowhere' : String(scope);
}

/** IPv6 scope from the address type bits (inet6_ifaddr.scope: IFA_HOST 0x10, IFA_LINK 0x20, IFA_SITE 0x40). */
function scope6Name(scope: number): string {
  return scope === 0x10 ? 'host' : scope === 0x20 ? 'link' : scope === 0x40 ? 'site' : scope === 0 ? 'global' : String(scope);
}

/** Bound on addresses per interface (hostile lists). */
const MAX_ADDRESSES = 4096;

/** Interfaces of one namespace: net->dev_base_head list of net_device (dev_list). */
export function* netInterfaces(kernel: Kernel, ns: NetNamespace, anomalies: AnomalySink): Generator<NetInterface> {
  const { typed } = kernel;
  const head = typed.obj('net', ns.net).addrOf('dev_base_head');
  for (const ref of listForEachEntry(typed, head, 'net_device', 'dev_list', { anomalies, limit: 65536 })) {
    let dev: ObjValue;
    try {
      dev = ref.read();
    } catch (e) {
      if (!(e instanceof FaultError)) throw e;
      anomalies.add({ kind: 'fault', where: 'net_device', address: ref.address, detail: e.message });
      continue;
    }
    const addrLen = Math.min(dev.u8('addr_len'), 32);
    let mac = '';
    const macVa = dev.ptr('dev_addr');
    if (addrLen > 0 && isKernelPointer(macVa & ~7n)) {
      try {
        mac = [...kernel.space.read(macVa, addrLen)].map((x) => x.toString(16).padStart(2, '0')).join(':');
      } catch (e) {
        if (!(e instanceof FaultError)) throw e;
        anomalies.add({ kind: 'fault', where: 'net_device.dev_addr', address: macVa, detail: e.message });
      }
    }
    const flags = deviceFlags(dev.u32('flags'), BigInt.asUintN(64, dev.int('state')), dev.u8('operstate'));
    yield {
      netns: ns.inum,
      device: dev.address,
      index: dev.s32('ifindex'),
      name: dev.str('name'),
      flags,
      flagNames: interfaceFlagNames(flags),
      mtu: dev.u32('mtu'),
      mac,
      addresses: [...ipv4Addresses(kernel, dev, anomalies), ...ipv6Addresses(kernel, dev, anomalies)],
    };
  }
}

/** in_device (dev->ip_ptr) -> ifa_list chain of struct in_ifaddr (ifa_next). */
function ipv4Addresses(kernel: Kernel, dev: ObjValue, anomalies: AnomalySink): InterfaceAddress[] {
  const { typed } = kernel;
  const out: InterfaceAddress[] = [];
  const inDev = dev.ptr('ip_ptr');
  if (!isKernelPointer(inDev)) return out;
  try {
    let ifa = typed.obj('in_device', inDev).field('ifa_list').ptr();
    const seen = new Set<bigint>();
    while (ifa !== 0n) {
      if (!isKernelPointer(ifa) || seen.has(ifa)) {
        anomalies.add({ kind: seen.has(ifa) ? 'cycle' : 'bad-pointer', where: 'in_ifaddr.ifa_next', address: ifa });
        break;
      }
      if (seen.size >= MAX_ADDRESSES) {
        anomalies.add({ kind: 'limit', where: 'in_ifaddr.ifa_next', address: ifa });
        break;
      }
      seen.add(ifa);
      const a = typed.obj('in_ifaddr', ifa).read();
      out.push({
        family: 'inet',
        address: formatIpv4(a.raw('ifa_local')),
        prefixLen: a.u8('ifa_prefixlen'),
        scope: scopeName(a.u8('ifa_scope')),
        label: a.str('ifa_label'),
      });
      ifa = a.ptr('ifa_next');
    }
  } catch (e) {
    if (!(e instanceof FaultError)) throw e;
    anomalies.add({ kind: 'fault', where: 'in_device.ifa_list', address: inDev, detail: e.message });
  }
  return out;
}

/** inet6_dev (dev->ip6_ptr) -> addr_list of struct inet6_ifaddr (if_list). */
function ipv6Addresses(kernel: Kernel, dev: ObjValue, anomalies: AnomalySink): InterfaceAddress[] {
  const { typed } = kernel;
  const out: InterfaceAddress[] = [];
  if (!dev.has('ip6_ptr')) return out;
  const in6 = dev.ptr('ip6_ptr');
  if (!isKernelPointer(in6)) return out;
  const head = typed.obj('inet6_dev', in6).addrOf('addr_list');
  for (const ref of listForEachEntry(typed, head, 'inet6_ifaddr', 'if_list', { anomalies, limit: MAX_ADDRESSES })) {
    try {
      const a = ref.read();
      out.push({
        family: 'inet6',
        address: formatIpv6(a.raw('addr')),
        prefixLen: a.u32('prefix_len'),
        scope: scope6Name(Number(a.int('scope'))),
        label: '',
      });
    } catch (e) {
      if (!(e instanceof FaultError)) throw e;
      anomalies.add({ kind: 'fault', where: 'inet6_ifaddr', address: ref.address, detail: e.message });
    }
  }
  return out;
}

// ------------------------------------------------------------------ TCP established hash

/** TCP states whose sock is a mini socket (inet_timewait_sock, request_sock): only sock_common is valid. */
const TCP_TIME_WAIT = 6;
const TCP_NEW_SYN_RECV = 12;
/** Most buckets read from tcp_hashinfo.ehash (hostile ehash_mask). */
const MAX_EHASH_BUCKETS = 1 << 22;
/** Most sockets taken from the hash (all chains together). */
const MAX_EHASH_SOCKETS = 1 << 20;

/**
 * Every socket in TCP's established hash (tcp_hashinfo.ehash: established,
 * closing, TIME_WAIT and SYN_RECV sockets, owned by a process or not), as
 * /proc/net/tcp{,6} lists them after the listeners. Chains are
 * hlist_nulls lists through sock_common.skc_nulls_node: a pointer with bit 0
 * set ends a chain. TIME_WAIT and request socks only have sock_common.
 */
export function* tcpEstablishedSockets(kernel: Kernel, anomalies: AnomalySink): Generator<SocketInfo> {
  const { typed, space } = kernel;
  const hi = typed.obj('inet_hashinfo', kernel.symbol('tcp_hashinfo')).read();
  const mask = hi.u32('ehash_mask');
  if (mask + 1 > MAX_EHASH_BUCKETS) {
    anomalies.add({ kind: 'invalid', where: 'tcp_hashinfo.ehash_mask', address: hi.address, detail: String(mask) });
    return;
  }
  const buckets = mask + 1;
  const bucketSize = typed.db.sizeOf('inet_ehash_bucket');
  const chainOff = typed.db.offsetOf('inet_ehash_bucket', 'chain.first');
  const nodeOff = BigInt(typed.db.offsetOf('sock_common', 'skc_nulls_node'));
  const ehash = hi.ptr('ehash');
  const table = new Uint8Array(buckets * bucketSize);
  for (const f of space.readv([{ va: ehash, len: table.length, dst: table }])) {
    anomalies.add({ kind: 'fault', where: 'tcp_hashinfo.ehash', address: f.va, detail: f.reason });
  }
  const dv = new DataView(table.buffer);
  const seen = new Set<bigint>();
  for (let b = 0; b < buckets; b++) {
    let node = dv.getBigUint64(b * bucketSize + chainOff, true);
    while ((node & 1n) === 0n) {
      if (!isKernelPointer(node)) {
        anomalies.add({ kind: 'bad-pointer', where: 'sock_common.skc_nulls_node', address: node, detail: `bucket ${b}` });
        break;
      }
      if (seen.has(node)) {
        anomalies.add({ kind: 'cycle', where: 'sock_common.skc_nulls_node', address: node, detail: `bucket ${b}` });
        break;
      }
      if (seen.size >= MAX_EHASH_SOCKETS) {
        anomalies.add({ kind: 'limit', where: 'tcp_hashinfo.ehash', address: node });
        return;
      }
      seen.add(node);
      const sk = node - nodeOff;
      let next: bigint;
      try {
        const skc = typed.obj('sock_common', sk).read();
        next = skc.ptr('skc_nulls_node.next');
        const state = skc.u8('skc_state');
        if (state === TCP_TIME_WAIT || state === TCP_NEW_SYN_RECV) {
          const info = decodeMiniSock(skc, sk);
          if (info) yield info;
        } else {
          const info = decodeSock(kernel, sk, 0n, anomalies);
          if (info) yield info;
        }
      } catch (e) {
        if (!(e instanceof FaultError)) throw e;
        anomalies.add({ kind: 'fault', where: 'tcp_hashinfo.ehash', address: sk, detail: e.message });
        break;
      }
      node = next;
    }
  }
}

/** A TIME_WAIT or request sock: addresses, ports and state from sock_common alone. */
function decodeMiniSock(skc: ObjValue, sk: bigint): SocketInfo | undefined {
  const family = skc.u16('skc_family');
  if (family !== AF_INET && family !== AF_INET6) return undefined;
  const v6 = family === AF_INET6;
  const state = skc.u8('skc_state');
  const lport = skc.u16('skc_num');
  const rport = ntohs(skc.u16('skc_dport'));
  return {
    socket: 0n,
    sock: sk,
    family,
    familyName: FAMILY_NAMES[family]!,
    type: 1,
    typeName: 'stream',
    protocol: 6,
    proto: v6 ? 'tcp6' : 'tcp',
    state,
    stateName: state === TCP_NEW_SYN_RECV ? 'SYN_RECV' : tcpStateName(state),
    local: { address: v6 ? formatIpv6(skc.raw('skc_v6_rcv_saddr')) : formatIpv4(skc.raw('skc_rcv_saddr')), port: lport },
    remote: { address: v6 ? formatIpv6(skc.raw('skc_v6_daddr')) : formatIpv4(skc.raw('skc_daddr')), port: rport },
    unixPath: undefined,
    netns: undefined,
  };
}
