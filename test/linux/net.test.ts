import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AnomalySink } from '../../src/linux/anomaly.js';
import { formatIpv4, formatIpv6, ntohs, tcpStateName } from '../../src/linux/net/format.js';
import { decodeTableSock, kernelTableSocks, socketInode, tcpEstablishedSockets } from '../../src/linux/net/inet-hashtables.js';
import { deviceFlags, interfaceFlagNames } from '../../src/linux/net/netdevice.js';
import { decodeSock, unixSocketPath } from '../../src/linux/net/sock.js';
import { hlistNullsChain, hlistNullsForEach } from '../../src/linux/walk/list.js';
import { WalkContext } from '../../src/linux/walk/common.js';
import { BareSpace, makeKernel } from './helpers/bare-kernel.js';
import { KBASE, TypeBuilder } from './helpers/synthetic.js';

const v6 = (s: string) => Uint8Array.from(Buffer.from(s.replace(/:/g, ''), 'hex'));

describe('address text', () => {
  test('IPv6 per RFC 5952', () => {
    assert.equal(formatIpv6(new Uint8Array(16)), '::');
    assert.equal(formatIpv6(v6('0000:0000:0000:0000:0000:0000:0000:0001')), '::1');
    assert.equal(formatIpv6(v6('fd00:0010:0000:0000:0000:0000:0000:0015')), 'fd00:10::15');
    assert.equal(formatIpv6(v6('fe80:0000:0000:0000:fcfd:adff:fe3b:5808')), 'fe80::fcfd:adff:fe3b:5808');
    assert.equal(formatIpv6(v6('2001:0db8:0000:0001:0000:0000:0000:0001')), '2001:db8:0:1::1'); // longest run wins
    assert.equal(formatIpv6(v6('2001:0db8:0000:0001:0001:0001:0001:0001')), '2001:db8:0:1:1:1:1:1'); // a single zero is not compressed
    assert.equal(formatIpv6(v6('0000:0000:0000:0000:0000:ffff:0a00:020f')), '::ffff:10.0.2.15');
  });
  test('IPv4, ports, states', () => {
    assert.equal(formatIpv4(Uint8Array.of(127, 0, 0, 1)), '127.0.0.1');
    assert.equal(ntohs(0x5c11), 4444);
    assert.equal(tcpStateName(10), 'LISTEN');
    assert.equal(tcpStateName(1), 'ESTABLISHED');
    assert.equal(tcpStateName(99), 'UNKNOWN(99)');
  });
  test('dev_get_flags: RUNNING/LOWER_UP from running, carrier and operstate', () => {
    // lo: IFF_UP|IFF_LOOPBACK, started, carrier, operstate UNKNOWN
    assert.deepEqual(interfaceFlagNames(deviceFlags(0x9, 1n, 0)), ['UP', 'LOOPBACK', 'RUNNING', 'LOWER_UP']);
    // down device: no derived bits even with stale RUNNING in dev->flags
    assert.deepEqual(interfaceFlagNames(deviceFlags(0x48, 0n, 2)), ['LOOPBACK']);
    // started but no carrier (bit 2), operstate DOWN (2)
    assert.deepEqual(interfaceFlagNames(deviceFlags(0x1003, 0b101n, 2)), ['UP', 'BROADCAST', 'MULTICAST']);
  });
});

/**
 * sock_common / sock / unix_sock and the kernel socket tables laid out by us;
 * the decoder only follows BTF offsets. `portaddr`: 5.10's listening hash
 * (hlist through icsk_listen_portaddr_node) instead of 5.19+'s nulls chains.
 */
