/**
 * The study's pass (src/bench/tradeoffs/passes.ts) on a synthetic guest whose
 * memory source changes a watched range between two reads (a torn read): the
 * plain pass returns what it read before the change and reports nothing; the
 * optimistic pass catches a changed link (a task's parent pointer), retries
 * and returns the new state, and counts a changed value (its name) without a
 * retry; a guest that never stops changing is reported as not validated. Plus the process-list
 * cross-checks the study adds to the walks' anomalies.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AddressSpace } from '../../src/arch/address-space.js';
import { PAGING_4_LEVEL } from '../../src/arch/x86-64/paging.js';
import { checkProcessList, runPass, workload, OPTIMISTIC_RETRIES } from '../../src/bench/tradeoffs/passes.js';
import { meanCi95, seededRandom, shuffled } from '../../src/bench/tradeoffs/measure.js';
import { Kernel } from '../../src/linux/kernel.js';
import type { PhysicalMemory, ReadOp } from '../../src/memory/types.js';
import { testMemory } from '../arch/helpers/memory.js';
import { PageTableBuilder } from '../arch/helpers/page-tables.js';
import { SyntheticKernel, T } from '../linux/helpers/synthetic-kernel.js';

const PROCS = [
  { pid: 1, comm: 'init', parent: -1 },
  { pid: 42, comm: 'alpha', parent: 0 },
  { pid: 43, comm: 'beta', parent: 0 },
];

/** A live source over `ram` whose readv calls `hook` with the ops it served (the guest writing in between). */
function liveMemory(ram: Uint8Array, hook: (ops: ReadOp[]) => void): PhysicalMemory {
  const inner = testMemory(ram);
  let generation = 0;
  return {
    technique: { ...inner.technique, class: 'live-map', live: true },
    target: 'synthetic live guest',
    size: inner.size,
    ranges: () => inner.ranges(),
    get generation() {
      return generation;
    },
    readv(ops: ReadOp[]) {
      const f = inner.readv(ops);
      hook(ops);
      return f;
    },
    async refresh() {
      generation++;
    },
    async close() {},
  };
}

function guest() {
  const s = new SyntheticKernel('new', PROCS);
  const pages = [...s.mem.pages.entries()];
  const ram = new Uint8Array(0x100000 + pages.length * 4096 + 0x100000);
  const b = new PageTableBuilder(ram, 4, 0x1000);
  const paOf = new Map<bigint, number>();
  pages.forEach(([va, bytes], i) => {
    const pa = 0x100000 + i * 4096;
    b.map(va, pa, 4096);
    ram.set(bytes, pa);
    paOf.set(va, pa);
  });
  const pa = (va: bigint): number => paOf.get(va & ~0xfffn)! + Number(va & 0xfffn);
  const commPa = pa(s.taskAddr[1]! + BigInt(T.comm));
  const parentPa = pa(s.taskAddr[1]! + BigInt(T.realParent));
  let readsOfComm = 0;
  let tearAt = new Set<number>();
  let tearing: 'parent' | 'comm' = 'parent';
  const setComm = (comm: string) => ram.set(Buffer.from(comm.padEnd(16, '\0'), 'latin1'), commPa);
  // alpha (child of init) is re-parented in turn to beta, itself and init, all on the list: each state is a
  // consistent one, and no two reads two apart see the same (the copy and the end of an attempt are).
  const setParent = (n: number) => new DataView(ram.buffer).setBigUint64(parentPa, [s.taskAddr[0]!, s.taskAddr[2]!, s.taskAddr[1]!][n % 3]!, true);
  const mem = liveMemory(ram, (ops) => {
    if (!ops.some((o) => o.addr < commPa + 16 && commPa < o.addr + o.len)) return;
    readsOfComm++;
    if (!tearAt.has(readsOfComm)) return;
    if (tearing === 'comm') setComm(`renamed${readsOfComm}`);
    else setParent(readsOfComm);
  });
  const kernel = new Kernel(mem, new AddressSpace(mem, b.top, PAGING_4_LEVEL, { name: 'kernel' }), s.kernel.profile);
  return {
    kernel,
    /** Changes alpha's parent pointer (or its comm) right after the nth..mth reads of its task (counted from now). */
    tear(reads: number[], what: 'parent' | 'comm' = 'parent') {
      readsOfComm = 0;
      tearAt = new Set(reads);
      tearing = what;
    },
  };
}

