/**
 * Passes over a synthetic kernel laid out in guest-physical memory behind
 * real page tables: requirement checks, per-pass caches, anomalies per
 * plugin, and the optimistic consistent mode against a guest that changes
 * what a run reads while the run is going on.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AddressSpace } from '../../src/arch/address-space.js';
import { PAGING_4_LEVEL } from '../../src/arch/x86-64/paging.js';
import { ProfileError } from '../../src/core/errors.js';
import { Kernel } from '../../src/linux/kernel.js';
import { definePlugin, runPlugin } from '../../src/linux/plugin.js';
import pslist from '../../src/linux/plugins/pslist.js';
import type { PhysicalMemory, ReadOp } from '../../src/memory/types.js';
import { testMemory, type TestMemory } from '../arch/helpers/memory.js';
import { PageTableBuilder } from '../arch/helpers/page-tables.js';
import { SyntheticKernel, T } from './helpers/synthetic-kernel.js';

const PROCS = [
  { pid: 1, comm: 'init', parent: -1 },
  { pid: 42, comm: 'alpha', parent: 0 },
  { pid: 43, comm: 'beta', parent: 0 },
  { pid: 44, comm: 'gamma', parent: 0 },
];

/** A live-looking source: reads of a watched range run a hook (the guest changing it). */
interface GuestMemory extends PhysicalMemory {
  readonly ram: TestMemory;
  /** Calls `change` right after the `nth` readv that touches [pa, pa+len) (and again every `every` such reads when given). */
  watch(pa: number, len: number, nth: number, change: () => void, every?: number): void;
}

function guestMemory(ram: TestMemory): GuestMemory {
  let watch: { pa: number; len: number; nth: number; every: number | undefined; change: () => void; seen: number } | undefined;
  let generation = 0;
  return {
    ram,
    technique: { ...ram.technique, class: 'live-map', live: true },
    target: 'synthetic guest',
    size: ram.size,
    ranges: () => ram.ranges(),
    get generation() {
      return generation;
    },
    readv(ops: ReadOp[]) {
      const f = ram.readv(ops);
      const w = watch;
      if (w && ops.some((o) => o.addr < w.pa + w.len && w.pa < o.addr + o.len)) {
        w.seen++;
        if (w.seen === w.nth || (w.every !== undefined && w.seen > w.nth && (w.seen - w.nth) % w.every === 0)) w.change();
      }
      return f;
    },
    async refresh() {
      generation++;
    },
    watch(pa, len, nth, change, every) {
      watch = { pa, len, nth, every, change, seen: 0 };
    },
    async close() {},
  };
}

/** The synthetic kernel's pages placed in RAM behind 4-level tables; returns a Kernel over a real AddressSpace. */
function physicalKernel(procs = PROCS) {
  const s = new SyntheticKernel('new', procs);
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
  const mem = guestMemory(testMemory(ram));
  const space = new AddressSpace(mem, b.top, PAGING_4_LEVEL, { name: 'kernel' });
  const kernel = new Kernel(mem, space, s.kernel.profile);
  const pa = (va: bigint): number => paOf.get(va & ~0xfffn)! + Number(va & 0xfffn);
  const w64 = (va: bigint, v: bigint): void => new DataView(ram.buffer).setBigUint64(pa(va), v, true);
  const setComm = (i: number, comm: string): void => ram.set(Buffer.from(comm.padEnd(16, '\0'), 'latin1'), pa(s.taskAddr[i]! + BigInt(T.comm)));
  return { s, ram, mem, kernel, pa, w64, setComm, b };
}

