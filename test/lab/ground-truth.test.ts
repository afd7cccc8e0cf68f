import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { test } from 'node:test';
import { FormatError } from '../../src/core/errors.js';
import {
  kallsymsDigest,
  kallsymsLine,
  parseGroundTruth,
  processByComm,
  socketInodes,
  type GtKallsymsEntry,
} from '../../src/lab/ground-truth.js';

const KSYMS: GtKallsymsEntry[] = [
  { address: 0n, type: 'A', name: 'fixed_percpu_data' },
  { address: 0xffffffff9c000000n, type: 'T', name: '_text' },
  { address: 0xffffffff9d361900n, type: 'D', name: 'linux_banner' },
  { address: 0xffffffff9dc1aa40n, type: 'D', name: 'init_task' },
];

function ksymsText(): string {
  return KSYMS.map(kallsymsLine).join('');
}

/** A console log shaped like a real boot: kernel noise, markers, sections, trailing READY. */
function consoleLog(): string {
  const sha = crypto.createHash('sha256').update(ksymsText()).digest('hex');
  const proc = (o: Record<string, unknown>) =>
    JSON.stringify({ state: 'S', flags: 0, kthread: false, starttime: 50, uid: [0, 0, 0, 0], gid: [0, 0, 0, 0], capInh: '0', capPrm: '0', capEff: '0', capBnd: '0', ...o });
  return [
    '[    0.000000] Linux version 6.1.0-56-amd64 ...',
    'VMI-INIT',
    'VMI-WARN vmi-user not ready',
    'VMI-BOOTED uptime=2.87',
    'VMI-GT-BEGIN v1',
    '@@ uname',
    '6.1.0-56-amd64',
    '@@ version',
    'Linux version 6.1.0-56-amd64 (debian-kernel@lists.debian.org) #1 SMP',
    '@@ cmdline',
    'console=ttyS0 panic=-1',
    '@@ hostname',
    'vmi-lab',
    '@@ kallsyms-digest',
    `count ${KSYMS.length}`,
    `sha256 ${sha}`,
    `first ${kallsymsLine(KSYMS[0]!).trimEnd()}`,
    `last ${kallsymsLine(KSYMS[3]!).trimEnd()}`,
    '@@ kallsyms-spots',
    'ffffffff9c000000 T _text',
    'ffffffff9dc1aa40 D init_task',
    'ffffffff9dc1aa40 D init_task',
    '@@ kallsyms-modules',
    '166',
    '@@ kallsyms-tagged',
    'ffffffffc0201000 t dummy_setup\t[dummy]',
    'ffffffffc0203040 T veth_init\t[veth]',
    'ffffffffa0000e40 t bpf_prog_6deef7357e7b4530_sd_fw_egress\t[bpf]',
    '@@ vmcoreinfo',
    '0x00000000018e2000 1024',
    '@@ fw-cfg-vmcoreinfo',
    '000001002410000000208e0100000000',
    '@@ cpu-flags',
    'flags\t\t: fpu vme de pse la57 hypervisor',
    '@@ iomem',
    '00000000-00000fff : Reserved',
    '00100000-0ffdefff : System RAM',
    '  07200000-081fffff : Kernel code',
    '@@ ip-addr',
    '1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever',
    '2: dummy0    inet6 fd00:10::15/64 scope global \\       valid_lft forever preferred_lft forever',
    '@@ ip-link',
    '2: dummy0: <BROADCAST,NOARP,UP,LOWER_UP> mtu 1500 qdisc noqueue qlen 1000\\    link/ether 22:c1:2f:62:f9:52 brd ff:ff:ff:ff:ff:ff',
    '@@ dmesg',
    '[    1.856384] Run /init as init process',
    'continuation without stamp',
    '@@ procs',
    proc({ pid: 1, ppid: 0, comm: 'vmi-init', cmdline: ['/bin/vmi-init'], threads: [{ tid: 1, comm: 'vmi-init', state: 'R' }] }),
    proc({ pid: 2, ppid: 0, comm: 'kthreadd', kthread: true, cmdline: [], threads: [{ tid: 2, comm: 'kthreadd', state: 'S' }] }),
    proc({
      pid: 98,
      ppid: 1,
      comm: 'vmi-net',
      uid: [1000, 1000, 1000, 1000],
      cmdline: ['/bin/vmi-net', 'two words'],
      threads: [
        { tid: 98, comm: 'vmi-net', state: 'S' },
        { tid: 99, comm: 'vmi-worker-1', state: 'S' },
      ],
    }),
    '@@ fds 98',
    '{"fd":0,"target":"/dev/null","pos":0,"flags":"0100000"}',
    '{"fd":3,"target":"socket:[9923]","pos":0,"flags":"02"}',
    '@@ environ 98',
    '["HOME=/","VMI_MARKER=x y"]',
    '@@ ns 98',
    '{"net":"net:[4026531840]","uts":"uts:[4026531838]"}',
    '@@ maps 98',
    '00400000-00401000 r--p 00000000 00:02 286                                /bin/vmi-helper',
    '7efc4db8c000-7efc4db8d000 rwxp 00000000 00:00 0 ',
    '7ffdf790c000-7ffdf792d000 rw-p 00000000 00:00 0                          [stack]',
    '@@ cgroup 98',
    '0::/vmi-container',
    '@@ net/tcp',
    '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
    '   0: 00000000:115C 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 9923 1 (____ptrval____) 100 0 0 10 0',
    '   1: 0100007F:A6B2 0100007F:115C 01 00000000:00000000 00:00000000 00000000  1000        0 9946 1 (____ptrval____) 20 0 0 10 -1',
    '@@ net/tcp6',
    '  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
    '   0: 00000000000000000000000001000000:1F90 00000000000000000000000001000000:A634 01 00000000:00000000 00:00000000 00000000     0        0 9947 1 (____ptrval____) 20 0 0 10 -1',
    '@@ net/udp',
    '@@ net/udp6',
    '@@ net/raw',
    '@@ net/raw6',
    '@@ net/unix',
    'Num       RefCount Protocol Flags    Type St Inode Path',
    '(____ptrval____): 00000002 00000000 00010000 0001 01  9928 /tmp/vmi.sock',
    '(____ptrval____): 00000003 00000000 00000000 0001 03  9950',
    '@@ modules',
    'veth 36864 0 - Live 0xffffffffc04d8000',
    'hider 16384 1 dummy,veth, Live 0xffffffffc04d3000 (OE)',
    '@@ mountinfo',
    '1 1 0:2 / / rw - rootfs rootfs rw,size=100660k',
    '26 22 0:23 / /sys/fs/cgroup rw,relatime shared:1 - cgroup2 cgroup2 rw',
    '27 1 0:24 / /mnt/with\\040space rw - tmpfs tmpfs rw',
    '@@ uptime',
    '3.83 1.20',
    'VMI-GT-END',
    'VMI-READY uptime=3.83',
    '',
  ].join('\r\n');
}

