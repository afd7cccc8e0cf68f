import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FaultError, FormatError, ProfileError, VmsightError } from '../../src/core/errors.js';
import { BtfKind, BtfTypes, parseBtf, parseBtfHeader } from '../../src/profile/btf.js';
import { btfFromFileBytes, btfFromMemory, btfFromKernelSymbols, moduleBtfsFromMemory } from '../../src/profile/btf/sources.js';
import { Typed } from '../../src/profile/typed.js';
import { TypeDb } from '../../src/profile/types.js';
import { BtfEncoder, kernelLikeBtf } from './helpers/btf-encoder.js';
import { realVmlinuxBtf } from './helpers/real-btf.js';
import { layoutText } from '../../src/cli/commands/type-layout.js';
import { seededRandom as rng } from '../../src/core/random.js';

test('decodes every BTF kind', () => {
  const e = new BtfEncoder();
  const int = e.int('int', 4, { signed: true });
  const chr = e.int('char', 1, { signed: true, char: true });
  const bool = e.int('_Bool', 1, { bool: true });
  const ptr = e.ptr(chr);
  const arr = e.array(int, int, 7);
  const st = e.struct('pair', 8, [
    { name: 'a', type: int, bitOffset: 0 },
    { name: 'b', type: int, bitOffset: 32 },
  ]);
  const un = e.union('either', 4, [
    { name: 'i', type: int, bitOffset: 0 },
    { name: 'c', type: chr, bitOffset: 0 },
  ]);
  const en = e.enum('color', 4, [
    ['RED', 0],
    ['BLUE', 7],
  ]);
  const fwd = e.fwd('opaque', true);
  const td = e.typedef('myint', int);
  const vol = e.volatile(int);
  const cst = e.const(int);
  const rst = e.restrict(ptr);
  const proto = e.funcProto(int, [
    ['x', int],
    ['', 0],
  ]);
  const fn = e.func('do_thing', proto, 1);
  const v = e.var('counter', int, 1);
  const ds = e.datasec('.data..percpu', 64, [[v, 16, 4]]);
  const fl = e.float('double', 8);
  const dt = e.declTag('user', st, 1);
  const tt = e.typeTag('rcu', ptr);
  const e64 = e.enum64('big', 8, [
    ['HUGE', 0xfedcba9876543210n],
    ['ONE', 1n],
  ]);
  const b = parseBtf(e.build(), { source: 'test' });
  assert.equal(b.count, e64 + 1);
  assert.deepEqual(b.get(0), { kind: 'void', id: 0, name: 'void' });
  assert.deepEqual(b.get(int), { kind: 'int', id: int, name: 'int', size: 4, signed: true, char: false, bool: false, bits: 32, bitOffset: 0 });
  assert.equal((b.get(chr) as { char: boolean }).char, true);
  assert.equal((b.get(bool) as { bool: boolean }).bool, true);
  assert.deepEqual(b.get(ptr), { kind: 'pointer', id: ptr, name: '', target: chr });
  assert.deepEqual(b.get(arr), { kind: 'array', id: arr, name: '', elem: int, length: 7 });
  assert.deepEqual(b.get(st), {
    kind: 'struct',
    id: st,
    name: 'pair',
    size: 8,
    members: [
      { name: 'a', type: int, bitOffset: 0, bitSize: 0 },
      { name: 'b', type: int, bitOffset: 32, bitSize: 0 },
    ],
  });
  assert.equal(b.get(un).kind, 'union');
  assert.deepEqual((b.get(en) as { values: unknown }).values, [
    { name: 'RED', value: 0n },
    { name: 'BLUE', value: 7n },
  ]);
  assert.deepEqual(b.get(fwd), { kind: 'fwd', id: fwd, name: 'opaque', union: true });
  assert.deepEqual(b.get(td), { kind: 'typedef', id: td, name: 'myint', target: int });
  assert.equal(b.get(vol).kind, 'volatile');
  assert.equal(b.get(cst).kind, 'const');
  assert.equal(b.get(rst).kind, 'restrict');
  assert.deepEqual(b.get(proto), {
    kind: 'func_proto',
    id: proto,
    name: '',
    ret: int,
    params: [
      { name: 'x', type: int },
      { name: '', type: 0 },
    ],
    variadic: true,
  });
  assert.deepEqual(b.get(fn), { kind: 'func', id: fn, name: 'do_thing', proto, linkage: 1 });
  assert.deepEqual(b.get(v), { kind: 'var', id: v, name: 'counter', type: int, linkage: 1 });
  assert.deepEqual(b.get(ds), { kind: 'datasec', id: ds, name: '.data..percpu', size: 64, vars: [{ type: v, offset: 16, size: 4 }] });
  assert.deepEqual(b.get(fl), { kind: 'float', id: fl, name: 'double', size: 8 });
  assert.deepEqual(b.get(dt), { kind: 'decl_tag', id: dt, name: 'user', target: st, component: 1 });
  assert.deepEqual(b.get(tt), { kind: 'type_tag', id: tt, name: 'rcu', target: ptr });
  assert.deepEqual((b.get(e64) as { values: unknown }).values, [
    { name: 'HUGE', value: 0xfedcba9876543210n },
    { name: 'ONE', value: 1n },
  ]);
  const db = new TypeDb(b);
  assert.equal(db.typeName(ptr), 'char *');
  assert.equal(db.declare(arr, 'xs'), 'int xs[7]');
  assert.equal(db.typeName(fn), 'int do_thing(int x, ...)');
  assert.equal(db.sizeOf(td), 4);
  assert.equal(db.sizeOf(v), 4);
  assert.deepEqual(b.lookup('counter'), [v]);
});

