import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AnomalySink } from '../../src/linux/anomaly.js';
import { runPlugin } from '../../src/linux/plugin.js';
import iomem from '../../src/linux/plugins/iomem.js';
import { walkResources } from '../../src/linux/resources.js';
import { BareSpace, makeKernel } from './helpers/bare-kernel.js';
import { KBASE, TypeBuilder } from './helpers/synthetic.js';

const ROOT = 0xffff_ffff_8200_0000n;
const NAMES = KBASE + 0x10_0000n;

/** struct resource { start, end, name, flags, desc, parent, sibling, child } as 6.1 lays it out. */
function types(): TypeBuilder {
  const b = new TypeBuilder();
  const res = b.declare('resource');
  const p = b.ptr(res);
  b.define(res, 64, [
    ['start', b.u64, 0],
    ['end', b.u64, 8],
    ['name', b.ptr(b.char), 16],
    ['flags', b.ulong, 24],
    ['desc', b.ulong, 32],
    ['parent', p, 40],
    ['sibling', p, 48],
    ['child', p, 56],
  ]);
  return b;
}

interface Node { at: bigint; start: bigint; end: bigint; name?: string | bigint; parent: bigint; sibling?: bigint; child?: bigint }

function kernel(nodes: Node[]) {
  const mem = new BareSpace();
  let n = 0;
  for (const x of nodes) {
    let namePtr = 0n;
    if (typeof x.name === 'string') {
      namePtr = NAMES + BigInt(n++ * 64);
      mem.wstr(namePtr, x.name);
    } else if (typeof x.name === 'bigint') namePtr = x.name;
    mem.map(x.at, 64);
    mem.w64(x.at, x.start);
    mem.w64(x.at + 8n, x.end);
    mem.w64(x.at + 16n, namePtr);
    mem.w64(x.at + 24n, 0x200n);
    mem.w64(x.at + 40n, x.parent);
    mem.w64(x.at + 48n, x.sibling ?? 0n);
    mem.w64(x.at + 56n, x.child ?? 0n);
  }
  return makeKernel(types(), mem, [['iomem_resource', ROOT, 'D'], ['ioport_resource', ROOT + 0x40n, 'D']]);
}

const A = KBASE + 0x1000n;
const B = KBASE + 0x2000n;
const C = KBASE + 0x3000n;
const D = KBASE + 0x4000n;

describe('resource tree walk', () => {
  test('pre-order with depths, as /proc/iomem prints it', () => {
    const k = kernel([
      { at: ROOT, start: 0n, end: (1n << 64n) - 1n, name: 'PCI mem', parent: 0n, child: A },
      { at: A, start: 0x1000n, end: 0x9ffffn, name: 'System RAM', parent: ROOT, sibling: B, child: C },
      { at: C, start: 0x2000n, end: 0x2fffn, name: 'Kernel code', parent: A, sibling: D },
      { at: D, start: 0x3000n, end: 0x3fffn, name: 'Kernel data', parent: A },
      { at: B, start: 0xa0000n, end: 0xbffffn, name: 'PCI Bus 0000:00', parent: ROOT },
    ]);
    const r = runPlugin(iomem, k);
    assert.deepEqual(r.anomalyCounts, {});
    assert.deepEqual(r.rows.map((x) => [x.depth, x.name, x.start, x.end]), [
      [0, 'System RAM', 0x1000n, 0x9ffffn],
      [1, 'Kernel code', 0x2000n, 0x2fffn],
      [1, 'Kernel data', 0x3000n, 0x3fffn],
      [0, 'PCI Bus 0000:00', 0xa0000n, 0xbffffn],
    ]);
  });

  test('a sibling cycle ends the chain with a cycle anomaly; a wrong parent is a broken link', () => {
    const k = kernel([
      { at: ROOT, start: 0n, end: 0xffffn, name: 'PCI IO', parent: 0n, child: A },
      { at: A, start: 0n, end: 0x1fn, name: 'dma1', parent: ROOT, sibling: B },
      { at: B, start: 0x20n, end: 0x21n, name: 'pic1', parent: C, sibling: A },
    ]);
    const a = new AnomalySink();
    const rows = [...walkResources(k, ROOT, a, 'iomem_resource')];
    assert.deepEqual(rows.map((x) => x.name), ['dma1', 'pic1']);
    assert.equal(a.counts.cycle, 1);
    assert.equal(a.counts['broken-link'], 1);
  });

  test('a child pointing at its ancestor is a cycle, not an endless descent', () => {
    const k = kernel([
      { at: ROOT, start: 0n, end: 0xffffn, name: 'root', parent: 0n, child: A },
      { at: A, start: 0n, end: 0xffn, name: 'a', parent: ROOT, child: ROOT },
    ]);
    const a = new AnomalySink();
    assert.deepEqual([...walkResources(k, ROOT, a, 'iomem_resource')].map((x) => x.name), ['a']);
    assert.equal(a.counts.cycle, 1);
  });

  test('bad pointers, unmapped nodes and unreadable names are anomalies; the rest is listed', () => {
    const k = kernel([
      { at: ROOT, start: 0n, end: 0xffffn, name: 'root', parent: 0n, child: A },
      { at: A, start: 0n, end: 0xffn, name: 0xdead_0000_0000_0000n, parent: ROOT, sibling: B, child: 0x1234n },
      { at: B, start: 0x100n, end: 0x1ffn, name: KBASE + 0x9000_0000n, parent: ROOT, sibling: KBASE + 0x7000_0000n },
    ]);
    const r = runPlugin(iomem, k);
    assert.equal(r.rows.length, 2);
    assert.ok(r.rows.every((x) => typeof x.name === 'object'), 'names are absent values');
    assert.equal(r.anomalyCounts['bad-pointer'], 2); // the name, the child
    assert.equal(r.anomalyCounts.fault, 2); // B's name, B's sibling
  });

  test('a name without a NUL within the bound is truncated, not read on and on', () => {
    const k = kernel([
      { at: ROOT, start: 0n, end: 0xffffn, name: 'root', parent: 0n, child: A },
      { at: A, start: 0n, end: 0xffn, name: 'x'.repeat(500), parent: ROOT },
    ]);
    const r = runPlugin(iomem, k);
    assert.equal((r.rows[0]!.name as string).length, 128);
    assert.equal(r.anomalyCounts.truncated, 1);
  });

  test('--ioports walks ioport_resource', () => {
    const k = kernel([
      { at: ROOT, start: 0n, end: 0xffffn, name: 'PCI mem', parent: 0n },
      { at: ROOT + 0x40n, start: 0n, end: 0xffffn, name: 'PCI IO', parent: 0n, child: A },
      { at: A, start: 0x60n, end: 0x60n, name: 'keyboard', parent: ROOT + 0x40n },
    ]);
    assert.deepEqual(runPlugin(iomem, k).rows, []);
    assert.deepEqual(runPlugin(iomem, k, { ioports: true }).rows.map((x) => x.name), ['keyboard']);
  });
});