test('a synthetic console log parses into every section', () => {
  const gt = parseGroundTruth(consoleLog());
  assert.equal(gt.release, '6.1.0-56-amd64');
  assert.match(gt.banner, /^Linux version 6\.1\.0-56-amd64/);
  assert.equal(gt.hostname, 'vmi-lab');
  assert.equal(gt.kallsyms.coreCount, 4);
  assert.equal(gt.kallsyms.taggedCount, 166);
  assert.deepEqual(gt.kallsyms.tagged, [
    { address: 0xffffffffc0201000n, type: 't', name: 'dummy_setup', tag: 'dummy' },
    { address: 0xffffffffc0203040n, type: 'T', name: 'veth_init', tag: 'veth' },
    { address: 0xffffffffa0000e40n, type: 't', name: 'bpf_prog_6deef7357e7b4530_sd_fw_egress', tag: 'bpf' },
  ]);
  assert.equal(gt.kallsyms.spots['init_task']!.address, 0xffffffff9dc1aa40n);
  assert.equal(gt.kallsyms.spots['_text']!.type, 'T');
  assert.deepEqual(gt.kallsyms.first, KSYMS[0]);
  assert.deepEqual(gt.vmcoreinfo, { paddr: 0x18e2000n, size: 0x1024 });
  assert.deepEqual(gt.fwCfgVmcoreinfo, { hostFormat: 0, guestFormat: 1, size: 0x1024, paddr: 0x18e2000n });
  assert.deepEqual(
    gt.addresses.map((a) => [a.ifname, a.family, a.address, a.prefixLen, a.scope]),
    [
      ['lo', 'inet', '127.0.0.1', 8, 'host'],
      ['dummy0', 'inet6', 'fd00:10::15', 64, 'global'],
    ],
  );
  assert.deepEqual(gt.cpuFlags, ['fpu', 'vme', 'de', 'pse', 'la57', 'hypervisor']);
  assert.deepEqual(gt.iomem[2], { start: 0x7200000n, end: 0x81fffffn, name: 'Kernel code', depth: 1 });
  assert.equal(gt.iomem[1]!.name, 'System RAM');
  assert.deepEqual(gt.links[0], { index: 2, name: 'dummy0', flags: ['BROADCAST', 'NOARP', 'UP', 'LOWER_UP'], mtu: 1500, linkType: 'ether', mac: '22:c1:2f:62:f9:52' });
  assert.equal(gt.dmesg[0]!.time, 1.856384);
  assert.equal(gt.dmesg[0]!.text, 'Run /init as init process');
  assert.equal(gt.dmesg[1]!.time, undefined);
  assert.equal(gt.processes.length, 3);
  const net = processByComm(gt, 'vmi-net')!;
  assert.deepEqual(net.uid, [1000, 1000, 1000, 1000]);
  assert.deepEqual(net.cmdline, ['/bin/vmi-net', 'two words']);
  assert.deepEqual(net.threads.map((t) => t.tid), [98, 99]);
  assert.equal(processByComm(gt, 'kthreadd')!.kthread, true);
  const d = gt.details.get(98)!;
  assert.deepEqual(d.environ, ['HOME=/', 'VMI_MARKER=x y']);
  assert.equal(d.ns['net'], 'net:[4026531840]');
  assert.equal(d.maps.length, 3);
  assert.equal(d.maps[0]!.path, '/bin/vmi-helper');
  assert.equal(d.maps[1]!.path, '');
  assert.equal(d.maps[1]!.perms, 'rwxp');
  assert.equal(d.maps[2]!.end, 0x7ffdf792d000n);
  assert.deepEqual(d.cgroup, ['0::/vmi-container']);
  assert.deepEqual(socketInodes(gt, 98), [9923]);
  assert.deepEqual(
    gt.net.tcp.map((s) => [s.localAddress, s.localPort, s.remoteAddress, s.remotePort, s.stateName, s.uid, s.inode]),
    [
      ['0.0.0.0', 4444, '0.0.0.0', 0, 'LISTEN', 0, 9923],
      ['127.0.0.1', 42674, '127.0.0.1', 4444, 'ESTABLISHED', 1000, 9946],
    ],
  );
  assert.equal(gt.net.tcp6[0]!.localAddress, '::1');
  assert.equal(gt.net.tcp6[0]!.localPort, 8080);
  assert.equal(gt.net.tcp6[0]!.family, 6);
  assert.deepEqual(gt.net.udp, []);
  assert.deepEqual(
    gt.net.unix.map((u) => [u.path, u.listening, u.type, u.state, u.inode]),
    [
      ['/tmp/vmi.sock', true, 1, 1, 9928],
      ['', false, 1, 3, 9950],
    ],
  );
  assert.deepEqual(gt.modules[1], { name: 'hider', size: 16384, refcount: 1, deps: ['dummy', 'veth'], state: 'Live', address: 0xffffffffc04d3000n, taint: 'OE' });
  assert.equal(gt.mounts[1]!.fsType, 'cgroup2');
  assert.deepEqual(gt.mounts[1]!.optional, ['shared:1']);
  assert.equal(gt.mounts[2]!.mountPoint, '/mnt/with space');
  assert.deepEqual(gt.uptime, { seconds: 3.83, idle: 1.2 });
  assert.equal(gt.bootedUptime, 2.87);
  assert.equal(gt.readyUptime, 3.83);
  assert.deepEqual(gt.warnings, ['vmi-user not ready']);
});

