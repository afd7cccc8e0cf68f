import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AnomalySink } from '../../src/linux/anomaly.js';
import { decodeSock, deviceFlags, tcpEstablishedSockets, formatIpv4, formatIpv6, interfaceFlagNames, ntohs, tcpStateName, unixSocketPath } from '../../src/linux/net.js';
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

/** sock_common / sock / unix_sock laid out by us; the decoder only follows BTF offsets. */
function sockKernel() {
  const b = new TypeBuilder();
  const in6 = b.struct('in6_addr', 16, [['s6_addr', b.array(b.u8, 16), 0]]);
  const net = b.declare('net');
  const nsCommon = b.struct('ns_common', 8, [['inum', b.uint, 0]]);
  b.define(net, 64, [['ns', nsCommon, 16]]);
  const possibleNet = b.struct('', 8, [['net', b.ptr(net), 0]]);
  const nullsNode = b.declare('hlist_nulls_node');
  b.define(nullsNode, 16, [['next', b.ptr(nullsNode), 0], ['pprev', b.ptr(b.ptr(nullsNode)), 8]]);
  const nullsHead = b.struct('hlist_nulls_head', 8, [['first', b.ptr(nullsNode), 0]]);
  const bucket = b.struct('inet_ehash_bucket', 8, [['chain', nullsHead, 0]]);
  b.struct('inet_hashinfo', 0x20, [['ehash', b.ptr(bucket), 0], ['ehash_mask', b.uint, 0x10]]);
  const skc = b.struct('sock_common', 0x60, [
    ['skc_nulls_node', nullsNode, 0x28],
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
  ]);
  const sockaddrUn = b.struct('sockaddr_un', 110, [['sun_family', b.u16, 0], ['sun_path', b.array(b.char, 108), 2]]);
  const ua = b.struct('unix_address', 8 + 110, [['refcnt', b.uint, 0], ['len', b.int_, 4], ['name', b.array(sockaddrUn, 0), 8]]);
  b.struct('unix_sock', 0x180, [['sk', sock, 0], ['addr', b.ptr(ua), 0x100]]);
  const mem = new BareSpace();
  return { k: makeKernel(b, mem, [['tcp_hashinfo', HASHINFO]]), mem };
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
  function skc(mem: BareSpace, sk: bigint, state: number, lport: number, next: bigint): void {
    mem.map(sk, 0x100);
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
    skc(mem, A, 1, 4444, B + 0x28n);
    skc(mem, B, 6, 5555, 1n);
    mem.w16(B + 0x80n, 0xffff); // beyond sock_common a TIME_WAIT sock holds other data
    skc(mem, C, 1, 6666, 5n);
    const a = new AnomalySink();
    const rows = [...tcpEstablishedSockets(k, a)];
    assert.deepEqual(rows.map((r) => `${r.proto} ${r.local!.port} ${r.stateName}`), ['tcp 4444 ESTABLISHED', 'tcp 5555 TIME_WAIT', 'tcp 6666 ESTABLISHED']);
    assert.equal(a.total, 0);
  });

  test('corrupt: a chain cycle and an absurd mask are anomalies, not hangs', () => {
    const { k, mem } = table([A + 0x28n, 1n]);
    skc(mem, A, 1, 1, B + 0x28n);
    skc(mem, B, 1, 2, A + 0x28n);
    const a = new AnomalySink();
    assert.equal([...tcpEstablishedSockets(k, a)].length, 2);
    assert.equal(a.counts.cycle, 1);
    const t = table([], 0x7fff_ffff);
    const a2 = new AnomalySink();
    assert.deepEqual([...tcpEstablishedSockets(t.k, a2)], []);
    assert.equal(a2.counts.invalid, 1);
  });
});