describe('Pass', () => {
  it('runs plugins, collects anomalies per plugin and for the pass, and refreshes the source first', async () => {
    const g = physicalKernel();
    const p = await g.kernel.pass();
    assert.equal(p.generation, 1, 'Kernel.pass() refreshed the source');
    const r = p.run(pslist);
    assert.deepEqual(r.rows.map((x) => x.comm), ['swapper/0', 'init', 'alpha', 'beta', 'gamma'].filter((c) => c !== 'swapper/0'));
    // A corrupt list: the last task's next points into the void → anomalies for this run.
    g.w64(g.s.taskAddr[3]! + BigInt(T.tasks), 0xffff_dead_0000_0000n);
    const r2 = p.run(pslist);
    assert.ok(Object.keys(r2.anomalyCounts).length > 0, 'the broken list was reported');
    const sum = p.end();
    assert.equal(sum.runs.length, 2);
    assert.equal(sum.runs[0]!.anomalies, 0);
    assert.ok(sum.runs[1]!.anomalies > 0);
    assert.equal(sum.anomalies, sum.runs[1]!.anomalies);
    assert.equal(sum.validation, undefined);
    assert.ok(sum.elapsedMs >= 0 && sum.startedAt <= Date.now());
  });

  it('checks requirements in pass.run and runPlugin, naming the first one missing', async () => {
    const g = physicalKernel();
    const needy = definePlugin<{ x: number }>()({
      name: 'needy',
      version: '1',
      summary: 'needs a symbol the kernel lacks',
      requires: { symbols: ['init_task', 'no_such_symbol'] },
      columns: [{ key: 'x', kind: 'int' }],
      key: (r) => String(r.x),
      run: () => [{ x: 1 }],
    });
    assert.throws(() => runPlugin(needy, g.kernel), (e: unknown) => e instanceof ProfileError && /needy needs symbol no_such_symbol/.test(e.message));
    const p = await g.kernel.pass();
    assert.throws(() => p.run(needy), ProfileError);
    p.end();
  });

  it('caches process address spaces by pgd within and across passes; reuse:false starts from nothing', async () => {
    const g = physicalKernel();
    const pgdVa = g.s.taskAddr[0]!; // any mapped kernel VA stands in for a pgd here
    const p1 = await g.kernel.pass();
    const a = g.kernel.userSpace(pgdVa, 'mm a');
    assert.equal(g.kernel.userSpace(pgdVa), a, 'same pass, same pgd: the same space');
    assert.equal(p1.end().userSpaces, 1);
    const p2 = await g.kernel.pass();
    assert.equal(p2.userSpace(pgdVa), a, 'a later pass reuses it (its translations are re-checked)');
    p2.end();
    const p3 = await g.kernel.pass({ reuse: false });
    assert.notEqual(p3.userSpace(pgdVa), a);
    assert.equal(p3.end().reuse, false);
    // Outside any pass: a new space each time.
    assert.notEqual(g.kernel.userSpace(pgdVa), g.kernel.userSpace(pgdVa));
  });

  it('a pass that reuses translations walks far less than one that reuses nothing, with the same rows', async () => {
    const g = physicalKernel();
    const warm = await g.kernel.pass();
    const rows = warm.run(pslist).rows;
    warm.end();
    const misses0 = g.kernel.space.stats.misses;
    const again = await g.kernel.pass();
    assert.deepEqual(again.run(pslist).rows, rows);
    again.end();
    assert.equal(g.kernel.space.stats.misses, misses0, 'unchanged guest: nothing walked again');
    const cold = await g.kernel.pass({ reuse: false });
    assert.deepEqual(cold.run(pslist).rows, rows);
    cold.end();
    assert.ok(g.kernel.space.stats.misses > misses0, 'reuse:false walked again');
  });

  it('a pass over a memory image re-checks nothing; runPlugin inside a pass leaves that pass active', async () => {
    const g = physicalKernel();
    (g.mem.technique as { live: boolean }).live = false;
    runPlugin(pslist, g.kernel);
    const revalidated = g.kernel.space.stats.revalidated;
    const checks = g.kernel.space.translator.tables.entryChecks;
    runPlugin(pslist, g.kernel);
    assert.equal(g.kernel.space.stats.revalidated, revalidated, 'same epoch: cached translations used as they are');
    assert.equal(g.kernel.space.translator.tables.entryChecks, checks);
    const outer = g.kernel.startPass();
    const pgd = g.s.taskAddr[0]!;
    const a = g.kernel.userSpace(pgd);
    runPlugin(pslist, g.kernel);
    assert.equal(g.kernel.userSpace(pgd), a, 'the outer pass is active again after the nested one ended');
    outer.end();
  });

  describe('a source read in pass blocks (as live read is)', () => {
    /** The synthetic kernel over a source that asks to be read in 32 KiB blocks inside passes. */
    function blockKernel() {
      const g = physicalKernel();
      Object.assign(g.mem, { passBlockBytes: 32768 });
      return g;
    }

    it('each runPlugin sees the guest as it is when it starts, with the source generation unchanged', () => {
      const g = blockKernel();
      const generation = g.mem.generation;
      assert.equal(runPlugin(pslist, g.kernel).rows[1]!.comm, 'alpha');
      g.setComm(1, 'renamed');
      assert.equal(runPlugin(pslist, g.kernel).rows[1]!.comm, 'renamed', 'a block read by the last pass was not served to this one');
      g.setComm(1, 'again');
      assert.equal(g.kernel.typed.obj('task_struct', g.s.taskAddr[1]!).read().str('comm'), 'again', 'outside a pass reads go to the source');
      assert.equal(g.mem.generation, generation, 'no refresh: the freshness comes from the pass, not from a new generation');
    });

    it('a pass reads each block once: fewer source reads than without blocks, the same rows', () => {
      const plain = physicalKernel();
      runPlugin(pslist, plain.kernel);
      const calls0 = plain.mem.ram.calls.readv;
      const want = runPlugin(pslist, plain.kernel).rows;
      const plainReads = plain.mem.ram.calls.readv - calls0;
      const g = blockKernel();
      runPlugin(pslist, g.kernel);
      const calls1 = g.mem.ram.calls.readv;
      assert.deepEqual(runPlugin(pslist, g.kernel).rows, want);
      const blockReads = g.mem.ram.calls.readv - calls1;
      assert.ok(blockReads < plainReads, `${blockReads} source reads with blocks, ${plainReads} without`);
      assert.equal(g.kernel.space.translator.tables.phys.passBlocks, undefined, 'no pass open: no blocks kept');
    });

    it('runs of one pass share its blocks; a nested runPlugin starts afresh and the outer pass keeps reading blocks', async () => {
      const g = blockKernel();
      const p = await g.kernel.pass();
      assert.equal(p.run(pslist).rows[1]!.comm, 'alpha');
      g.setComm(1, 'renamed');
      assert.equal(p.run(pslist).rows[1]!.comm, 'alpha', 'within a pass the blocks read at its start stand');
      assert.equal(runPlugin(pslist, g.kernel).rows[1]!.comm, 'renamed', 'a new (nested) pass reads afresh');
      assert.ok(g.kernel.space.translator.tables.phys.passBlocks !== undefined, 'the outer pass is still open: blocks kept');
      p.end();
      assert.equal(g.kernel.space.translator.tables.phys.passBlocks, undefined);
    });

    it('a pass opened with blocks: false (the monitor\'s) reads the guest on every read, even inside an outer pass', async () => {
      const g = blockKernel();
      const outer = await g.kernel.pass();
      assert.equal(outer.run(pslist).rows[1]!.comm, 'alpha');
      const p = g.kernel.startPass({ blocks: false });
      assert.equal(g.kernel.space.translator.tables.phys.passBlocks, undefined, 'no blocks while it is open');
      g.setComm(1, 'renamed');
      assert.equal(p.run(pslist).rows[1]!.comm, 'renamed');
      g.setComm(1, 'again');
      assert.equal(p.run(pslist).rows[1]!.comm, 'again', 'a change between two runs of the same pass is seen');
      p.end();
      outer.end();
    });

    it('validation: a write after the block was read is caught, and the retry reads the block again', async () => {
      const g = blockKernel();
      const commPa = g.pa(g.s.taskAddr[1]! + BigInt(T.comm));
      const p = await g.kernel.pass({ validate: { strict: true } });
      // Right after the first read of the block holding pid 42's comm (the copy the run decodes), the guest renames it.
      g.mem.watch(commPa, 16, 1, () => g.setComm(1, 'renamed'));
      const r = p.run(pslist);
      assert.equal(r.rows[1]!.comm, 'renamed');
      assert.equal(r.validation!.retries, 1);
      assert.equal(r.validation!.validated, true);
      p.end();
    });
  });

  it('stream hands over the rows as the plugin yields them, then the same result as run, none kept', async () => {
    const g = physicalKernel();
    g.w64(g.s.taskAddr[3]! + BigInt(T.tasks), 0xffff_dead_0000_0000n); // a broken list: anomalies
    const p = await g.kernel.pass();
    const ran = p.run(pslist);
    const s = p.stream(pslist);
    const seen: string[] = [];
    let yielded = 0;
    const probe = definePlugin<{ n: number }>()({
      name: 'probe',
      version: '1.0.0',
      summary: 'yields as it goes',
      requires: {},
      columns: [{ key: 'n', kind: 'int' }],
      key: (r) => String(r.n),
      *run(_k, { anomalies }) {
        for (let n = 0; n < 3; n++) {
          yielded++;
          yield { n };
        }
        anomalies.add({ kind: 'limit', where: 'probe', detail: 'after the rows' });
      },
    });
    for (const r of s.rows) seen.push(r.comm);
    assert.deepEqual(seen, ran.rows.map((r) => r.comm));
    const done = s.done();
    assert.deepEqual({ rows: done.rows, rowCount: done.rowCount, counts: done.anomalyCounts }, { rows: [], rowCount: ran.rows.length, counts: ran.anomalyCounts });
    const lazy = p.stream(probe);
    const it = lazy.rows[Symbol.iterator]();
    assert.equal(yielded, 0, 'nothing runs before the rows are asked for');
    it.next();
    assert.equal(yielded, 1, 'one row asked for, one produced');
    for (let r = it.next(); !r.done; r = it.next());
    assert.deepEqual(lazy.done().anomalyCounts, { limit: 1 }, 'anomalies met after the last row are in the result');
    const sum = p.end();
    assert.deepEqual(sum.runs.map((r) => [r.plugin, r.rows]), [['pslist', ran.rows.length], ['pslist', ran.rows.length], ['probe', 3]]);
    const v = await g.kernel.pass({ validate: true });
    const vs = v.stream(pslist);
    assert.ok(Array.isArray(vs.rows), 'a validating pass runs first and hands over the rows it kept');
    assert.equal(vs.done().validation!.attempts, 1);
    v.end();
  });

  describe('validate', () => {
    it('an unchanged guest validates on the first try', async () => {
      const g = physicalKernel();
      const p = await g.kernel.pass({ validate: true });
      const r = p.run(pslist);
      assert.equal(r.rows.length, 4);
      assert.deepEqual({ ...r.validation, watchedPages: 0 }, { attempts: 1, retries: 0, changedRanges: 0, changedValues: 0, watchedPages: 0, validated: true });
      assert.ok(r.validation!.watchedPages >= 5, 'task pages and page tables were watched');
      const sum = p.end();
      assert.deepEqual(sum.validation, { runs: 1, retries: 0, changedRanges: 0, changedValues: 0, reused: 0, validated: true });
    });

    it("a comm flipped after the run read it: a value, counted and kept as read; a strict pass retries and returns the guest's new state", async () => {
      const g = physicalKernel();
      const commPa = g.pa(g.s.taskAddr[1]! + BigInt(T.comm));
      // Without validation the run returns what it read before the change.
      const plain = await g.kernel.pass();
      g.mem.watch(commPa, 16, 1, () => g.setComm(1, 'renamed'));
      assert.equal(plain.run(pslist).rows[1]!.comm, 'alpha');
      plain.end();
      g.setComm(1, 'alpha');
      // With validation: read 1 is the copy taken before the first read, read 2 the run's own read. The name
      // decides nothing else the run reads: the row keeps the name it read, and the change is counted.
      const v = await g.kernel.pass({ validate: true });
      g.mem.watch(commPa, 16, 2, () => g.setComm(1, 'renamed'));
      const rv = v.run(pslist);
      assert.equal(rv.rows[1]!.comm, 'alpha');
      assert.deepEqual([rv.validation!.retries, rv.validation!.changedRanges, rv.validation!.changedValues, rv.validation!.validated], [0, 0, 1, true]);
      assert.deepEqual(v.end().validation, { runs: 1, retries: 0, changedRanges: 0, changedValues: 1, reused: 0, validated: true });
      g.setComm(1, 'alpha');
      // Strict: any decoded word that changed retries the run.
      const p = await g.kernel.pass({ validate: { strict: true } });
      g.mem.watch(commPa, 16, 2, () => g.setComm(1, 'renamed'));
      const r = p.run(pslist);
      assert.equal(r.rows[1]!.comm, 'renamed');
      assert.equal(r.validation!.retries, 1);
      assert.equal(r.validation!.changedRanges, 1);
      assert.equal(r.validation!.changedValues, 0);
      assert.equal(r.validation!.validated, true);
      assert.deepEqual(p.end().validation, { runs: 1, retries: 1, changedRanges: 1, changedValues: 0, reused: 0, validated: true });
    });

    it('a process unlinked from the task list during the walk: the retry no longer lists it', async () => {
      const g = physicalKernel();
      const [t0, t1, t2] = [g.s.taskAddr[0]!, g.s.taskAddr[1]!, g.s.taskAddr[2]!];
      const p = await g.kernel.pass({ validate: { retries: 3 } });
      // After init's list node is read, pid 42 exits: init.next = beta, beta.prev = init.
      g.mem.watch(g.pa(t0 + BigInt(T.tasks)), 16, 2, () => {
        g.w64(t0 + BigInt(T.tasks), t2 + BigInt(T.tasks));
        g.w64(t2 + BigInt(T.tasks) + 8n, t0 + BigInt(T.tasks));
      });
      const r = p.run(pslist);
      assert.deepEqual(r.rows.map((x) => x.pid), [1, 43, 44]);
      assert.equal(r.validation!.validated, true);
      assert.equal(r.validation!.retries, 1);
      assert.ok(!r.rows.some((x) => x.offset === t1));
      p.end();
    });

    it('bytes of a watched page the run did not read may change: still validated (no false alarm)', async () => {
      const g = physicalKernel();
      // 0x200 past a task_struct (0x100 bytes) lies in the same page but is never read.
      const idle = g.s.taskAddr[1]! + 0x200n;
      g.mem.watch(g.pa(g.s.taskAddr[1]!), 16, 2, () => g.w64(idle, 0x1234n));
      const p = await g.kernel.pass({ validate: true });
      const r = p.run(pslist);
      assert.equal(r.validation!.validated, true);
      assert.equal(r.validation!.retries, 0);
      assert.equal(new DataView(g.ram.buffer).getBigUint64(g.pa(idle), true), 0x1234n, 'the page did change');
      p.end();
    });

    it('a field of a whole-object read that the run never decodes may change: validated; a decoded one is not', async () => {
      const g = physicalKernel();
      const task = g.s.taskAddr[1]!;
      // Bytes 0xf0.. of the 0x100-byte task_struct are fetched with it (one read) but are no field pslist decodes.
      const unused = task + 0xf0n;
      g.mem.watch(g.pa(task + BigInt(T.tasks)), 16, 2, () => g.w64(unused, 0x5678n));
      const p = await g.kernel.pass({ validate: true });
      const r = p.run(pslist);
      assert.equal(r.validation!.validated, true);
      assert.equal(r.validation!.retries, 0, 'an undecoded word of the object is no torn read');
      assert.equal(r.validation!.changedAt, undefined);
      p.end();
      // The pid word (decoded) changed between the object's fetch and the end of the run: a value, counted; a
      // strict pass says the run is not validated, and where.
      // (reuse: false, so the plugin runs again rather than handing over the first pass's run.)
      const pv = await g.kernel.pass({ validate: { retries: 0 }, reuse: false });
      const pidPa = g.pa(task + BigInt(T.pid));
      g.mem.watch(g.pa(task + BigInt(T.tasks)), 16, 2, () => new DataView(g.ram.buffer).setInt32(pidPa, 4343, true));
      const rv = pv.run(pslist);
      assert.deepEqual([rv.validation!.validated, rv.validation!.changedValues, rv.validation!.changedAt], [true, 1, undefined]);
      pv.end();
      const p2 = await g.kernel.pass({ validate: { retries: 0, strict: true } });
      g.mem.watch(g.pa(task + BigInt(T.tasks)), 16, 2, () => new DataView(g.ram.buffer).setInt32(pidPa, 4242, true));
      const r2 = p2.run(pslist);
      assert.equal(r2.validation!.validated, false);
      assert.deepEqual(r2.validation!.changedAt, [pidPa & ~7]);
      p2.end();
    });

    it('a later run of the same pass re-checks translations: a page remapped between runs is read where it is now', async () => {
      const g = physicalKernel();
      const p = await g.kernel.pass({ validate: true });
      assert.equal(p.run(pslist).rows[1]!.comm, 'alpha');
      // The guest moves pid 42's task page to another frame (and renames it there); the old frame is left as it was.
      const va = g.s.taskAddr[1]! & ~0xfffn;
      const oldPa = g.pa(va);
      const newPa = g.ram.length - 0x2000;
      g.ram.copyWithin(newPa, oldPa, oldPa + 4096);
      g.ram.set(Buffer.from('moved'.padEnd(16, '\0'), 'latin1'), newPa + Number((g.s.taskAddr[1]! & 0xfffn) + BigInt(T.comm)));
      g.b.writeEntry(g.b.entryAddr(va, 1), BigInt(newPa) | 3n);
      const r = p.run(pslist);
      assert.equal(r.rows[1]!.comm, 'moved');
      assert.equal(r.validation!.validated, true);
      p.end();
    });

    it('a guest that keeps changing: gives up after the retries and says the result is not validated', async () => {
      const g = physicalKernel();
      const commPa = g.pa(g.s.taskAddr[2]! + BigInt(T.comm));
      let n = 0;
      g.mem.watch(commPa, 16, 2, () => g.setComm(2, `beta${++n}`), 2);
      const p = await g.kernel.pass({ validate: { retries: 2, strict: true } });
      const r = p.run(pslist);
      assert.equal(r.validation!.attempts, 3);
      assert.equal(r.validation!.retries, 2);
      assert.equal(r.validation!.validated, false);
      assert.match(r.validation!.reason!, /kept changing/);
      assert.equal(p.end().validation!.validated, false);
    });
    it("a validated run whose every word still holds is the next pass's, without running the plugin", async () => {
      const g = physicalKernel();
      const first = await g.kernel.pass({ validate: true });
      const r1 = first.run(pslist);
      first.end();
      const again = await g.kernel.pass({ validate: true });
      const r2 = again.run(pslist);
      assert.deepEqual(r2.rows, r1.rows);
      assert.deepEqual([r2.validation!.reused, r2.validation!.attempts, r2.validation!.validated], [true, 0, true]);
      assert.equal(r2.validation!.watchedPages, r1.validation!.watchedPages);
      assert.deepEqual(again.end().validation, { runs: 1, retries: 0, changedRanges: 0, changedValues: 0, reused: 1, validated: true });
    });

    it('every run of a pass is kept for the next, one plugin under several option values too', async () => {
      const g = physicalKernel();
      // More runs than a pass of every plugin makes: a monitor's pass asks for each in turn.
      const variants = [undefined, ...Array.from({ length: 30 }, (_, i) => ({ pid: String(40 + i) }))];
      const first = await g.kernel.pass({ validate: true });
      const r1 = variants.map((o) => first.run(pslist, o));
      first.end();
      const again = await g.kernel.pass({ validate: true });
      const r2 = variants.map((o) => again.run(pslist, o));
      assert.deepEqual(r2.map((r) => r.rows), r1.map((r) => r.rows));
      assert.equal(again.end().validation!.reused, variants.length);
    });

    it('a kept run is not reused once a value it read changed, nor a link, nor under other options, nor without reuse', async () => {
      const g = physicalKernel();
      const run = async (options: Parameters<typeof g.kernel.pass>[0], pluginOptions?: { pid: string }) => {
        const p = await g.kernel.pass(options);
        const r = p.run(pslist, pluginOptions);
        p.end();
        return r;
      };
      await run({ validate: true });
      // A value (the name): the plugin runs again and shows the new name.
      g.setComm(1, 'renamed');
      const renamed = await run({ validate: true });
      assert.equal(renamed.validation!.reused, undefined);
      assert.equal(renamed.rows[1]!.comm, 'renamed');
      assert.equal((await run({ validate: true })).validation!.reused, true, 'kept again once validated');
      // A link: pid 42 leaves the list between passes.
      const [t0, t2] = [g.s.taskAddr[0]!, g.s.taskAddr[2]!];
      g.w64(t0 + BigInt(T.tasks), t2 + BigInt(T.tasks));
      g.w64(t2 + BigInt(T.tasks) + 8n, t0 + BigInt(T.tasks));
      const unlinked = await run({ validate: true });
      assert.equal(unlinked.validation!.reused, undefined);
      assert.deepEqual(unlinked.rows.map((x) => x.pid), [1, 43, 44]);
      // Other option values, and a pass that reuses nothing: the plugin runs.
      const one = await run({ validate: true }, { pid: '43' });
      assert.equal(one.validation!.reused, undefined);
      assert.deepEqual(one.rows.map((x) => x.pid), [43]);
      assert.equal((await run({ validate: true }, { pid: '43' })).validation!.reused, true);
      assert.equal((await run({ validate: true, reuse: false }, { pid: '43' })).validation!.reused, undefined);
    });
  });
});