test('kallsymsDigest hashes the exact /proc/kallsyms text of core symbols', () => {
  const expected = crypto.createHash('sha256').update(ksymsText()).digest('hex');
  assert.deepEqual(kallsymsDigest(KSYMS), { sha256: expected, count: 4 });
  assert.equal(kallsymsLine(KSYMS[0]!), '0000000000000000 A fixed_percpu_data\n');
  // Large inputs are hashed in batches: the result must not depend on batching.
  const many = Array.from({ length: 5000 }, (_, i) => ({ address: 0xffffffff81000000n + BigInt(i * 16), type: 't', name: `sym_${i}` }));
  const text = many.map(kallsymsLine).join('');
  assert.equal(kallsymsDigest(many).sha256, crypto.createHash('sha256').update(text).digest('hex'));
  assert.notEqual(kallsymsDigest(many.slice(1)).sha256, kallsymsDigest(many).sha256);
});

test('broken or missing ground truth is a FormatError naming the problem', () => {
  assert.throws(() => parseGroundTruth('booting...\n'), (e: unknown) => e instanceof FormatError && /no VMI-GT-BEGIN/.test(e.message));
  const full = consoleLog();
  assert.throws(() => parseGroundTruth(full.slice(0, full.indexOf('VMI-GT-END'))), /no VMI-GT-END/);
  assert.throws(() => parseGroundTruth(full.replace('VMI-GT-BEGIN v1', 'VMI-GT-BEGIN v9')), /unsupported ground-truth version/);
  assert.throws(() => parseGroundTruth(full.replace('{"fd":3', '{fd:3')), /section 'fds 98': not JSON/);
  assert.throws(() => parseGroundTruth(full.replace(/sha256 [0-9a-f]{64}/, 'sha256 nope')), /bad sha256/);
  assert.throws(() => parseGroundTruth(full.replace('0A 00000000:00000000', 'ZZ 00000000:00000000')), /net\/tcp/);
  assert.throws(() => parseGroundTruth(full.replace('@@ procs', '@@ procz')), /section 'procs': missing/);
});

test('the last ground-truth block wins when a log holds two', () => {
  const one = consoleLog();
  const two = one + one.replace('vmi-lab', 'second-boot');
  assert.equal(parseGroundTruth(two).hostname, 'second-boot');
});