function sockKernel(o: { portaddr?: boolean; symbols?: [string, bigint][] } = {}) {
  const b = new TypeBuilder();
  const in6 = b.struct('in6_addr', 16, [['s6_addr', b.array(b.u8, 16), 0]]);
  const net = b.declare('net');
  const nsCommon = b.struct('ns_common', 8, [['inum', b.uint, 0]]);
  b.define(net, 64, [['ns', nsCommon, 16]]);
  const possibleNet = b.struct('', 8, [['net', b.ptr(net), 0]]);
  const nullsNode = b.declare('hlist_nulls_node');
  b.define(nullsNode, 16, [['next', b.ptr(nullsNode), 0], ['pprev', b.ptr(b.ptr(nullsNode)), 8]]);
  const nullsHead = b.struct('hlist_nulls_head', 8, [['first', b.ptr(nullsNode), 0]]);
  const { hlistHead, hlistNode } = b.listTypes();
  const bucket = b.struct('inet_ehash_bucket', 8, [['chain', nullsHead, 0]]);
  const lbucket = b.struct('inet_listen_hashbucket', 16, o.portaddr ? [['head', hlistHead, 8], ['nulls_head', nullsHead, 8]] : [['nulls_head', nullsHead, 8]]);
  b.struct('inet_hashinfo', 0x20, [['ehash', b.ptr(bucket), 0], ['ehash_mask', b.uint, 0x10], ['lhash2_mask', b.uint, 0x14], ['lhash2', b.ptr(lbucket), 0x18]]);
  const hslot = b.struct('udp_hslot', 16, [['head', hlistHead, 0], ['count', b.int_, 8]]);
  b.struct('udp_table', 0x18, [['hash', b.ptr(hslot), 0], ['hash2', b.ptr(hslot), 8], ['mask', b.uint, 0x10], ['log', b.uint, 0x14]]);
  b.struct('raw_hashinfo', 8 + 4 * 8, [['lock', b.u64, 0], ['ht', b.array(hlistHead, 4), 8]]);
  const skc = b.struct('sock_common', 0x60, [
    ['skc_nulls_node', nullsNode, 0x28],
    ['skc_node', hlistNode, 0x28],
    ['skc_daddr', b.uint, 0],
    ['skc_rcv_saddr', b.uint, 4],
    ['skc_dport', b.u16, 12],
    ['skc_num', b.u16, 14],
    ['skc_family', b.u16, 16],
    ['skc_state', b.u8, 18],
    ['skc_net', possibleNet, 0x20],
    ['skc_v6_daddr', in6, 0x38],
    ['skc_v6_rcv_saddr', in6, 0x48],
  ]);
  const sock = b.struct('sock', 0x100, [
    ['__sk_common', skc, 0],
    ['sk_type', b.u16, 0x80],
    ['sk_protocol', b.u16, 0x82],
    ['sk_socket', b.voidp, 0x88],
  ]);
  if (o.portaddr) b.struct('inet_connection_sock', 0x200, [['icsk_inet', sock, 0], ['icsk_listen_portaddr_node', hlistNode, 0x1a0]]);
  const socket = b.struct('socket', 0x30, [['sk', b.ptr(sock), 0x18]]);
  const inode = b.struct('inode', 0x40, [['i_ino', b.ulong, 0x8]]);
  b.struct('socket_alloc', 0x80, [['socket', socket, 0], ['vfs_inode', inode, 0x30]]);
  const sockaddrUn = b.struct('sockaddr_un', 110, [['sun_family', b.u16, 0], ['sun_path', b.array(b.char, 108), 2]]);
  const ua = b.struct('unix_address', 8 + 110, [['refcnt', b.uint, 0], ['len', b.int_, 4], ['name', b.array(sockaddrUn, 0), 8]]);
  b.struct('unix_sock', 0x180, [['sk', sock, 0], ['addr', b.ptr(ua), 0x100]]);
  const mem = new BareSpace();
  return { k: makeKernel(b, mem, [['tcp_hashinfo', HASHINFO], ...(o.symbols ?? [])]), mem };
}

const SK = KBASE + 0x1000n;
const HASHINFO = KBASE + 0x20_0000n;
const EHASH = KBASE + 0x21_0000n;
const NET = KBASE + 0x8000n;

