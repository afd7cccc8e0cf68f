/**
 * Sockets: listen, connect and close of TCP, UDP and raw sockets over IPv4/IPv6, with addresses and owners
 * (sockstat's rows). Wakes on the buckets of the kernel's TCP established and listening hashes and the UDP
 * hash (a socket added or removed at a chain's head rewrites its bucket) and on each socket's state byte; a
 * sweep catches what neither announces (removal from the middle of a chain of a socket already closed, unix
 * sockets, which live in no such table and are not reported as events).
 */
import sockstat, { type SockstatRow } from '../../linux/plugins/sockstat.js';
import { isAbsent } from '../../linux/plugin.js';
import { hexAddress, type EventDraft, type EventValue } from '../events.js';
import type { WatchContext } from '../watcher.js';
import type { WatchRange } from '../watch-set.js';
import { PluginWatch, rangesOf } from './plugin-watch.js';

const INET = new Set(['tcp', 'tcp6', 'udp', 'udp6', 'raw', 'raw6', 'udplite', 'udplite6']);
/** Bucket arrays larger than this are swept, not watched page by page. */
const MAX_TABLE_BYTES = 1 << 20;

function tableRanges(ctx: WatchContext): WatchRange[] {
  const k = ctx.kernel;
  const out: WatchRange[] = [];
  const table = (ptrOwner: string, symbol: string, ptrField: string, maskField: string, bucketType: string): void => {
    try {
      if (!k.hasSymbol(symbol) || !k.types.hasMember(ptrOwner, ptrField) || !k.types.hasMember(ptrOwner, maskField)) return;
      const o = k.typed.obj(ptrOwner, k.symbol(symbol)).read();
      const va = o.ptr(ptrField);
      const buckets = Number(BigInt.asUintN(32, o.int(maskField))) + 1;
      const size = buckets * k.types.sizeOf(bucketType);
      if (va !== 0n && size > 0 && size <= MAX_TABLE_BYTES) out.push(...rangesOf(ctx, va, size));
    } catch {
      // a table this kernel does not have, or unreadable now: the sweep covers it
    }
  };
  table('inet_hashinfo', 'tcp_hashinfo', 'ehash', 'ehash_mask', 'inet_ehash_bucket');
  table('inet_hashinfo', 'tcp_hashinfo', 'lhash2', 'lhash2_mask', 'inet_listen_hashbucket');
  table('udp_table', 'udp_table', 'hash', 'mask', 'udp_hslot');
  return out;
}

function endpoint(r: SockstatRow): Record<string, EventValue> {
  const v = (x: string | number | { absent: string } | unknown): EventValue => (isAbsent(x) ? null : (x as EventValue));
  return {
    proto: r.proto,
    state: r.state,
    local: v(r.localAddress),
    localPort: v(r.localPort),
    remote: v(r.remoteAddress),
    remotePort: v(r.remotePort),
    inode: Number(r.inode),
    pids: r.pids,
    comms: r.comms,
    sock: hexAddress(r.sock),
  };
}

const isListen = (r: SockstatRow): boolean => r.state === 'LISTEN' || (!r.proto.startsWith('tcp') && isAbsent(r.remoteAddress));
const isConnected = (r: SockstatRow): boolean => ['ESTABLISHED', 'SYN_SENT', 'SYN_RECV'].includes(r.state) || (!r.proto.startsWith('tcp') && !isAbsent(r.remoteAddress));

export function socketsWatch(sweepMs = 500): PluginWatch<SockstatRow> {
  let stateOffset: bigint | undefined;
  return new PluginWatch<SockstatRow>({
    name: 'sockets',
    plugin: sockstat,
    emits: ['socket-listen', 'socket-connect', 'socket-close'],
    sweepMs,
    sentinels: tableRanges,
    // A listener or connection is made by a process: read between the walk of the fd tables and the
    // walk of the hash tables it can show up ownerless for a moment. TIME_WAIT and orphans have no owner.
    incomplete: (r) => INET.has(r.proto) && r.pids.length === 0 && (isListen(r) || r.state === 'ESTABLISHED' || r.state === 'SYN_SENT'),
    rowRanges(ctx, row) {
      if (!INET.has(row.proto)) return [];
      stateOffset ??= BigInt(ctx.kernel.types.offsetOf('sock_common', 'skc_state'));
      return rangesOf(ctx, row.sock + stateOffset, 1);
    },
    diff(prev, next) {
      const out: EventDraft[] = [];
      const owner = (r: SockstatRow) => (r.pids.length ? { process: { pid: r.pids[0]!, ...(r.comms[0] ? { comm: r.comms[0] } : {}) } } : {});
      for (const [key, r] of next) {
        if (!INET.has(r.proto)) continue;
        const before = prev.get(key);
        const kind = isListen(r) ? 'socket-listen' : isConnected(r) ? 'socket-connect' : undefined;
        if (!before) {
          if (kind) out.push({ type: kind, watch: 'sockets', key, ...owner(r), data: endpoint(r) });
        } else if (before.state !== r.state) {
          if (r.state === 'CLOSE' || r.state === 'TIME_WAIT' || r.state === 'CLOSE_WAIT' || r.state === 'LAST_ACK' || r.state === 'FIN_WAIT1')
            out.push({ type: 'socket-close', watch: 'sockets', key, ...owner(before), before: { state: before.state }, after: { state: r.state }, data: endpoint(r) });
          else if (kind && !(isListen(before) && kind === 'socket-listen') && !(isConnected(before) && kind === 'socket-connect'))
            out.push({ type: kind, watch: 'sockets', key, ...owner(r), before: { state: before.state }, after: { state: r.state }, data: endpoint(r) });
        }
      }
      for (const [key, r] of prev) {
        if (!INET.has(r.proto) || next.has(key)) continue;
        const already = r.state === 'CLOSE' || r.state === 'TIME_WAIT';
        if (!already) out.push({ type: 'socket-close', watch: 'sockets', key, ...owner(r), data: endpoint(r) });
      }
      return out;
    },
  });
}
