/**
 * ifconfig: network interfaces of every network namespace (net_namespace_list
 * -> dev_base_head), with flags, MTU, MAC, and IPv4/IPv6 addresses.
 */
import { definePlugin } from '../plugin.js';
import { netInterfaces, netNamespaces } from '../net/netdevice.js';

export interface IfconfigRow {
  netns: number;
  index: number;
  name: string;
  flags: string;
  mtu: number;
  mac: string;
  /** 'inet 10.0.2.15/24' style entries. */
  addresses: string[];
  device: bigint;
}

export default definePlugin<IfconfigRow>()({
  name: 'ifconfig',
  aliases: ['linux.ip.Addr', 'linux.ifconfig'],
  version: '1.0.0',
  summary: 'Network interfaces per namespace with flags, MTU, MAC and IPv4/IPv6 addresses',
  requires: {
    symbols: ['net_namespace_list'],
    fields: [
      ['net', 'list'],
      ['net', 'dev_base_head'],
      ['net_device', 'dev_list'],
      ['net_device', 'ip_ptr'],
      ['in_device', 'ifa_list'],
    ],
  },
  columns: [
    { key: 'netns', kind: 'int' },
    { key: 'index', kind: 'int' },
    { key: 'name', kind: 'str' },
    { key: 'flags', kind: 'str' },
    { key: 'mtu', kind: 'int' },
    { key: 'mac', kind: 'str' },
    { key: 'addresses', kind: 'str' },
    { key: 'device', kind: 'hex' },
  ],
  // Namespace inode numbers are reused and every namespace has its lo at index 1: the net_device address tells them apart.
  key: (r) => `${r.netns}:${r.index}:${r.device.toString(16)}`,
  *run(k, { anomalies }) {
    for (const ns of netNamespaces(k, anomalies)) {
      for (const i of netInterfaces(k, ns, anomalies)) {
        yield {
          netns: i.netns,
          index: i.index,
          name: i.name,
          flags: i.flagNames.join(','),
          mtu: i.mtu,
          mac: i.mac,
          addresses: i.addresses.map((a) => `${a.family} ${a.address}/${a.prefixLen} scope ${a.scope}`),
          device: i.device,
        };
      }
    }
  },
});