test('signed enum and enum64 values', () => {
  const e = new BtfEncoder();
  const en = e.enum('s', 4, [['NEG', -2]], true);
  const e64 = e.enum64('s64', 8, [['MIN', -(2n ** 63n)]], true);
  const b = parseBtf(e.build());
  assert.equal((b.get(en) as unknown as { values: { value: bigint }[] }).values[0]!.value, -2n);
  assert.equal((b.get(e64) as unknown as { values: { value: bigint }[] }).values[0]!.value, -(2n ** 63n));
  const db = new TypeDb(b);
  assert.equal(db.enumName(en, -2n), 'NEG');
  assert.equal(db.enumName(en, 0xfffffffe), 'NEG'); // the same bits read unsigned
});

test('kind_flag bitfields and legacy INT-encoded bitfields give the same fields', () => {
  const e = new BtfEncoder();
  const uint = e.int('unsigned int', 4);
  const kf = e.struct('kf', 4, [
    { name: 'a', type: uint, bitOffset: 0, bitSize: 3 },
    { name: 'b', type: uint, bitOffset: 3, bitSize: 5 },
  ], true);
  const legacyA = e.int('unsigned int', 4, { bits: 3 });
  const legacyB = e.int('unsigned int', 4, { bits: 5, offset: 3 });
  const legacy = e.struct('legacy', 4, [
    { name: 'a', type: legacyA, bitOffset: 0 },
    { name: 'b', type: legacyB, bitOffset: 0 },
  ]);
  const db = new TypeDb(parseBtf(e.build()));
  for (const s of [kf, legacy]) {
    const a = db.field(s, 'a');
    const b = db.field(s, 'b');
    assert.deepEqual([a.bitOffset, a.bitSize, a.offset], [0, 3, 0]);
    assert.deepEqual([b.bitOffset, b.bitSize, b.offset], [3, 5, 0]);
  }
  assert.match(layoutText(db, 'kf'), /a:3;/);
  assert.match(layoutText(db, 'legacy'), /b:5;/);
});

test('kernel-like fixture: names, anonymous members, bitfields', () => {
  const { bytes, ids } = kernelLikeBtf();
  const db = new TypeDb(parseBtf(bytes, { source: 'btf:fixture' }));
  assert.equal(db.sizeOf('task_struct'), 80);
  assert.equal(db.offsetOf('task_struct', 'prio'), 56);
  assert.equal(db.offsetOf('task_struct', 'static_prio'), 60);
  assert.equal(db.offsetOf('task_struct', 'tasks.prev'), 24);
  assert.equal(db.offsetOf('task_struct', 'comm[3]'), 43);
  assert.equal(db.field('task_struct', 'in_iowait').bitOffset, 97);
  assert.equal(db.struct('list_head').id, ids.list_head); // definition preferred over the fwd
  assert.equal(db.hasMember('task_struct', 'mm'), true);
  assert.equal(db.hasMember('task_struct', 'mmap'), false);
  assert.equal(db.hasMember('no_such_struct', 'x'), false);
});

test('split BTF continues ids and string offsets after its base', () => {
  const base = new BtfEncoder();
  const int = base.int('int', 4, { signed: true });
  const lh = base.struct('list_head', 16, [{ name: 'next', type: base.ptr(0), bitOffset: 0 }]);
  const baseBtf = parseBtf(base.build(), { source: 'btf:vmlinux' });
  const split = new BtfEncoder({ count: baseBtf.count, strLen: baseBtf.stringBytes });
  const mod = split.struct('hello_mod', 24, [
    { name: 'count', type: int, bitOffset: 0 },
    { name: 'list', type: lh, bitOffset: 64 },
  ]);
  const again = split.struct('list_head', 16, []); // a name both define
  const b = parseBtf(split.build(), { source: 'btf:hello', base: baseBtf });
  assert.equal(b.firstId, baseBtf.count);
  assert.equal(mod, baseBtf.count);
  assert.equal(b.get(int).name, 'int');
  const db = new TypeDb(b);
  assert.equal(db.offsetOf('hello_mod', 'list.next'), 8);
  assert.deepEqual(b.lookup('list_head'), [lh, again]);
  assert.equal(db.struct('list_head').id, lh);
  // A split blob without its base cannot resolve base ids or strings.
  assert.throws(() => parseBtf(split.build()).get(mod), FormatError);
});

