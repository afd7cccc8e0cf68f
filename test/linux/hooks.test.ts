/**
 * The ftrace_ops list and netfilter hook entries over synthetic (and hostile)
 * memory: the walk ends at the sentinel, a cycle, a NULL, a non-kernel
 * pointer or an unmapped ops stops it with an anomaly; a hook table with an
 * absurd count is refused, and an entry whose function differs from its
 * registration is reported. Also the eBPF type names and object file.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { bpfObject } from '../../src/lab/bpf-object.js';
import { AnomalySink } from '../../src/linux/anomaly.js';
import { bpfTypeName } from '../../src/linux/bpf.js';
import { ftraceFlagNames, ftraceOpsList } from '../../src/linux/ftrace.js';
import { netfilterHooks } from '../../src/linux/net/netfilter.js';
import { BareSpace, makeKernel } from './helpers/bare-kernel.js';
import { TypeBuilder } from './helpers/synthetic.js';

const LIST = 0xffff_ffff_8200_0000n;
const END = 0xffff_ffff_8200_1000n;
const OPS = 0xffff_8880_0010_0000n;
const FUNC = 0xffff_ffff_8100_0100n;

function ftraceKernel(link: (mem: BareSpace) => void) {
  const b = new TypeBuilder();
  const ops = b.declare('ftrace_ops');
  b.define(ops, 48, [['func', b.voidp, 0], ['next', b.ptr(ops), 8], ['flags', b.ulong, 16], ['private', b.voidp, 24], ['saved_func', b.voidp, 32], ['trampoline', b.ulong, 40]]);
  const mem = new BareSpace();
  mem.map(END, 48);
  link(mem);
  return makeKernel(b, mem, [['ftrace_ops_list', LIST], ['ftrace_list_end', END]]);
}

/** ops i at OPS + i*0x100 with func FUNC+i, linked to `next`. */
function putOps(mem: BareSpace, i: number, next: bigint): void {
  const at = OPS + BigInt(i * 0x100);
  mem.map(at, 48);
  mem.w64(at, FUNC + BigInt(i));
  mem.w64(at + 8n, next);
  mem.w64(at + 16n, 1n | (1n << 6n));
}

describe('ftrace_ops_list', () => {
  test('walks to ftrace_list_end in list order', () => {
    const k = ftraceKernel((m) => {
      m.w64(LIST, OPS);
      putOps(m, 0, OPS + 0x100n);
      putOps(m, 1, END);
    });
    const a = new AnomalySink();
    const got = [...ftraceOpsList(k, a)];
    assert.deepEqual(got.map((o) => [o.index, o.address, o.func]), [[0, OPS, FUNC], [1, OPS + 0x100n, FUNC + 1n]]);
    assert.deepEqual(ftraceFlagNames(got[0]!.flags), ['ENABLED', 'INITIALIZED']);
    assert.equal(a.total, 0);
  });
  test('an empty list is the sentinel alone', () => {
    const k = ftraceKernel((m) => m.w64(LIST, END));
    assert.deepEqual([...ftraceOpsList(k, new AnomalySink())], []);
  });
  for (const [name, build, kind] of [
    ['a cycle', (m: BareSpace) => { m.w64(LIST, OPS); putOps(m, 0, OPS + 0x100n); putOps(m, 1, OPS); }, 'cycle'],
    ['a NULL instead of the sentinel', (m: BareSpace) => { m.w64(LIST, OPS); putOps(m, 0, 0n); }, 'broken-link'],
    ['a user-half pointer', (m: BareSpace) => { m.w64(LIST, OPS); putOps(m, 0, 0x4141_4141n); }, 'bad-pointer'],
    ['an unmapped ops', (m: BareSpace) => { m.w64(LIST, OPS); putOps(m, 0, OPS + 0x10_0000n); }, 'fault'],
  ] as const) {
    test(`${name} stops the walk with a '${kind}' anomaly`, () => {
      const a = new AnomalySink();
      const got = [...ftraceOpsList(ftraceKernel(build), a)];
      assert.ok(got.length <= 2);
      assert.deepEqual(Object.keys(a.counts), [kind]);
    });
  }
});

