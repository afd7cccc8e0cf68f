/**
 * Network namespaces (net_namespace_list) and their interfaces (struct
 * net_device on dev_base_head) with flags, MTU, MAC and IPv4/IPv6 addresses.
 */
import { FaultError } from '../../core/errors.js';
import type { ObjValue } from '../../profile/typed.js';
import type { AnomalySink } from '../anomaly.js';
import type { Kernel } from '../kernel.js';
import { listForEachEntry } from '../walk/list.js';
import { isKernelPointer } from '../walk/common.js';
import { formatIpv4, formatIpv6 } from './format.js';
import { gva } from '../../core/address.js';

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
        mac = [...kernel.space.read(gva(macVa), addrLen)].map((x) => x.toString(16).padStart(2, '0')).join(':');
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