test('header and record errors are FormatErrors naming the offset', () => {
  const good = kernelLikeBtf().bytes;
  const expectFormat = (bytes: Uint8Array, re: RegExp) => {
    assert.throws(
      () => {
        const b = parseBtf(bytes, { source: 'blob' });
        for (let i = 0; i < b.count; i++) b.get(i);
      },
      (e: unknown) => e instanceof FormatError && re.test(e.message) && e.file === 'blob',
    );
  };
  expectFormat(good.subarray(0, 10), /too short/);
  const be = new BtfEncoder();
  be.int('int', 4);
  expectFormat(be.build({ bigEndianMagic: true }), /big-endian/);
  expectFormat(be.build({ version: 2 }), /version 2/);
  expectFormat(good.subarray(0, good.length - 5), /truncated/);
  const bad = Uint8Array.from(good);
  bad[0] = 0;
  expectFormat(bad, /not BTF/);
  const unk = new BtfEncoder();
  unk.raw(25, 0, 0);
  expectFormat(unk.build(), /unknown BTF kind 25/);
  const dangling = new BtfEncoder();
  dangling.ptr(99);
  expectFormat(dangling.build(), /type id 99 is out of range/);
  const runaway = new BtfEncoder();
  runaway.raw(4, 0xffff, 8); // struct claiming 65535 members
  expectFormat(runaway.build(), /runs past the type section/);
  const badName = new BtfEncoder();
  badName.int('x', 4);
  const blob = badName.build();
  new DataView(blob.buffer).setUint32(24, 1_000_000, true);
  expectFormat(blob, /string offset 1000000/);
  try {
    parseBtf(blob, { source: 'blob' }).get(1);
  } catch (e) {
    assert.ok(e instanceof FormatError && e.offset === 24);
  }
});

test('btfFromMemory validates the span between __start_BTF and __stop_BTF', () => {
  const { bytes } = kernelLikeBtf();
  const base = 0xffffffff82000000n;
  const mem = {
    read(va: bigint, len: number) {
      const o = Number(va - base);
      if (o < 0 || o + len > bytes.length + 64) throw new Error('fault');
      const out = new Uint8Array(len);
      out.set(bytes.subarray(o, Math.min(o + len, bytes.length)));
      return out;
    },
  };
  const btf = btfFromMemory(mem, base, base + BigInt(bytes.length));
  assert.equal(btf.source, 'btf:memory');
  assert.equal(new TypeDb(btf).sizeOf('task_struct'), 80);
  assert.throws(() => btfFromMemory(mem, base, base + BigInt(bytes.length) + 8n), /spans/);
  assert.throws(() => btfFromMemory(mem, base + 4n, base + 100n), /no BTF magic/);
  assert.throws(() => btfFromMemory(mem, base, base + 8n), ProfileError);
  const syms = new Map([
    ['__start_BTF', base],
    ['__stop_BTF', base + BigInt(bytes.length)],
  ]);
  assert.equal(btfFromKernelSymbols(mem, { address: (n) => syms.get(n) }).localCount, kernelLikeBtf().bytes.length > 0 ? btf.localCount : 0);
  assert.throws(
    () => btfFromKernelSymbols(mem, { address: () => undefined }),
    (e: unknown) => e instanceof ProfileError && e.symbol === '__start_BTF' && /--profile/.test(e.oneLine()),
  );
});

test('btfFromFileBytes sniffs raw BTF and rejects other bytes', () => {
  const { bytes } = kernelLikeBtf();
  assert.equal(btfFromFileBytes(bytes, { source: 'x' }).kind, 'btf');
  assert.throws(() => btfFromFileBytes(new Uint8Array(100), { source: 'x' }), FormatError);
});

/** Parses and decodes everything reachable; only VmsightErrors may escape. */
function exercise(bytes: Uint8Array, maxTypes: number): 'ok' | 'error' {
  try {
    const b = parseBtf(bytes, { source: 'fuzz' });
    const db = new TypeDb(b);
    const n = Math.min(b.count, maxTypes);
    for (let i = 0; i < n; i++) {
      const t = db.get(i);
      if ((t.kind === 'struct' || t.kind === 'union') && i % 7 === 0) {
        try {
          layoutText(db, i);
          db.sizeOf(i);
        } catch (e) {
          if (!(e instanceof VmsightError)) throw e;
        }
      }
    }
    b.lookup('task_struct');
    return 'ok';
  } catch (e) {
    if (e instanceof VmsightError) return 'error';
    throw e;
  }
}


