/**
 * sockstat: sockets held by processes (found through their fd tables):
 * TCP/UDP/RAW over IPv4 and IPv6 with addresses, ports and state, unix
 * sockets with their paths, and the other families by name; each with the
 * pids holding it. Sockets no process holds (TIME_WAIT, orphans, kernel
 * sockets) come from the kernel's own tables (TCP established and listening
 * hashes, UDP, UDP-lite, raw) with no pids; `source` says where a row was
 * found ('fd' when through a process, else the table). A sock reachable both
 * ways is listed once (keyed by struct sock address).
 */
import { absent, definePlugin, type Absent } from '../plugin.js';
import { taskSockets } from '../files.js';
import { decodeTableSock, kernelTableSocks, socketInode, type SockSource } from '../net/inet-hashtables.js';
import { decodeSocket, type SocketInfo } from '../net/sock.js';
import { forEachProcess } from '../tasks.js';

export interface SockstatRow {
  proto: string;
  family: string;
  type: string;
  state: string;
  localAddress: string | Absent;
  localPort: number | Absent;
  remoteAddress: string | Absent;
  remotePort: number | Absent;
  path: string | Absent;
  inode: bigint;
  netns: number | Absent;
  pids: number[];
  comms: string[];
  sock: bigint;
  /** 'fd' (found through a process's fd table) or the kernel table it was found in. */
  source: SockSource;
}

/** What --family filters on: a family name or a protocol name (as in the proto column). */
const FAMILY_CHOICES = ['unix', 'inet', 'inet6', 'netlink', 'packet', 'tcp', 'tcp6', 'udp', 'udp6', 'udplite', 'udplite6', 'raw', 'raw6'] as const;

export default definePlugin<SockstatRow>()({
  name: 'sockstat',
  aliases: ['linux.sockstat', 'linux.sockstat.Sockstat'],
  version: '1.1.0',
  summary: 'Sockets of every process: TCP/UDP/RAW over IPv4/IPv6, unix paths, owning pids',
  requires: {
    symbols: ['init_task'],
    fields: [
      ['socket', 'sk'],
      ['sock', '__sk_common'],
      ['sock_common', 'skc_family'],
      ['sock', 'sk_protocol'],
      ['sock', 'sk_type'],
    ],
  },
  options: { family: { type: 'string', choices: FAMILY_CHOICES, valueName: 'FAMILY', description: 'only sockets of this family or protocol', byDefault: 'every socket' } },
  columns: [
    { key: 'proto', kind: 'str' },
    { key: 'state', kind: 'str' },
    { key: 'localAddress', title: 'local', kind: 'str' },
    { key: 'localPort', title: 'lport', kind: 'int' },
    { key: 'remoteAddress', title: 'remote', kind: 'str' },
    { key: 'remotePort', title: 'rport', kind: 'int' },
    { key: 'inode', kind: 'int' },
    { key: 'netns', kind: 'int' },
    { key: 'pids', kind: 'int' },
    { key: 'comms', kind: 'str' },
    { key: 'sock', kind: 'hex' },
    { key: 'path', kind: 'str' },
    { key: 'source', kind: 'str' },
  ],
  // The sock's address is reused after close; its inode number (from a counter) tells the new socket apart.
  key: (r) => `${r.proto}:${r.sock.toString(16)}:${r.inode}`,
  *run(k, { options, anomalies }) {
    const family = options.family;
    const bySock = new Map<bigint, { info: SocketInfo; inode: bigint; pids: number[]; comms: string[]; source: SockSource }>();
    // struct socket -> struct sock, so a socket shared by several fds or processes is decoded once.
    const bySocket = new Map<bigint, bigint>();
    for (const task of forEachProcess(k, anomalies)) {
      const pid = task.s32('pid');
      const comm = task.str('comm');
      for (const f of taskSockets(k, task, anomalies)) {
        const knownSock = bySocket.get(f.socket);
        const known = knownSock === undefined ? undefined : bySock.get(knownSock);
        if (known) {
          if (!known.pids.includes(pid)) known.pids.push(pid), known.comms.push(comm);
          continue;
        }
        const info = decodeSocket(k, f.socket, anomalies);
        if (!info) continue;
        bySocket.set(f.socket, info.sock);
        const s = bySock.get(info.sock);
        if (s) {
          if (!s.pids.includes(pid)) s.pids.push(pid), s.comms.push(comm);
        } else bySock.set(info.sock, { info, inode: f.inode, pids: [pid], comms: [comm], source: 'fd' });
      }
    }
    // Sockets no process holds are still in the kernel's tables; decoded only when not met through an fd.
    const onlyNonInet = family === 'unix' || family === 'netlink' || family === 'packet';
    for (const { sk, source } of onlyNonInet ? [] : kernelTableSocks(k, anomalies)) {
      if (bySock.has(sk)) continue;
      const info = decodeTableSock(k, sk, anomalies);
      if (info) bySock.set(sk, { info, inode: socketInode(k, info.socket, anomalies), pids: [], comms: [], source });
    }
    const na = absent('not-applicable');
    for (const { info, inode, pids, comms, source } of bySock.values()) {
      if (family && info.familyName !== family && info.proto !== family) continue;
      yield {
        proto: info.proto,
        family: info.familyName,
        type: info.typeName,
        state: info.stateName,
        localAddress: info.local?.address ?? na,
        localPort: info.local?.port ?? na,
        remoteAddress: info.remote?.address ?? na,
        remotePort: info.remote?.port ?? na,
        path: info.unixPath ?? na,
        inode,
        netns: info.netns ?? absent('unreadable'),
        pids,
        comms,
        sock: info.sock,
        source,
      };
    }
  },
});
