/**
 * Decoding one socket: struct socket -> struct sock, its sock_common
 * addresses, ports, state and netns, and unix socket paths.
 *
 * sk_protocol was a bitfield before Linux kernel commit bf9765145b85 ("sock:
 * Make sk_protocol a 16-bit value") (in v5.6); ObjValue.int() reads either
 * form from BTF bit offsets.
 */
import { FaultError } from '../../core/errors.js';
import type { ObjValue } from '../../profile/typed.js';
import type { AnomalySink } from '../anomaly.js';
import type { Kernel } from '../kernel.js';
import { isKernelPointer } from '../walk/common.js';
import { AF_UNIX, AF_INET, AF_INET6, FAMILY_NAMES, TYPE_NAMES, tcpStateName, formatIpv4, formatIpv6, ntohs } from './format.js';
import { gva } from '../../core/address.js';

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
    const b = space.read(gva(nameVa + 2n), len - 2);
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