function mutate(src: Uint8Array, r: () => number, focus?: [number, number]): Uint8Array {
  const b = Uint8Array.from(src);
  const kind = Math.floor(r() * 4);
  const [lo, hi] = focus ?? [0, b.length];
  const pos = () => lo + Math.floor(r() * (hi - lo));
  if (kind === 0) for (let i = 0; i < 1 + r() * 8; i++) b[pos()] = Math.floor(r() * 256);
  else if (kind === 1) {
    const p = pos() & ~3;
    new DataView(b.buffer).setUint32(Math.min(p, b.length - 4), Math.floor(r() * 2 ** 32), true);
  } else if (kind === 2) return b.subarray(0, Math.floor(r() * b.length));
  else {
    const p = pos();
    b[p] = b[p]! ^ (1 << Math.floor(r() * 8));
  }
  return b;
}

test('fuzz: mutated synthetic blobs end in results or typed errors', () => {
  const { bytes } = kernelLikeBtf();
  const r = rng(1234);
  const counts = { ok: 0, error: 0 };
  const t0 = performance.now();
  for (let i = 0; i < 3000; i++) counts[exercise(mutate(bytes, r), 1000)]++;
  assert.ok(counts.error > 100, `expected many typed errors, got ${JSON.stringify(counts)}`);
  assert.ok(performance.now() - t0 < 20_000);
});

test('fuzz: mutated real vmlinux BTF ends in results or typed errors, in bounded time', async (t) => {
  const real = await realVmlinuxBtf();
  if (!real) {
    t.skip('no Debian kernel in the lab cache (run `vmsight lab kernels` or scripts/setup.mjs)');
    return;
  }
  const r = rng(99);
  const counts = { ok: 0, error: 0 };
  const header = parseBtfHeader(real.bytes);
  // Mutate the header, the first types, and the string section; decode a bounded prefix each time.
  const regions: [number, number][] = [
    [0, 24],
    [24, 24 + 4096],
    [24 + header.strOff, 24 + header.strOff + 4096],
    [0, real.bytes.length],
  ];
  const t0 = performance.now();
  for (let i = 0; i < 80; i++) {
    const m = mutate(real.bytes, r, regions[i % regions.length]);
    const start = performance.now();
    counts[exercise(m, 3000)]++;
    assert.ok(performance.now() - start < 2000, 'one mutated parse took over 2 s');
  }
  assert.ok(counts.ok + counts.error === 80);
  assert.ok(performance.now() - t0 < 60_000);
});

test('real vmlinux BTF: parse + index fast, layouts sane', async (t) => {
  const real = await realVmlinuxBtf();
  if (!real) {
    t.skip('no Debian kernel in the lab cache');
    return;
  }
  const t0 = performance.now();
  const b = new BtfTypes(real.bytes, { source: `btf:${real.kernel}` });
  const db = new TypeDb(b);
  const task = db.struct('task_struct');
  const ms = performance.now() - t0;
  assert.ok(b.count > 50_000);
  assert.ok(ms < 1500, `parse+index+first lookup took ${ms} ms`);
  assert.ok(task.size > 4000);
  assert.equal(db.sizeOf(db.field('task_struct', 'comm').type), 16);
  assert.equal(db.sizeOf('list_head'), 16);
  for (const s of ['mm_struct', 'module', 'sock', 'file', 'dentry', 'net', 'pid_namespace']) assert.ok(db.sizeOf(s) > 0, s);
  // Every type decodes.
  for (let i = 0; i < b.count; i++) b.get(i);
});

