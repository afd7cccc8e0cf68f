import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AnomalySink } from '../../src/linux/anomaly.js';
import { notifierChain } from '../../src/linux/notifier.js';
import { BareSpace, makeKernel } from './helpers/bare-kernel.js';
import { KBASE, TypeBuilder } from './helpers/synthetic.js';

const HEAD = 0xffff_ffff_8200_0000n;
const TEXT = 0xffff_ffff_8100_0000n;

function kernel(blocks: { at: bigint; call: bigint; next: bigint; priority: number }[], first: bigint) {
  const b = new TypeBuilder();
  const nb = b.declare('notifier_block');
  const fn = b.store.add({ kind: 'func_proto', name: '', ret: b.int_, params: [], variadic: false });
  b.define(nb, 24, [['notifier_call', b.ptr(fn), 0], ['next', b.ptr(nb), 8], ['priority', b.int_, 16]]);
  b.struct('atomic_notifier_head', 16, [['lock', b.u64, 0], ['head', b.ptr(nb), 8]]);
  const mem = new BareSpace();
  mem.w64(HEAD + 8n, first);
  for (const x of blocks) {
    mem.w64(x.at, x.call);
    mem.w64(x.at + 8n, x.next);
    mem.w32(x.at + 16n, x.priority >>> 0);
  }
  return makeKernel(b, mem, [['keyboard_notifier_list', HEAD, 'd']]);
}

const A = KBASE + 0x100n;
const B = KBASE + 0x200n;

describe('notifier chains', () => {
  test('blocks in order with their callbacks and priorities', () => {
    const k = kernel([{ at: A, call: TEXT, next: B, priority: 10 }, { at: B, call: TEXT + 8n, next: 0n, priority: -1 }], A);
    const a = new AnomalySink();
    assert.deepEqual([...notifierChain(k, HEAD, 'atomic_notifier_head', a, 'kbd')], [
      { address: A, call: TEXT, priority: 10 },
      { address: B, call: TEXT + 8n, priority: -1 },
    ]);
    assert.equal(a.total, 0);
  });

  test('an empty chain has no blocks', () => {
    assert.deepEqual([...notifierChain(kernel([], 0n), HEAD, 'atomic_notifier_head', new AnomalySink(), 'kbd')], []);
  });

  test('a cycle, a bad pointer, an unmapped block and priority disorder end or mark the walk', () => {
    const a = new AnomalySink();
    const cyc = kernel([{ at: A, call: TEXT, next: B, priority: 0 }, { at: B, call: TEXT, next: A, priority: 5 }], A);
    assert.equal([...notifierChain(cyc, HEAD, 'atomic_notifier_head', a, 'kbd')].length, 2);
    assert.equal(a.counts.cycle, 1);
    assert.equal(a.counts.invalid, 1);
    const bad = kernel([{ at: A, call: TEXT, next: 0x4141n, priority: 0 }], A);
    assert.equal([...notifierChain(bad, HEAD, 'atomic_notifier_head', a, 'kbd')].length, 1);
    assert.equal(a.counts['bad-pointer'], 1);
    const unmapped = kernel([], KBASE + 0x5000_0000n);
    assert.equal([...notifierChain(unmapped, HEAD, 'atomic_notifier_head', a, 'kbd')].length, 0);
    assert.equal(a.counts.fault, 1);
  });
});