const pslistOnly = workload(['pslist']);

describe('tradeoffs pass: the optimistic mode catches a torn read', () => {
  it('plain pass: the change after the read goes unseen', async () => {
    const g = guest();
    g.tear([1]);
    const out = await runPass(g.kernel, pslistOnly, false);
    assert.equal(out.validation, undefined);
    assert.deepEqual(out.anomalies, {});
  });

  it('optimistic pass: the range that changed between the copy and the re-read is caught and the run retried', async () => {
    const g = guest();
    // Read 1 is the copy taken before the run's first read, read 2 the run's own: change it right after.
    g.tear([2]);
    const out = await runPass(g.kernel, pslistOnly, true);
    assert.ok(out.validation, 'validation facts are reported');
    assert.equal(out.validation!.changedRanges, 1, 'one torn range caught');
    assert.equal(out.validation!.retries, 1);
    assert.equal(out.validation!.validated, true, 'the retry saw one consistent state');
  });

  it('optimistic pass: a value that changed (a renamed task) is counted, not retried', async () => {
    const g = guest();
    g.tear([2], 'comm');
    const out = await runPass(g.kernel, pslistOnly, true);
    assert.deepEqual(out.validation, { changedRanges: 0, changedValues: 1, retries: 0, reused: 0, validated: true });
  });

  it('a guest that keeps changing the range: not validated, retries exhausted', async () => {
    const g = guest();
    g.tear(Array.from({ length: 40 }, (_, i) => i + 1));
    const out = await runPass(g.kernel, pslistOnly, true);
    assert.equal(out.validation!.validated, false);
    assert.equal(out.validation!.retries, OPTIMISTIC_RETRIES);
    assert.ok(out.validation!.changedRanges >= OPTIMISTIC_RETRIES + 1);
  });
});

describe('tradeoffs pass: process-list cross-checks', () => {
  it('counts parents missing from the list and pids listed twice', () => {
    const into: Record<string, number> = {};
    checkProcessList(
      [
        { pid: 1, ppid: 0 },
        { pid: 2, ppid: 0 },
        { pid: 50, ppid: 1 },
        { pid: 51, ppid: 77 },
        { pid: 50, ppid: 2 },
      ],
      into,
    );
    assert.deepEqual(into, { 'parent-missing': 1, 'pid-duplicate': 1 });
  });
  it('a consistent list: nothing', () => {
    const into: Record<string, number> = {};
    checkProcessList([{ pid: 1, ppid: 0 }, { pid: 9, ppid: 1 }], into);
    assert.deepEqual(into, {});
  });
});

describe('tradeoffs measure: confidence intervals and run order', () => {
  it('meanCi95 uses the t distribution; fewer than 2 values give no interval; shuffled is a seeded permutation', () => {
    const ci = meanCi95([1, 2, 3, 4]);
    assert.equal(ci.mean, 2.5);
    // sd = 1.291, t(3) = 3.182: half = 3.182 * 1.291 / 2
    assert.ok(Math.abs(ci.half - (3.182 * Math.sqrt(5 / 3)) / 2) < 1e-9);
    assert.ok(Number.isNaN(meanCi95([5]).lo));
    const a = shuffled([1, 2, 3, 4, 5, 6], seededRandom(7));
    assert.deepEqual([...a].sort(), [1, 2, 3, 4, 5, 6]);
    assert.deepEqual(shuffled([1, 2, 3, 4, 5, 6], seededRandom(7)), a, 'same seed, same order');
  });
});