test('module split BTF from memory: the btf_modules list of struct btf_module → struct btf', () => {
  const e = new BtfEncoder();
  const ch = e.int('char', 1, { char: true, signed: true });
  const ui = e.int('unsigned int', 4);
  const lhFwd = e.fwd('list_head');
  const lh = e.struct('list_head', 16, [
    { name: 'next', type: e.ptr(lhFwd), bitOffset: 0 },
    { name: 'prev', type: e.ptr(lhFwd), bitOffset: 64 },
  ]);
  const btfFwd = e.fwd('btf');
  const btfT = e.struct('btf', 88, [
    { name: 'data', type: e.ptr(0), bitOffset: 0 },
    { name: 'data_size', type: ui, bitOffset: 64 },
    { name: 'base_btf', type: e.ptr(btfFwd), bitOffset: 128 },
    { name: 'start_id', type: ui, bitOffset: 192 },
    { name: 'name', type: e.array(ch, ui, 56), bitOffset: 256 },
  ]);
  e.struct('btf_module', 32, [
    { name: 'list', type: lh, bitOffset: 0 },
    { name: 'module', type: e.ptr(0), bitOffset: 128 },
    { name: 'btf', type: e.ptr(btfT), bitOffset: 192 },
  ]);
  const vmlinux = parseBtf(e.build(), { source: 'btf:vmlinux' });
  const split = new BtfEncoder({ count: vmlinux.count, strLen: vmlinux.stringBytes });
  split.struct('hello_state', 4, [{ name: 'count', type: ui, bitOffset: 0 }]);
  const blob = split.build();

  const regions = new Map<bigint, Uint8Array>();
  const HEAD = 0xffffffff83000000n;
  const E1 = 0xffff888000010000n;
  const E2 = 0xffff888000020000n;
  const B1 = 0xffff888000030000n;
  const B2 = 0xffff888000040000n;
  const D1 = 0xffff888000050000n;
  const D2 = 0xffff888000060000n;
  const put = (va: bigint, bytes: Uint8Array) => regions.set(va, bytes);
  const words = (n: number, set: (dv: DataView, b: Uint8Array) => void) => {
    const b = new Uint8Array(n);
    set(new DataView(b.buffer), b);
    return b;
  };
  put(HEAD, words(16, (dv) => { dv.setBigUint64(0, E1, true); dv.setBigUint64(8, E2, true); }));
  put(E1, words(32, (dv) => { dv.setBigUint64(0, E2, true); dv.setBigUint64(24, B1, true); }));
  put(E2, words(32, (dv) => { dv.setBigUint64(0, HEAD, true); dv.setBigUint64(24, B2, true); }));
  const structBtf = (data: bigint, size: number, name: string) =>
    words(88, (dv, b) => {
      dv.setBigUint64(0, data, true);
      dv.setUint32(8, size, true);
      dv.setBigUint64(16, 0xffffffff84000000n, true); // base_btf != NULL: split
      dv.setUint32(24, vmlinux.count, true);
      b.set(Buffer.from(`${name}\0`), 32);
    });
  put(B1, structBtf(D1, blob.length, 'hello'));
  put(B2, structBtf(D2, blob.length, 'broken'));
  put(D1, blob);
  const bad = Uint8Array.from(blob);
  bad[0] = 0;
  put(D2, bad);
  const mem = {
    read(va: bigint, len: number): Uint8Array {
      for (const [at, b] of regions) if (va >= at && va + BigInt(len) <= at + BigInt(b.length)) return b.subarray(Number(va - at), Number(va - at) + len);
      throw new FaultError('virtual', va, 'unmapped');
    },
  };
  const typed = new Typed(new TypeDb(vmlinux), mem);
  const syms = { address: (n: string) => (n === 'btf_modules' ? HEAD : undefined) };
  const r = moduleBtfsFromMemory(typed, syms, vmlinux);
  assert.deepEqual(r.modules.map((m) => m.name), ['hello']);
  assert.equal(r.modules[0]!.btf.source, 'btf:memory:hello');
  assert.equal(new TypeDb(r.modules[0]!.btf).offsetOf('hello_state', 'count'), 0);
  assert.equal(r.anomalies.length, 1);
  assert.match(r.anomalies[0]!, /^broken: .*not BTF/);
  // A cycle is reported, not followed forever.
  put(E2, words(32, (dv) => { dv.setBigUint64(0, E1, true); dv.setBigUint64(24, B1, true); }));
  const cyc = moduleBtfsFromMemory(typed, syms, vmlinux);
  assert.ok(cyc.anomalies.some((a) => /cycle/.test(a)));
  assert.throws(() => moduleBtfsFromMemory(typed, { address: () => undefined }, vmlinux), (err: unknown) => err instanceof ProfileError && err.symbol === 'btf_modules');
});

test('BTF name index: lookup() finds every named type by name, same-named ones in id order, and nothing for unknown names', async () => {
  const { NAMED_KINDS } = await import('../../src/profile/types.js');
  const e = new BtfEncoder();
  const int = e.int('int', 4, { signed: true });
  e.fwd('list_head');
  e.struct('list_head', 16, [{ name: 'next', type: int, bitOffset: 0 }]);
  e.typedef('list_head', int); // a third type of the same name
  e.struct('', 4, [{ name: 'x', type: int, bitOffset: 0 }]);
  e.enum('é_latin1', 4, [['A', 0]]);
  for (let i = 0; i < 200; i++) e.typedef(`t${i}`, int);
  const btf = parseBtf(e.build());
  const want = new Map<string, number[]>();
  for (let id = 1; id < btf.count; id++) {
    const t = btf.get(id);
    if (t.name && NAMED_KINDS.has(t.kind)) want.set(t.name, [...(want.get(t.name) ?? []), id]);
  }
  assert.ok(want.size > 200);
  for (const [name, ids] of want) assert.deepEqual([...btf.lookup(name)], ids, name);
  assert.equal(btf.lookup('list_head').length, 3);
  assert.deepEqual([...btf.lookup('no_such_type')], []);
  assert.deepEqual([...btf.lookup('')], []);
  assert.deepEqual([...btf.lookup('list_hea')], [], 'a prefix is not a name');
});