describe('decodeSock', () => {
  test('TCP over IPv4: host-order local port, network-order remote port, state, netns', () => {
    const { k, mem } = sockKernel();
    mem.write(SK, Uint8Array.of(127, 0, 0, 2)); // daddr
    mem.write(SK + 4n, Uint8Array.of(10, 0, 2, 15)); // rcv_saddr
    mem.w16(SK + 12n, 0x6ac1); // dport 49514 in network order
    mem.w16(SK + 14n, 4444);
    mem.w16(SK + 16n, 2);
    mem.w8(SK + 18n, 1);
    mem.w64(SK + 0x20n, NET);
    mem.w32(NET + 16n, 4026531840);
    mem.w16(SK + 0x80n, 1);
    mem.w16(SK + 0x82n, 6);
    const s = decodeSock(k, SK, 0n, new AnomalySink())!;
    assert.equal(s.proto, 'tcp');
    assert.deepEqual(s.local, { address: '10.0.2.15', port: 4444 });
    assert.deepEqual(s.remote, { address: '127.0.0.2', port: 49514 });
    assert.equal(s.stateName, 'ESTABLISHED');
    assert.equal(s.netns, 4026531840);
  });

  test('UDP over IPv6 and RAW', () => {
    const { k, mem } = sockKernel();
    mem.w16(SK + 16n, 10);
    mem.w8(SK + 18n, 7);
    mem.w16(SK + 14n, 6001);
    mem.write(SK + 0x48n, v6('0000:0000:0000:0000:0000:0000:0000:0001'));
    mem.w16(SK + 0x80n, 2);
    mem.w16(SK + 0x82n, 17);
    const s = decodeSock(k, SK, 0n, new AnomalySink())!;
    assert.equal(s.proto, 'udp6');
    assert.deepEqual(s.local, { address: '::1', port: 6001 });
    assert.equal(s.stateName, 'CLOSE');
    mem.w16(SK + 0x80n, 3);
    mem.w16(SK + 0x82n, 58);
    assert.equal(decodeSock(k, SK, 0n, new AnomalySink())!.proto, 'raw6');
  });

  test('unix paths: filesystem, abstract (@), unbound, absurd length', () => {
    const { k, mem } = sockKernel();
    const UA = KBASE + 0x3000n;
    mem.w16(SK + 16n, 1);
    mem.w64(SK + 0x100n, UA);
    mem.w32(UA + 4n, 2 + 13);
    mem.w16(UA + 8n, 1);
    mem.wstr(UA + 10n, '/tmp/vmi.sock');
    const a = new AnomalySink();
    assert.equal(decodeSock(k, SK, 0n, a)!.unixPath, '/tmp/vmi.sock');
    mem.write(UA + 10n, Uint8Array.from([0, ...Buffer.from('hidden')]));
    mem.w32(UA + 4n, 2 + 7);
    assert.equal(unixSocketPath(k, SK, a), '@hidden');
    mem.w32(UA + 4n, 100000);
    assert.equal(unixSocketPath(k, SK, a), '');
    assert.equal(a.counts.invalid, 1);
    mem.w64(SK + 0x100n, 0n);
    assert.equal(unixSocketPath(k, SK, a), '');
  });

  test('an unmapped sock is a fault anomaly', () => {
    const { k } = sockKernel();
    const a = new AnomalySink();
    assert.equal(decodeSock(k, KBASE + 0x40_0000n, 0n, a), undefined);
    assert.equal(a.counts.fault, 1);
  });
});

