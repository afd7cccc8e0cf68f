import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AnomalySink } from '../../src/linux/anomaly.js';
import { isAbsent, runPlugin } from '../../src/linux/plugin.js';
import maps from '../../src/linux/plugins/maps.js';
import malfind from '../../src/linux/plugins/malfind.js';
import psaux from '../../src/linux/plugins/psaux.js';
import envars from '../../src/linux/plugins/envars.js';
import { forEachMapping, forEachVma } from '../../src/linux/mm.js';
import { PathResolver } from '../../src/linux/fs-path.js';
import { readObject } from '../../src/linux/tasks.js';
import { processArgv } from '../../src/linux/user-memory.js';
import { addMm, SyntheticKernel, VMA, type SynthVma, type Variant } from './helpers/synthetic-kernel.js';

const R = 1n, W = 2n, X = 4n, MAYSHARE = 0x80n;
const VMAS: SynthVma[] = [
  { start: 0x40_0000n, end: 0x40_1000n, flags: R | X },
  { start: 0x100_0000n, end: 0x102_1000n, flags: R | W },
  { start: 0x7f00_0000_0000n, end: 0x7f00_0000_1000n, flags: R | W | X },
  { start: 0x7f00_0001_0000n, end: 0x7f00_0001_2000n, flags: R | W | MAYSHARE },
  { start: 0x7fff_f000_0000n, end: 0x7fff_f002_1000n, flags: R | W },
];
const PROCS = [
  { pid: 1, comm: 'init', parent: -1 },
  { pid: 7, comm: 'victim', parent: 0 },
];

for (const variant of ['new', 'old'] as Variant[]) {
  test(`maps over the ${variant} layout: ranges, perms, [heap]/[stack] like /proc`, () => {
    const s = new SyntheticKernel(variant, PROCS);
    addMm(s, 1, VMAS, { startBrk: 0x100_0000n, brk: 0x102_1000n, startStack: 0x7fff_f002_0f00n });
    const r = runPlugin(maps, s.kernel, { pid: ['7'] });
    assert.deepEqual(r.anomalyCounts, {});
    assert.deepEqual(
      r.rows.map((x) => [x.start, x.end, x.perms, x.path]),
      [
        [0x40_0000n, 0x40_1000n, 'r-xp', ''],
        [0x100_0000n, 0x102_1000n, 'rw-p', '[heap]'],
        [0x7f00_0000_0000n, 0x7f00_0000_1000n, 'rwxp', ''],
        [0x7f00_0001_0000n, 0x7f00_0001_2000n, 'rw-s', ''],
        [0x7fff_f000_0000n, 0x7fff_f002_1000n, 'rw-p', '[stack]'],
      ],
    );
    const mf = runPlugin(malfind, s.kernel);
    assert.deepEqual(mf.rows.map((x) => [x.pid, x.start, x.reason]), [
      [7, 0x40_0000n, 'executable, no file'],
      [7, 0x7f00_0000_0000n, 'writable+executable, no file'],
    ]);
    // `where` picks VMAs by flags and file before their maps entry is built: the same entries, fewer of them.
    const a = new AnomalySink();
    const all = [...forEachMapping(s.kernel, a, { paths: new PathResolver(s.kernel, a) })].map((m) => m.entry);
    const seen: [bigint, bigint][] = [];
    const where = (flags: bigint, file: bigint) => {
      seen.push([flags, file]);
      return (flags & X) !== 0n;
    };
    const picked = [...forEachMapping(s.kernel, a, { paths: new PathResolver(s.kernel, a), where })].map((m) => m.entry);
    assert.deepEqual(picked, all.filter((e) => (e.flags & X) !== 0n));
    assert.deepEqual(seen, all.map((e) => [e.flags, e.file]), 'asked once per VMA, with its flags and file');
    assert.deepEqual(a.counts, {});
  });
}

test('a VMA list that loops (5.10 layout) ends with a cycle anomaly', () => {
  const s = new SyntheticKernel('old', PROCS);
  const { vmas } = addMm(s, 1, VMAS);
  s.mem.w64(vmas[3]! + BigInt(VMA.next), vmas[1]!);
  const r = runPlugin(maps, s.kernel);
  assert.equal(r.rows.length, 4);
  assert.equal(r.anomalyCounts.cycle, 1);
});

test('a maple entry that disagrees with its VMA (forged or changing) is invalid', () => {
  const s = new SyntheticKernel('new', PROCS);
  const { mm, vmas } = addMm(s, 1, VMAS);
  s.mem.w64(vmas[2]! + BigInt(VMA.start), 0x10n); // VMA says it starts below its predecessor
  const sink = new AnomalySink();
  const mmv = readObject(s.kernel, 'mm_struct', mm, sink, 'test')!;
  const got = [...forEachVma(s.kernel, mmv, sink)].map((v) => v.u64('vm_start'));
  assert.deepEqual(got, [0x40_0000n, 0x100_0000n, 0x7f00_0001_0000n, 0x7fff_f000_0000n]);
  assert.equal(sink.counts.invalid, 1);
});

test('argv and environ come from user memory; absurd lengths are bounded and named', () => {
  const s = new SyntheticKernel('new', PROCS);
  const argv = Buffer.from('/bin/victim\0--flag\0two words\0', 'latin1');
  const env = Buffer.from('A=1\0B=x=y\0', 'latin1');
  const base = 0x7fff_f002_0000n;
  s.mem.write(base, argv);
  s.mem.write(base + 0x100n, env);
  const { mm } = addMm(s, 1, VMAS, { argStart: base, argEnd: base + BigInt(argv.length), envStart: base + 0x100n, envEnd: base + 0x100n + BigInt(env.length) });
  const ps = runPlugin(psaux, s.kernel, { pid: ['7'] });
  assert.deepEqual(ps.rows[0]!.argv, ['/bin/victim', '--flag', 'two words']);
  assert.equal(ps.rows[0]!.args, '/bin/victim --flag two words');
  const ev = runPlugin(envars, s.kernel, { pid: ['7'] });
  assert.deepEqual(ev.rows.map((x) => [x.key, x.value]), [['A', '1'], ['B', 'x=y']]);
  // 1 GiB of "argv": read only the bound, flag it, the unmapped rest reads as faults
  s.mem.w64(mm + 0x40n, base + (1n << 30n));
  const sink = new AnomalySink();
  const mmv = readObject(s.kernel, 'mm_struct', mm, sink, 'test')!;
  const big = processArgv(s.kernel, mmv, sink);
  assert.ok(!isAbsent(big));
  assert.equal(sink.counts.truncated, 1);
  assert.ok((sink.counts.fault ?? 0) >= 1);
  // end before start
  s.mem.w64(mm + 0x40n, base - 1n);
  const sink2 = new AnomalySink();
  assert.ok(isAbsent(processArgv(s.kernel, readObject(s.kernel, 'mm_struct', mm, sink2, 'test')!, sink2)));
  assert.equal(sink2.counts.invalid, 1);
});