test('BTF record offsets: given ones are used when they fit the type section, else the blob is indexed again', () => {
  const { bytes } = kernelLikeBtf();
  const fresh = parseBtf(bytes);
  const given = Uint32Array.from(fresh.recordOffsets());
  const reused = parseBtf(bytes, { recordOffsets: given });
  assert.equal(reused.recordOffsets(), given, 'used as given (no indexing pass)');
  for (let id = 1; id < fresh.count; id++) assert.deepEqual(reused.get(id), fresh.get(id));
  // Name lookups there go through prefix chains built in a pass of their own: the same answers as the hash.
  const hashed = parseBtf(bytes, { nameScans: 0 });
  const names = new Set(['list_head', 'no_such_type', '']);
  for (let id = 1; id < fresh.count; id++) if (fresh.get(id).name) names.add(fresh.get(id).name!);
  for (const name of names) {
    assert.deepEqual([...reused.lookup(name)], [...hashed.lookup(name)], name);
    assert.deepEqual([...fresh.lookup(name)], [...hashed.lookup(name)], name);
  }
  for (const bad of [Uint32Array.of(), Uint32Array.of(given[0]! + 4, ...given.subarray(1)), Uint32Array.of(...given.subarray(0, -1), bytes.length + 100)]) {
    const b = parseBtf(bytes, { recordOffsets: bad });
    assert.notEqual(b.recordOffsets(), bad);
    assert.deepEqual([...b.recordOffsets()], [...fresh.recordOffsets()]);
  }
});

test('BTF lazy name lookup: the record scans answer exactly as the name hash, on a real vmlinux BTF', async (t) => {
  const real = await realVmlinuxBtf();
  if (!real) {
    t.skip('no Debian kernel in the lab cache');
    return;
  }
  const scans = parseBtf(real.bytes, { nameScans: Infinity });
  const hashed = parseBtf(real.bytes, { nameScans: 0 });
  const { NAMED_KINDS } = await import('../../src/profile/types.js');
  // Names of types lookup() indexes (structs, unions, enums, typedefs, …) spread over the blob, the names a
  // plugin asks for, names of other kinds (functions), and misses.
  const names = new Set(['task_struct', 'list_head', 'mm_struct', 'file', 'sock', 'module', 'int', 'pid_t', 'maple_tree', '', 'task_struc', 'no_such_type', 'tâsk_struct', 'task_struct\u0100']);
  for (let id = 1; id < scans.count && names.size < 600; id += 37) {
    const t = scans.get(id);
    if (t.name && (NAMED_KINDS.has(t.kind) || id % 5 === 0)) names.add(t.name);
  }
  assert.ok(names.size >= 500);
  let found = 0;
  for (const name of names) {
    const want = hashed.lookup(name);
    assert.deepEqual(scans.lookup(name), want, name);
    if (want.length) found++;
  }
  assert.ok(found > 300, `${found} names found`);
  assert.equal(scans.nameHashBuilt, false, 'every answer came from a scan');
  assert.equal(hashed.nameHashBuilt, true);
  // The default: a few dozen names by scanning, then the hash (built once, same answers).
  const lazy = parseBtf(real.bytes);
  const asked = [...names].slice(0, 40);
  for (const [i, name] of asked.entries()) {
    assert.deepEqual(lazy.lookup(name), hashed.lookup(name), name);
    assert.equal(lazy.nameHashBuilt, i >= 32, `after ${i + 1} names`);
  }
  assert.deepEqual(lazy.lookup(asked[0]!), hashed.lookup(asked[0]!), 'a name scanned before the hash, asked again');
});

test('BTF lazy name lookup: hostile string sections give the scans and the hash the same answers', () => {
  const e = new BtfEncoder();
  const int = e.int('int', 4, { signed: true });
  const a = e.struct('list_head', 16, [{ name: 'next', type: int, bitOffset: 0 }]);
  const b = e.typedef('xlist_head', int); // its name_off is moved to the suffix "list_head" below
  const c = e.typedef('far', int); // name_off past the string section
  e.enum('é', 4, [['A', 0]]);
  const u8 = e.typedef('u8', int); // names shorter than the three bytes a prefix bucket reads
  const x = e.typedef('x', int);
  const lis = e.typedef('lis', int);
  e.typedef('zz_last', int); // the last string: its NUL is overwritten (runs off the section)
  const bytes = e.build();
  const h = parseBtfHeader(bytes);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const recordAt = (id: number) => parseBtf(bytes).recordOffsets()[id - 1]!;
  const nameOff = (id: number) => dv.getUint32(recordAt(id), true);
  dv.setUint32(recordAt(b), nameOff(b) + 1, true);
  dv.setUint32(recordAt(c), h.strLen + 5, true);
  bytes[h.hdrLen + h.strOff + h.strLen - 1] = 0x41;
  const scans = parseBtf(bytes, { nameScans: Infinity });
  const hashed = parseBtf(bytes, { nameScans: 0 });
  for (const name of ['list_head', 'xlist_head', 'far', 'zz_last', 'zz_lastA', 'é', 'int', '', 'next', 'u8', 'u', 'x', 'lis', 'li', 'l', 'u8\u0100']) {
    assert.deepEqual(scans.lookup(name), hashed.lookup(name), name);
  }
  assert.deepEqual([scans.lookup('u8'), scans.lookup('x'), scans.lookup('lis'), scans.lookup('li')], [[u8], [x], [lis], []]);
  assert.deepEqual(scans.lookup('list_head'), [a, b], 'a name that is the suffix of another string is found by its bytes');
  assert.deepEqual(scans.lookup('far'), []);
  assert.deepEqual(scans.lookup('zz_last'), []);
  assert.equal(scans.nameHashBuilt, false);
});

