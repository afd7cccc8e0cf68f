/**
 * The kernel's own socket tables (TCP established and listening hashes, UDP,
 * UDP-lite, raw): sockets no process holds (TIME_WAIT, orphans, kernel
 * sockets) are found here. Every table walk is bounded in buckets and sockets.
 */
import { FaultError } from '../../core/errors.js';
import type { ObjValue } from '../../profile/typed.js';
import type { AnomalySink } from '../anomaly.js';
import type { Kernel } from '../kernel.js';
import { hlistChain, hlistNullsChain } from '../walk/list.js';
import { isKernelPointer, WalkContext } from '../walk/common.js';
import { AF_INET, AF_INET6, FAMILY_NAMES, tcpStateName, formatIpv4, formatIpv6, ntohs } from './format.js';
import { type SocketInfo, decodeSock } from './sock.js';
import { type NetNamespace, netNamespaces } from './netdevice.js';
import { gva } from '../../core/address.js';

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
  for (const f of kernel.space.readv([{ va: gva(t.va), len: bytes.length, dst: bytes }])) {
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
    // Most buckets are empty (a nulls marker, or NULL): skipped on the low word, with no BigInt or walk made.
    const low = dv.getUint32(off, true);
    if (t.nulls ? (low & 1) === 1 : low === 0 && dv.getUint32(off + 4, true) === 0) continue;
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