describe('TCP established hash', () => {
  /** A sock_common at `sk` in `family`/`state` with ports, chained to `next` (odd = nulls end marker). */
  function skc(mem: BareSpace, sk: bigint, state: number, lport: number, next: bigint, pprev: bigint): void {
    mem.map(sk, 0x100);
    mem.w64(sk + 0x30n, pprev);
    mem.w16(sk + 16n, 2);
    mem.w8(sk + 18n, state);
    mem.w16(sk + 14n, lport);
    mem.write(sk + 4n, Uint8Array.of(127, 0, 0, 1));
    mem.w64(sk + 0x28n, next);
    mem.w16(sk + 0x80n, 1);
    mem.w16(sk + 0x82n, 6);
  }
  function table(buckets: bigint[], mask = buckets.length - 1) {
    const { k, mem } = sockKernel();
    mem.w64(HASHINFO, EHASH);
    mem.w32(HASHINFO + 0x10n, mask);
    buckets.forEach((first, i) => mem.w64(EHASH + BigInt(i * 8), first));
    return { k, mem };
  }
  const A = KBASE + 0x30_0000n;
  const B = KBASE + 0x30_1000n;
  const C = KBASE + 0x30_2000n;

  test('walks nulls chains; TIME_WAIT socks decode from sock_common alone', () => {
    const { k, mem } = table([A + 0x28n, (1n << 1n) | 1n, C + 0x28n, (3n << 1n) | 1n]);
    skc(mem, A, 1, 4444, B + 0x28n, EHASH);
    skc(mem, B, 6, 5555, 1n, A + 0x28n);
    mem.w16(B + 0x80n, 0xffff); // beyond sock_common a TIME_WAIT sock holds other data
    skc(mem, C, 1, 6666, 5n, EHASH + 16n);
    const a = new AnomalySink();
    const rows = [...tcpEstablishedSockets(k, a)];
    assert.deepEqual(rows.map((r) => `${r.proto} ${r.local!.port} ${r.stateName}`), ['tcp 4444 ESTABLISHED', 'tcp 5555 TIME_WAIT', 'tcp 6666 ESTABLISHED']);
    assert.equal(a.total, 0);
  });

  test('corrupt: a chain cycle and an absurd mask are anomalies, not hangs', () => {
    const { k, mem } = table([A + 0x28n, 1n]);
    skc(mem, A, 1, 1, B + 0x28n, EHASH);
    skc(mem, B, 1, 2, A + 0x28n, A + 0x28n);
    const a = new AnomalySink();
    assert.equal([...tcpEstablishedSockets(k, a)].length, 2);
    assert.equal(a.counts.cycle, 1);
    const t = table([], 0x7fff_ffff);
    const a2 = new AnomalySink();
    assert.deepEqual([...tcpEstablishedSockets(t.k, a2)], []);
    assert.equal(a2.counts.invalid, 1);
  });
});