/** A BTF header (magic, version 1) of `hdrLen` bytes with these section fields, followed by `total - hdrLen` zero bytes. */
function headerBlob(f: { hdrLen?: number; typeOff: number; typeLen: number; strOff: number; strLen: number; total?: number }): Uint8Array {
  const hdrLen = f.hdrLen ?? 24;
  const b = new Uint8Array(f.total ?? hdrLen + Math.max(f.typeOff + f.typeLen, f.strOff + f.strLen));
  const dv = new DataView(b.buffer);
  dv.setUint16(0, 0xeb9f, true);
  b[2] = 1;
  dv.setUint32(4, hdrLen, true);
  dv.setUint32(8, f.typeOff, true);
  dv.setUint32(12, f.typeLen, true);
  dv.setUint32(16, f.strOff, true);
  dv.setUint32(20, f.strLen, true);
  return b;
}

/** The FormatError offset parseBtfHeader throws with, or 'ok'. */
function headerVerdict(b: Uint8Array): number | 'ok' {
  try {
    parseBtfHeader(b, 'hdr');
    return 'ok';
  } catch (e) {
    assert.ok(e instanceof FormatError && e.file === 'hdr', String(e));
    return e.offset ?? -1;
  }
}

test('BTF header bounds, each at its edge, each error naming the field it read', () => {
  assert.equal(headerVerdict(new Uint8Array(23)), 0, 'shorter than a header');
  assert.equal(headerVerdict(headerBlob({ typeOff: 0, typeLen: 0, strOff: 0, strLen: 0 })), 'ok', 'a bare 24-byte header');
  assert.equal(headerVerdict(headerBlob({ hdrLen: 23, typeOff: 0, typeLen: 0, strOff: 0, strLen: 0, total: 40 })), 4);
  assert.equal(headerVerdict(headerBlob({ hdrLen: 256, typeOff: 0, typeLen: 0, strOff: 0, strLen: 1 })), 'ok', 'hdr_len 256 is the largest accepted');
  assert.equal(headerVerdict(headerBlob({ hdrLen: 260, typeOff: 0, typeLen: 0, strOff: 0, strLen: 1 })), 4);
  assert.equal(headerVerdict(headerBlob({ hdrLen: 32, typeOff: 0, typeLen: 0, strOff: 0, strLen: 0, total: 32 })), 'ok', 'hdr_len may fill the blob');
  assert.equal(headerVerdict(headerBlob({ hdrLen: 32, typeOff: 0, typeLen: 0, strOff: 0, strLen: 0, total: 28 })), 4, 'but not pass it');
  assert.equal(headerVerdict(headerBlob({ typeOff: 2, typeLen: 12, strOff: 16, strLen: 1 })), 8, 'type_off not 4-aligned');
  assert.equal(headerVerdict(headerBlob({ typeOff: 0, typeLen: 14, strOff: 16, strLen: 1 })), 8, 'type_len not 4-aligned');
  assert.equal(headerVerdict(headerBlob({ typeOff: 0, typeLen: 12, strOff: 12, strLen: 4 })), 'ok', 'sections that touch');
  assert.equal(headerVerdict(headerBlob({ typeOff: 0, typeLen: 12, strOff: 12, strLen: 4, total: 24 + 15 })), 20, 'strings past the blob');
  assert.equal(headerVerdict(headerBlob({ typeOff: 4, typeLen: 12, strOff: 0, strLen: 4, total: 24 + 15 })), 12, 'types past the blob');
  assert.equal(headerVerdict(headerBlob({ typeOff: 0, typeLen: 12, strOff: 8, strLen: 8 })), 8, 'sections that overlap');
  assert.equal(headerVerdict(headerBlob({ typeOff: 12, typeLen: 12, strOff: 0, strLen: 16 })), 8, 'overlap, strings first');
  assert.equal(headerVerdict(headerBlob({ typeOff: 4, typeLen: 0, strOff: 0, strLen: 8 })), 'ok', 'an empty type section inside the strings');
  assert.equal(headerVerdict(headerBlob({ typeOff: 0, typeLen: 8, strOff: 4, strLen: 0 })), 'ok', 'an empty string section inside the types');
  const h = parseBtfHeader(headerBlob({ hdrLen: 32, typeOff: 8, typeLen: 12, strOff: 0, strLen: 5, total: 60 }));
  assert.deepEqual(h, { version: 1, flags: 0, hdrLen: 32, typeOff: 8, typeLen: 12, strOff: 0, strLen: 5, totalLen: 52 });
});

