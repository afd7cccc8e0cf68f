import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProfileError } from '../../src/core/errors.js';
import { parseBtf } from '../../src/profile/btf.js';
import { KERNEL_GLOBALS, globalRef, globalType, validateGlobals, type GlobalSpec } from '../../src/profile/globals.js';
import { Typed } from '../../src/profile/typed.js';
import { TypeDb } from '../../src/profile/types.js';
import { BtfEncoder, kernelLikeBtf } from './helpers/btf-encoder.js';
import { realVmlinuxBtf } from './helpers/real-btf.js';

function db(): TypeDb {
  return new TypeDb(parseBtf(kernelLikeBtf().bytes, { source: 'btf:fixture' }));
}

test('the table has one row per global, each with a type and a reason', () => {
  const names = KERNEL_GLOBALS.map((g) => g.name);
  assert.equal(new Set(names).size, names.length);
  for (const g of KERNEL_GLOBALS) assert.ok(g.why && g.ctype.length > 0, g.name);
  for (const n of ['init_task', 'modules', 'sys_call_table', 'idt_table', 'init_net', 'prb', 'init_pid_ns', 'super_blocks', 'linux_banner', 'page_offset_base'])
    assert.ok(names.includes(n), n);
});

test('validateGlobals reports which named types the profile lacks', () => {
  const specs: GlobalSpec[] = [
    { name: 'init_task', ctype: 'struct task_struct', why: 't' },
    { name: 'modules', ctype: 'struct list_head', why: 't' },
    { name: 'init_net', ctype: 'struct net', why: 't' },
    { name: 'prb', ctype: 'struct printk_ringbuffer *', optional: true, why: 't' },
    { name: 'alt', ctype: ['struct nope', 'unsigned long'], why: 't' },
  ];
  const r = validateGlobals(db(), specs);
  assert.deepEqual(r.ok, ['init_task', 'modules', 'alt']);
  assert.deepEqual(
    r.missing.map((m) => [m.name, m.optional]),
    [
      ['init_net', false],
      ['prb', true],
    ],
  );
  assert.match(r.missing[0]!.reason, /struct net.*btf:fixture/);
});

test('globalType: table rows, T[] lengths from the symbol size, BTF VARs, unknown globals', () => {
  const d = db();
  assert.equal(d.typeName(globalType(d, 'init_task')), 'struct task_struct');
  // __per_cpu_offset is unsigned long[]: 64 bytes -> 8 entries; unknown size -> the stated bound.
  assert.equal(d.typeName(globalType(d, '__per_cpu_offset', { symbolSize: 64 })), 'long unsigned int[8]');
  assert.equal(d.sizeOf(globalType(d, '__per_cpu_offset')), 8 * 8192);
  assert.equal(d.typeName(globalType(d, 'linux_banner', { symbolSize: 200 })), 'char[200]');
  assert.throws(() => globalType(d, 'mystery_var'), (e: unknown) => e instanceof ProfileError && e.symbol === 'mystery_var' && /globals table/.test(e.message));
  const e = new BtfEncoder();
  const int = e.int('int', 4, { signed: true });
  e.var('cpu_number', int);
  const withVar = new TypeDb(parseBtf(e.build()));
  assert.equal(withVar.typeName(globalType(withVar, 'cpu_number')), 'int');
});

test('globalRef: a typed reference at the symbol address; missing symbols are named', () => {
  const d = db();
  const mem = { read: (_va: bigint, len: number) => new Uint8Array(len) };
  const typed = new Typed(d, mem);
  const syms = new Map([['init_task', 0xffffffff82a14940n]]);
  // SymbolTable throws from address() and offers tryAddress(): the latter is used.
  const table = {
    address(n: string): bigint {
      const v = syms.get(n);
      if (v === undefined) throw new ProfileError(`symbol ${n} not found`, { symbol: n });
      return v;
    },
    tryAddress: (n: string) => syms.get(n),
  };
  const ref = globalRef(typed, table, 'init_task');
  assert.equal(ref.address, 0xffffffff82a14940n);
  assert.equal(ref.typeName, 'struct task_struct');
  assert.equal(ref.read().u32('pid'), 0);
  assert.throws(() => globalRef(typed, table, 'modules'), (e: unknown) => e instanceof ProfileError && e.symbol === 'modules' && /not in the symbol table/.test(e.message));
});

test('every table type resolves in a real Debian kernel BTF (optional ones may be absent)', async (t) => {
  const real = await realVmlinuxBtf();
  if (!real) {
    t.skip('no Debian kernel in the lab cache');
    return;
  }
  const r = validateGlobals(new TypeDb(parseBtf(real.bytes, { source: `btf:${real.kernel}` })));
  assert.deepEqual(
    r.missing.filter((m) => !m.optional).map((m) => m.name),
    [],
  );
  assert.ok(r.ok.length >= KERNEL_GLOBALS.length - 3);
});
