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
import { hlistChain, hlistNullsChain, listForEachEntry } from './walk/list.js';
import { isKernelPointer, WalkContext } from './walk/common.js';

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

// ------------------------------------------------------------------ kernel socket tables

/**
 * Where a socket was found: a process's fd table, or one of the kernel's own
 * lookup tables (which also hold sockets no process holds: TIME_WAIT,
 * orphans, sockets of exited processes still closing, kernel sockets).
 */
export type SockSource = 'fd' | 'tcp-ehash' | 'tcp-listen' | 'udp' | 'udplite' | 'raw' | 'raw6';

/** TCP states whose sock is a mini socket (inet_timewait_sock, request_sock): only sock_common is valid. */
const TCP_TIME_WAIT = 6;
const TCP_NEW_SYN_RECV = 12;
/** Most buckets read from one hash table (hostile masks). */
const MAX_TABLE_BUCKETS = 1 << 22;
/** Most sockets taken from one table (all chains together). */
const MAX_TABLE_SOCKETS = 1 << 20;

/** One kernel hash table of sockets: an array of buckets, each holding a chain head. */
interface SockTable {
  readonly source: SockSource;
  /** Names the table in anomalies, e.g. 'tcp_hashinfo.ehash'. */
  readonly where: string;
  /** Address of the first bucket. */
  readonly va: bigint;
  readonly buckets: number;
  readonly bucketSize: number;
  /** Offset of the chain head (hlist_head / hlist_nulls_head) inside a bucket. */
  readonly headOff: number;
  /** hlist_nulls chains (odd end marker) rather than NULL-terminated hlists. */
  readonly nulls: boolean;
  /** Offset of the chain node inside struct sock (container_of). */
  readonly nodeOff: bigint;
}

/**
 * The struct sock addresses of one table: the bucket array in one batched
 * read, then every chain walked bounded and cycle-checked (one seen-set and
 * node limit for the whole table). Buckets whose bytes faulted are skipped.
 */