describe('netfilter hook entries', () => {
  const NET = 0xffff_8880_0020_0000n;
  const ENTRIES = 0xffff_8880_0030_0000n;
  const HOOK_OPS = 0xffff_8880_0040_0000n;
  function nfKernel(count: number, registeredFunc: bigint) {
    const b = new TypeBuilder();
    const entry = b.struct('nf_hook_entry', 16, [['hook', b.voidp, 0], ['priv', b.voidp, 8]]);
    b.struct('nf_hook_entries', 8, [['num_hook_entries', b.u16, 0], ['hooks', b.array(entry, 0), 8]]);
    b.struct('nf_hook_ops', 56, [['hook', b.voidp, 16], ['priority', b.int_, 48]]);
    const nf = b.struct('netns_nf', 40, [['hooks_ipv4', b.array(b.voidp, 5), 0]]);
    b.struct('net', 64, [['nf', nf, 16]]);
    const mem = new BareSpace();
    mem.map(NET, 64);
    mem.w64(NET + 16n + 8n, ENTRIES); // hooks_ipv4[NF_INET_LOCAL_IN]
    mem.map(ENTRIES, 64);
    mem.w16(ENTRIES, count);
    mem.w64(ENTRIES + 8n, FUNC);
    mem.w64(ENTRIES + 16n, 0x1234n);
    mem.w64(ENTRIES + 24n, HOOK_OPS); // orig_ops[0] after hooks[1]
    mem.map(HOOK_OPS, 56);
    mem.w64(HOOK_OPS + 16n, registeredFunc);
    mem.w32(HOOK_OPS + 48n, -100 >>> 0);
    return makeKernel(b, mem, []);
  }
  test('one input hook with its priority and registration', () => {
    const a = new AnomalySink();
    const got = [...netfilterHooks(nfKernel(1, FUNC), { net: NET, inum: 7 }, a)];
    assert.deepEqual(got, [{ netns: 7, family: 'ipv4', hook: 'input', hooknum: 1, index: 0, func: FUNC, priv: 0x1234n, ops: HOOK_OPS, priority: -100 }]);
    assert.equal(a.total, 0);
  });
  test('a function swapped after registration is an anomaly', () => {
    const a = new AnomalySink();
    assert.equal([...netfilterHooks(nfKernel(1, FUNC + 8n), { net: NET, inum: 7 }, a)].length, 1);
    assert.deepEqual(a.counts, { invalid: 1 });
  });
  test('an absurd num_hook_entries is refused, not read', () => {
    const a = new AnomalySink();
    assert.deepEqual([...netfilterHooks(nfKernel(60_000, FUNC), { net: NET, inum: 7 }, a)], []);
    assert.deepEqual(a.counts, { invalid: 1 });
  });
});

describe('eBPF names and object', () => {
  test('enumerators become bpftool names', () => {
    assert.equal(bpfTypeName('BPF_PROG_TYPE_SOCKET_FILTER', 'BPF_PROG_TYPE_', 1n), 'socket_filter');
    assert.equal(bpfTypeName('BPF_MAP_TYPE_CGROUP_STORAGE_DEPRECATED', 'BPF_MAP_TYPE_', 19n), 'cgroup_storage');
    assert.equal(bpfTypeName(undefined, 'BPF_MAP_TYPE_', 99n), 'unknown(99)');
  });
  test('the object is an EM_BPF relocatable ELF with the program, license and symbols', () => {
    const o = bpfObject({ name: 'vmi_x', marker: 5 });
    assert.deepEqual([...o.subarray(0, 4)], [0x7f, 0x45, 0x4c, 0x46]);
    assert.equal(o.readUInt16LE(16), 1);
    assert.equal(o.readUInt16LE(18), 247);
    assert.equal(o.readUInt16LE(60), 6);
    const shoff = Number(o.readBigUInt64LE(40));
    const sec = (i: number) => ({ off: Number(o.readBigUInt64LE(shoff + i * 64 + 24)), size: Number(o.readBigUInt64LE(shoff + i * 64 + 32)) });
    const text = sec(1);
    assert.equal(text.size, 24);
    assert.equal(o.readInt32LE(text.off + 4), 5, 'the marker is the first instruction\'s immediate');
    assert.equal(o[text.off + 16], 0x95, 'ends with exit');
    assert.equal(o.toString('latin1', sec(2).off, sec(2).off + 3), 'GPL');
    assert.ok(o.includes(Buffer.from('vmi_x\0')));
  });
});