test('BTF: strings may come first (type_off after them); raw and localCount; the string section must open with ""', () => {
  const e = new BtfEncoder();
  e.int('int', 4);
  const built = e.build();
  const hdr = parseBtfHeader(built);
  // Rebuild the same records with the string section first and the types after it, plus trailing junk.
  const types = built.subarray(24 + hdr.typeOff, 24 + hdr.typeOff + hdr.typeLen);
  const strs = built.subarray(24 + hdr.strOff, 24 + hdr.strOff + hdr.strLen);
  const strPad = (strs.length + 3) & ~3;
  const b = headerBlob({ typeOff: strPad, typeLen: types.length, strOff: 0, strLen: strs.length, total: 24 + strPad + types.length + 7 });
  b.set(strs, 24);
  b.set(types, 24 + strPad);
  const t = parseBtf(b);
  assert.equal(t.localCount, 1);
  assert.equal(t.count, 2);
  assert.deepEqual(t.get(1), parseBtf(built).get(1));
  assert.equal(t.raw.length, 24 + strPad + types.length, 'raw stops at the end of the last section');
  assert.equal(t.kindOf(0), 0);
  assert.equal(t.kindOf(1), BtfKind.INT);
  assert.throws(() => t.kindOf(2), ProfileError);

  const noEmpty = Uint8Array.from(built);
  noEmpty[24 + hdr.strOff] = 0x41;
  assert.throws(() => parseBtf(noEmpty, { source: 's' }), (x: unknown) => x instanceof FormatError && x.offset === 24 + hdr.strOff);
  assert.throws(() => parseBtf(headerBlob({ typeOff: 0, typeLen: 0, strOff: 0, strLen: 0 })), FormatError, 'no string section at all');
});

test('BTF get(): ids out of range, negative or fractional are ProfileErrors; split BTF forwards low ids and kinds to its base', () => {
  const e = new BtfEncoder();
  e.int('int', 4);
  const t = parseBtf(e.build());
  for (const id of [2, 3, -1, 1.5]) assert.throws(() => t.get(id), ProfileError, String(id));
  assert.equal(t.get(1).kind, 'int');
  const base = kernelLikeBtf();
  const b = parseBtf(base.bytes);
  const split = new BtfEncoder({ count: b.count, strLen: b.stringBytes });
  split.ptr(1);
  const s = parseBtf(split.build(), { base: b });
  assert.equal(s.get(1).kind, b.get(1).kind);
  assert.equal(s.kindOf(1), b.kindOf(1));
  assert.equal(s.kindOf(b.count), BtfKind.PTR);
  assert.throws(() => s.get(-1), ProfileError);
  assert.throws(() => s.get(s.count), ProfileError);
});

/** What an indexing pass leaves: the record offsets and prefix chains, or the error it threw (message and offset). */
function indexed(bytes: Uint8Array, engine: 'wasm' | 'js'): unknown {
  try {
    const b = new BtfTypes(bytes, { source: 'blob', engine });
    const chains = (b as unknown as { prefixChains: { heads: Int32Array; next: Int32Array } }).prefixChains;
    return { offsets: [...b.recordOffsets()], heads: [...chains.heads], next: [...chains.next] };
  } catch (e) {
    if (!(e instanceof FormatError)) throw e;
    return { error: e.message, offset: e.offset };
  }
}

test('BTF indexing: the WebAssembly and JavaScript passes give the same offsets, prefix chains and errors, intact or mutated', async () => {
  const synthetic = kernelLikeBtf().bytes;
  const blobs: Uint8Array[] = [synthetic];
  const r = rng(4321);
  for (let i = 0; i < 400; i++) blobs.push(mutate(synthetic, r));
  const real = await realVmlinuxBtf();
  if (real) {
    blobs.push(real.bytes);
    const header = parseBtfHeader(real.bytes);
    for (let i = 0; i < 12; i++) blobs.push(mutate(real.bytes, r, i % 2 ? [24, 24 + 65536] : [24 + header.strOff, 24 + header.strOff + 65536]));
  }
  let errors = 0;
  for (const [i, bytes] of blobs.entries()) {
    try {
      parseBtfHeader(bytes);
    } catch {
      continue; // a bad header fails before either pass runs
    }
    const wasm = indexed(bytes, 'wasm');
    assert.deepEqual(wasm, indexed(bytes, 'js'), `blob ${i}`);
    if ((wasm as { error?: string }).error) errors++;
  }
  assert.ok(errors > 20, `mutations reach the record checks (${errors} errors)`);
  // Each stop of the pass, by the same message.
  const unk = new BtfEncoder();
  unk.raw(25, 0, 0);
  assert.match((indexed(unk.build(), 'wasm') as { error: string }).error, /unknown BTF kind 25/);
  const runaway = new BtfEncoder();
  runaway.raw(4, 0xffff, 8);
  assert.match((indexed(runaway.build(), 'wasm') as { error: string }).error, /runs past the type section/);
  assert.match((indexed(synthetic.subarray(0, synthetic.length - 5), 'wasm') as { error: string }).error, /truncated|past|string/);
});