function* tableSocks(kernel: Kernel, t: SockTable, anomalies: AnomalySink): Generator<bigint> {
  if (!Number.isInteger(t.buckets) || t.buckets < 1 || t.buckets > MAX_TABLE_BUCKETS) {
    anomalies.add({ kind: 'invalid', where: t.where, address: t.va, detail: `${t.buckets} buckets` });
    return;
  }
  if (!isKernelPointer(t.va)) {
    anomalies.add({ kind: 'bad-pointer', where: t.where, address: t.va });
    return;
  }
  const bytes = new Uint8Array(t.buckets * t.bucketSize);
  const faulted = new Uint8Array(t.buckets);
  for (const f of kernel.space.readv([{ va: t.va, len: bytes.length, dst: bytes }])) {
    anomalies.add({ kind: 'fault', where: t.where, address: f.va, detail: f.reason });
    const from = Number(f.va - t.va) / t.bucketSize;
    const to = Math.min(t.buckets, Math.ceil((Number(f.va - t.va) + f.len) / t.bucketSize));
    faulted.fill(1, Math.max(0, Math.floor(from)), to);
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const ctx = new WalkContext(kernel.typed, t.where, { anomalies, limit: MAX_TABLE_SOCKETS });
  const seen = new Set<bigint>();
  for (let b = 0; b < t.buckets; b++) {
    if (faulted[b]) continue;
    const off = b * t.bucketSize + t.headOff;
    const first = dv.getBigUint64(off, true);
    const link = t.va + BigInt(off);
    const chain = t.nulls ? hlistNullsChain(ctx, link, first, seen) : hlistChain(ctx, link, first, seen);
    for (const node of chain) yield node - t.nodeOff;
    if (ctx.limited) return;
  }
}

/** TCP's established hash (established, closing, TIME_WAIT, SYN_RECV): hlist_nulls via skc_nulls_node. */
function ehashTable(kernel: Kernel, hashinfo: bigint): SockTable {
  const { typed } = kernel;
  const hi = typed.obj('inet_hashinfo', hashinfo).read();
  const db = typed.db;
  return {
    source: 'tcp-ehash',
    where: 'inet_hashinfo.ehash',
    va: hi.ptr('ehash'),
    buckets: hi.u32('ehash_mask') + 1,
    bucketSize: db.sizeOf('inet_ehash_bucket'),
    headOff: db.offsetOf('inet_ehash_bucket', 'chain'),
    nulls: true,
    nodeOff: BigInt(db.offsetOf('sock_common', 'skc_nulls_node')),
  };
}

/**
 * TCP's listening hash, tcp_hashinfo.lhash2 (by port and address). Before
 * Linux kernel commit cae3873c5b3a ("net: inet: Retire port only
 * listening_hash") (in v5.19) its chains were hlists through
 * inet_connection_sock.icsk_listen_portaddr_node (bucket member `head`);
 * since then they are hlist_nulls chains through sk_nulls_node (bucket
 * member `nulls_head`). Chosen by whether BTF has icsk_listen_portaddr_node.
 */
function listenTable(kernel: Kernel, hashinfo: bigint): SockTable | undefined {
  const { typed } = kernel;
  const db = typed.db;
  if (!typed.has('inet_hashinfo', 'lhash2') || !typed.has('inet_hashinfo', 'lhash2_mask')) return undefined;
  const hi = typed.obj('inet_hashinfo', hashinfo).read();
  const portaddr = typed.has('inet_connection_sock', 'icsk_listen_portaddr_node') && typed.has('inet_listen_hashbucket', 'head');
  if (!portaddr && !typed.has('inet_listen_hashbucket', 'nulls_head')) return undefined;
  return {
    source: 'tcp-listen',
    where: 'inet_hashinfo.lhash2',
    va: hi.ptr('lhash2'),
    buckets: hi.u32('lhash2_mask') + 1,
    bucketSize: db.sizeOf('inet_listen_hashbucket'),
    headOff: db.offsetOf('inet_listen_hashbucket', portaddr ? 'head' : 'nulls_head'),
    nulls: !portaddr,
    nodeOff: BigInt(portaddr ? db.offsetOf('inet_connection_sock', 'icsk_listen_portaddr_node') : db.offsetOf('sock_common', 'skc_nulls_node')),
  };
}

/** udp_table / udplite_table: `hash` array of mask+1 udp_hslot, hlist chains through sk_node. */
function udpTable(kernel: Kernel, table: bigint, source: 'udp' | 'udplite'): SockTable {
  const { typed } = kernel;
  const db = typed.db;
  const t = typed.obj('udp_table', table).read();
  return {
    source,
    where: `${source === 'udp' ? 'udp_table' : 'udplite_table'}.hash`,
    va: t.ptr('hash'),
    buckets: t.u32('mask') + 1,
    bucketSize: db.sizeOf('udp_hslot'),
    headOff: db.offsetOf('udp_hslot', 'head'),
    nulls: false,
    nodeOff: BigInt(db.offsetOf('sock_common', 'skc_node')),
  };
}

/**
 * raw_v4_hashinfo / raw_v6_hashinfo: a fixed array `ht` inside the struct.
 * Its chains were hlists through sk_node, became hlist_nulls through
 * sk_nulls_node in Linux kernel commit 0daf07e52709 ("raw: convert raw
 * sockets to RCU") (in v6.0), and hlists again in commit 0a78cf7264d2 ("raw:
 * Fix NULL deref in raw_get_next().") (in v6.3): chosen by the BTF type of
 * `ht`'s elements.
 */
function rawTable(kernel: Kernel, symbolVa: bigint, source: 'raw' | 'raw6'): SockTable | undefined {
  const db = kernel.typed.db;
  const ht = db.tryField('raw_hashinfo', 'ht');
  const elem = db.tryField('raw_hashinfo', 'ht[0]');
  if (!ht || !elem || elem.size <= 0) return undefined;
  const nulls = db.typeName(elem.type).includes('hlist_nulls_head');
  return {
    source,
    where: `${source === 'raw' ? 'raw_v4_hashinfo' : 'raw_v6_hashinfo'}.ht`,
    va: symbolVa + BigInt(ht.offset),
    buckets: Math.floor(ht.size / elem.size),
    bucketSize: elem.size,
    headOff: 0,
    nulls,
    nodeOff: BigInt(db.offsetOf('sock_common', nulls ? 'skc_nulls_node' : 'skc_node')),
  };
}

/** A struct sock found in a kernel table. */
export interface TableSock {
  readonly sk: bigint;
  readonly source: SockSource;
}

/** Reads `path` of every network namespace as a pointer (per-netns tables), ignoring zero. */
function perNetnsPointers(kernel: Kernel, path: string, namespaces: () => NetNamespace[], anomalies: AnomalySink): bigint[] {
  if (!kernel.typed.has('net', path)) return [];
  const out: bigint[] = [];
  for (const ns of namespaces()) {
    try {
      const p = kernel.typed.obj('net', ns.net).field(path).ptr();
      if (p !== 0n) out.push(p);
    } catch (e) {
      if (!(e instanceof FaultError)) throw e;
      anomalies.add({ kind: 'fault', where: `net.${path}`, address: ns.net, detail: e.message });
    }
  }
  return out;
}

/**
 * The tables this kernel has, by symbol and BTF member presence. Since
 * v6.1 (TCP ehash, commit d1e5e6408b30 "tcp: Introduce optional per-netns
 * ehash") and v6.2 (UDP) a namespace may have its own table: those are
 * added (once each) next to the global ones.
 */
function kernelSockTables(kernel: Kernel, anomalies: AnomalySink): SockTable[] {
  const { typed } = kernel;
  const tables: SockTable[] = [];
  let nss: NetNamespace[] | undefined;
  const namespaces = (): NetNamespace[] => (nss ??= kernel.hasSymbol('net_namespace_list') ? [...netNamespaces(kernel, anomalies)] : []);
  const guard = (what: string, va: bigint, make: () => SockTable | undefined): void => {
    try {
      const t = make();
      // Two names for one bucket array (a netns pointing at the global table) are walked once.
      if (t && !tables.some((x) => x.va === t.va)) tables.push(t);
    } catch (e) {
      if (!(e instanceof FaultError)) throw e;
      anomalies.add({ kind: 'fault', where: what, address: va, detail: e.message });
    }
  };
  if (kernel.hasSymbol('tcp_hashinfo') && typed.has('inet_hashinfo', 'ehash') && typed.has('sock_common', 'skc_nulls_node')) {
    const global = kernel.symbol('tcp_hashinfo');
    const hashinfos = new Set([global, ...perNetnsPointers(kernel, 'ipv4.tcp_death_row.hashinfo', namespaces, anomalies)]);
    for (const hi of hashinfos) guard('tcp_hashinfo', hi, () => ehashTable(kernel, hi));
    // Per-netns hashinfos share the global listening hash.
    guard('tcp_hashinfo', global, () => listenTable(kernel, global));
  }
  if (typed.has('udp_table', 'hash') && typed.has('udp_hslot', 'head') && typed.has('sock_common', 'skc_node')) {
    const udp = new Set<bigint>();
    if (kernel.hasSymbol('udp_table')) udp.add(kernel.symbol('udp_table'));
    for (const p of perNetnsPointers(kernel, 'ipv4.udp_table', namespaces, anomalies)) udp.add(p);
    for (const t of udp) guard('udp_table', t, () => udpTable(kernel, t, 'udp'));
    if (kernel.hasSymbol('udplite_table')) {
      const t = kernel.symbol('udplite_table');
      guard('udplite_table', t, () => udpTable(kernel, t, 'udplite'));
    }
  }
  if (typed.has('raw_hashinfo', 'ht') && typed.has('sock_common', 'skc_node')) {
    for (const [sym, source] of [['raw_v4_hashinfo', 'raw'], ['raw_v6_hashinfo', 'raw6']] as const) {
      if (kernel.hasSymbol(sym)) guard(sym, kernel.symbol(sym), () => rawTable(kernel, kernel.symbol(sym), source));
    }
  }
  return tables;
}

/**
 * Every struct sock in the kernel's socket tables (TCP established and
 * listening hashes, UDP, UDP-lite, raw), each once even when reachable
 * from two tables (a 5.10 listener is in both the listening and lhash2 chains).
 */
export function* kernelTableSocks(kernel: Kernel, anomalies: AnomalySink): Generator<TableSock> {
  const seen = new Set<bigint>();
  for (const t of kernelSockTables(kernel, anomalies)) {
    for (const sk of tableSocks(kernel, t, anomalies)) {
      if (seen.has(sk)) continue;
      seen.add(sk);
      yield { sk, source: t.source };
    }
  }
}

/**
 * Decodes a sock found in a kernel table: TIME_WAIT and request socks from
 * sock_common alone, full socks with their struct socket (sk_socket, 0 when
 * no file holds it).
 */
export function decodeTableSock(kernel: Kernel, sk: bigint, anomalies: AnomalySink): SocketInfo | undefined {
  let skc: ObjValue;
  try {
    skc = kernel.typed.obj('sock_common', sk).read();
  } catch (e) {
    if (!(e instanceof FaultError)) throw e;
    anomalies.add({ kind: 'fault', where: 'struct sock_common', address: sk, detail: e.message });
    return undefined;
  }
  const state = skc.u8('skc_state');
  if (state === TCP_TIME_WAIT || state === TCP_NEW_SYN_RECV) return decodeMiniSock(kernel, skc, sk, anomalies);
  let socket = 0n;
  try {
    if (kernel.typed.has('sock', 'sk_socket')) socket = kernel.typed.obj('sock', sk).field('sk_socket').ptr();
  } catch (e) {
    if (!(e instanceof FaultError)) throw e;
    anomalies.add({ kind: 'fault', where: 'sock.sk_socket', address: sk, detail: e.message });
  }
  return decodeSock(kernel, sk, isKernelPointer(socket) ? socket : 0n, anomalies);
}

/**
 * sock_i_ino(): the inode number of a struct socket's inode
 * (SOCK_INODE: struct socket_alloc {socket; vfs_inode}), 0n for no socket,
 * as /proc/net/{tcp,udp,raw} print it.
 */
export function socketInode(kernel: Kernel, socketVa: bigint, anomalies: AnomalySink): bigint {
  if (socketVa === 0n || !kernel.typed.has('socket_alloc', 'vfs_inode')) return 0n;
  try {
    return BigInt(kernel.typed.containerOf(socketVa, 'socket_alloc', 'socket').field('vfs_inode.i_ino').int());
  } catch (e) {
    if (!(e instanceof FaultError)) throw e;
    anomalies.add({ kind: 'fault', where: 'socket_alloc.vfs_inode', address: socketVa, detail: e.message });
    return 0n;
  }
}

/**
 * Every socket in TCP's established hash tables (tcp_hashinfo.ehash and any
 * per-netns ehash), as /proc/net/tcp{,6} lists them after the listeners.
 */
export function* tcpEstablishedSockets(kernel: Kernel, anomalies: AnomalySink): Generator<SocketInfo> {
  for (const t of kernelSockTables(kernel, anomalies)) {
    if (t.source !== 'tcp-ehash') continue;
    for (const sk of tableSocks(kernel, t, anomalies)) {
      const info = decodeTableSock(kernel, sk, anomalies);
      if (info) yield info;
    }
  }
}

/** A TIME_WAIT or request sock: addresses, ports, state and netns from sock_common alone. */
function decodeMiniSock(kernel: Kernel, skc: ObjValue, sk: bigint, anomalies: AnomalySink): SocketInfo | undefined {
  const family = skc.u16('skc_family');
  if (family !== AF_INET && family !== AF_INET6) return undefined;
  const v6 = family === AF_INET6;
  const state = skc.u8('skc_state');
  const lport = skc.u16('skc_num');
  const rport = ntohs(skc.u16('skc_dport'));
  let netns: number | undefined;
  try {
    const net = skc.ptr('skc_net.net');
    if (isKernelPointer(net)) netns = kernel.typed.obj('net', net).field('ns.inum').num();
  } catch (e) {
    if (!(e instanceof FaultError)) throw e;
    anomalies.add({ kind: 'fault', where: 'sock_common.skc_net', address: sk, detail: e.message });
  }
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
    netns,
  };
}