describe('hlist_nulls walk', () => {
  const HEAD = KBASE + 0x50_0000n;
  const N1 = KBASE + 0x51_0000n;
  const N2 = KBASE + 0x52_0000n;
  /** A hlist_nulls_node {next, pprev} at `at`. */
  const node = (mem: BareSpace, at: bigint, next: bigint, pprev: bigint) => (mem.w64(at, next), mem.w64(at + 8n, pprev));

  test('ends at the odd nulls marker and returns it; pprev is validated', () => {
    const { k, mem } = sockKernel();
    mem.w64(HEAD, N1);
    node(mem, N1, N2, HEAD);
    node(mem, N2, (7n << 1n) | 1n, N1);
    const a = new AnomalySink();
    assert.deepEqual([...hlistNullsForEach(k.typed, HEAD, { anomalies: a })], [N1, N2]);
    assert.equal(a.total, 0);
    const chain = hlistNullsChain(new WalkContext(k.typed, 't', { anomalies: a }), HEAD, N1);
    let r = chain.next();
    while (!r.done) r = chain.next();
    assert.equal(r.value, 15n);
    mem.w64(HEAD, 3n); // an empty chain is just its marker
    assert.deepEqual([...hlistNullsForEach(k.typed, HEAD, { anomalies: a })], []);
    node(mem, N2, 1n, HEAD); // wrong back-link
    mem.w64(HEAD, N1);
    assert.deepEqual([...hlistNullsForEach(k.typed, HEAD, { anomalies: a })], [N1, N2]);
    assert.equal(a.counts['broken-link'], 1);
  });

  test('a cycle, a NULL next (not a marker), a user pointer and an unmapped node are anomalies', () => {
    const { k, mem } = sockKernel();
    mem.w64(HEAD, N1);
    node(mem, N1, N2, HEAD);
    node(mem, N2, N1, N1);
    let a = new AnomalySink();
    assert.deepEqual([...hlistNullsForEach(k.typed, HEAD, { anomalies: a })], [N1, N2]);
    assert.equal(a.counts.cycle, 1);
    node(mem, N2, 0n, N1);
    a = new AnomalySink();
    assert.deepEqual([...hlistNullsForEach(k.typed, HEAD, { anomalies: a })], [N1, N2]);
    assert.equal(a.counts['bad-pointer'], 1);
    node(mem, N2, 0x7fff_0000n, N1);
    a = new AnomalySink();
    assert.equal([...hlistNullsForEach(k.typed, HEAD, { anomalies: a })].length, 2);
    assert.equal(a.counts['bad-pointer'], 1);
    node(mem, N2, KBASE + 0x7000_0000n, N1);
    a = new AnomalySink();
    assert.equal([...hlistNullsForEach(k.typed, HEAD, { anomalies: a })].length, 2);
    assert.equal(a.counts.fault, 1);
    assert.throws(() => [...hlistNullsForEach(k.typed, HEAD)], /fault/); // strict mode without a sink
  });

  test('bounded by the node limit', () => {
    const { k, mem } = sockKernel();
    mem.w64(HEAD, N1);
    node(mem, N1, N2, HEAD);
    node(mem, N2, 1n, N1);
    const a = new AnomalySink();
    assert.deepEqual([...hlistNullsForEach(k.typed, HEAD, { anomalies: a, limit: 1 })], [N1]);
    assert.equal(a.counts.limit, 1);
  });
});

describe('kernel socket tables', () => {
  const LHASH = KBASE + 0x22_0000n;
  const UDPT = KBASE + 0x23_0000n;
  const UDPHASH = KBASE + 0x24_0000n;
  const RAW4 = KBASE + 0x25_0000n;
  const L = KBASE + 0x31_0000n;
  const U1 = KBASE + 0x32_0000n;
  const U2 = KBASE + 0x33_0000n;
  const R = KBASE + 0x34_0000n;
  /** A full IPv4 sock of `type`/`protocol` on local port `lport` in state `state`. */
  function sock(mem: BareSpace, sk: bigint, type: number, protocol: number, state: number, lport: number): void {
    mem.map(sk, 0x200);
    mem.w16(sk + 16n, 2);
    mem.w8(sk + 18n, state);
    mem.w16(sk + 14n, lport);
    mem.w16(sk + 0x80n, type);
    mem.w16(sk + 0x82n, protocol);
  }
  function tables(o: { portaddr?: boolean } = {}) {
    // udplite_table names the same struct as udp_table: its socks must come out once.
    const t = sockKernel({ ...o, symbols: [['udp_table', UDPT], ['udplite_table', UDPT], ['raw_v4_hashinfo', RAW4]] });
    const { mem } = t;
    mem.w64(HASHINFO, EHASH);
    mem.w32(HASHINFO + 0x10n, 0);
    mem.w64(EHASH, 1n); // empty established hash
    mem.w32(HASHINFO + 0x14n, 1);
    mem.w64(HASHINFO + 0x18n, LHASH);
    // listener: lhash2 bucket 1 (head at +8 in a 16-byte bucket)
    sock(mem, L, 1, 6, 10, 22);
    if (o.portaddr) {
      // the same sock also in the established hash through its nulls node: found twice, listed once
      mem.w64(EHASH, L + 0x28n);
      mem.w64(L + 0x28n, 1n);
      mem.w64(L + 0x30n, EHASH);
      mem.w64(LHASH + 8n, 0n);
      mem.w64(LHASH + 24n, L + 0x1a0n);
      mem.w64(L + 0x1a0n, 0n);
      mem.w64(L + 0x1a8n, LHASH + 24n);
    } else {
      mem.w64(LHASH + 8n, 1n);
      mem.w64(LHASH + 24n, L + 0x28n);
      mem.w64(L + 0x28n, 3n);
      mem.w64(L + 0x30n, LHASH + 24n);
    }
    // UDP: two buckets, U1 -> U2 in bucket 0 (NULL-terminated hlist through sk_node)
    mem.w64(UDPT, UDPHASH);
    mem.w32(UDPT + 0x10n, 1);
    mem.w64(UDPHASH, U1 + 0x28n);
    mem.w64(UDPHASH + 16n, 0n);
    sock(mem, U1, 2, 17, 7, 53);
    sock(mem, U2, 2, 17, 1, 5353);
    mem.w64(U1 + 0x28n, U2 + 0x28n);
    mem.w64(U1 + 0x30n, UDPHASH);
    mem.w64(U2 + 0x28n, 0n);
    mem.w64(U2 + 0x30n, U1 + 0x28n);
    // raw: ht[2] -> R, with a struct socket whose inode is 4242
    mem.map(RAW4, 0x40);
    mem.w64(RAW4 + 8n + 16n, R + 0x28n);
    sock(mem, R, 3, 1, 7, 1);
    mem.w64(R + 0x28n, 0n);
    mem.w64(R + 0x30n, RAW4 + 24n);
    const SOCKET = KBASE + 0x35_0000n;
    mem.map(SOCKET, 0x80);
    mem.w64(R + 0x88n, SOCKET);
    mem.w64(SOCKET + 0x38n, 4242n);
    return t;
  }

  for (const portaddr of [false, true]) {
    test(`listeners (${portaddr ? '5.10 portaddr hlist' : '5.19+ nulls'}), UDP and raw, each sock once`, () => {
      const { k } = tables({ portaddr });
      const a = new AnomalySink();
      const found = [...kernelTableSocks(k, a)];
      assert.equal(a.total, 0, JSON.stringify(a.items.slice(0, 3), (_, v) => (typeof v === 'bigint' ? v.toString(16) : v)));
      assert.deepEqual(
        found.map((f) => `${f.source} ${f.sk.toString(16)}`),
        [`${portaddr ? 'tcp-ehash' : 'tcp-listen'} ${L.toString(16)}`, `udp ${U1.toString(16)}`, `udp ${U2.toString(16)}`, `raw ${R.toString(16)}`],
      );
      const rows = found.map((f) => decodeTableSock(k, f.sk, a)!);
      assert.deepEqual(rows.map((r) => `${r.proto} ${r.local!.port} ${r.stateName}`), ['tcp 22 LISTEN', 'udp 53 CLOSE', 'udp 5353 ESTABLISHED', 'raw 1 CLOSE']);
      assert.equal(socketInode(k, rows[3]!.socket, a), 4242n);
      assert.equal(socketInode(k, rows[0]!.socket, a), 0n); // no struct socket: /proc prints inode 0
    });
  }

  test('a faulting bucket array and a cyclic UDP chain are anomalies with partial results', () => {
    const { k, mem } = tables();
    mem.w64(U2 + 0x28n, U1 + 0x28n); // U2 -> U1: cycle
    mem.w64(HASHINFO + 0x18n, KBASE + 0x7000_0000n); // lhash2 unmapped
    const a = new AnomalySink();
    const found = [...kernelTableSocks(k, a)].map((f) => f.source);
    assert.deepEqual(found, ['udp', 'udp', 'raw']);
    assert.equal(a.counts.cycle, 1);
    assert.equal(a.counts.fault, 1);
  });
});
