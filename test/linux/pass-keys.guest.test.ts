/**
 * Row keys over every plugin on a live 6.1 guest: unique within a pass, and
 * the same key set in two passes of an unchanged guest (paused through
 * guest-halting, always resumed) — also when the second pass reuses nothing.
 * On the running guest the same holds except for rows that legitimately
 * change between two looks:
 * - rows of processes born or gone in between (kernel workers are reaped and
 *   spawned on demand): per-process rows are compared for the tasks both
 *   passes' pslist --threads saw;
 * - kmsg: records may be appended (and the oldest overwritten) — pass 1's
 *   records still in the ring must all be there, new ones come after;
 * - sockets not owned by a surviving process or in a transient TCP state.
 * A validated pass over the paused guest validates every run on the first try,
 * and the next one hands over the runs nothing changed under (lsmod at least).
 */
import { everyPluginOptions } from '../helpers/plugin-runs.js';
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { attachKernel, type AttachedKernel } from '../../src/linux/attach.js';
import type { Pass } from '../../src/linux/pass.js';
import type { Plugin } from '../../src/linux/plugin.js';
import { plugins } from '../../src/linux/plugins/index.js';
import { acquireQmp } from '../../src/qemu/discover.js';
import { ownQmpSocket, sharedGuest, type SharedGuest } from '../helpers/guest.js';

/** Plugins with nothing to show on a clean lab guest: no injected code, no hidden module, no eBPF program,
 * no ftrace or keyboard hook, no bash. */
const MAY_BE_EMPTY = new Set(['malfind', 'hidden_modules', 'ebpf', 'ftrace', 'keyboard_notifiers', 'bash']);

type Keyed = Map<string, { keys: string[]; rows: Record<string, unknown>[] }>;

const RUNS: readonly { name: string; plugin: Plugin<any>; options: Record<string, unknown> }[] = [
  ...(plugins as readonly Plugin<any>[]).map((plugin) => ({ name: plugin.name, plugin, options: everyPluginOptions(plugin) })),
  { name: 'pslist --threads', plugin: (plugins as readonly Plugin<any>[]).find((p) => p.name === 'pslist')!, options: { threads: true } },
];

function keysOf(pass: Pass): Keyed {
  const out: Keyed = new Map();
  for (const r of RUNS) {
    const rows = pass.run(r.plugin, r.options as never).rows as Record<string, unknown>[];
    out.set(r.name, { keys: rows.map((row) => r.plugin.key(row)), rows });
  }
  pass.end();
  return out;
}

function assertUnique(k: Keyed, label: string): void {
  for (const [name, { keys }] of k) {
    const seen = new Set<string>();
    const dups = keys.filter((x) => (seen.has(x) ? true : (seen.add(x), false)));
    assert.deepEqual(dups, [], `${label}: ${name} keys collide within the pass`);
  }
}

const sorted = (xs: Iterable<string>): string[] => [...xs].sort();

let g: SharedGuest;
let qmp: string;
before(async () => {
  g = await sharedGuest({ kernel: '6.1' });
  qmp = await ownQmpSocket(g.guest);
}, { timeout: 600_000 });

async function status(): Promise<string> {
  const lease = await acquireQmp(qmp);
  try {
    return (await lease.client.execute<{ status: string }>('query-status')).status;
  } finally {
    await lease.release();
  }
}

describe('row keys on a paused 6.1 guest', () => {
  let k: AttachedKernel;
  before(async () => {
    k = await attachKernel(`shm:${g.guest.shmPath}?qmp=${qmp}&halting=1`);
    assert.equal(k.memory.technique.class, 'guest-halting');
  }, { timeout: 300_000 });
  after(async () => {
    await k?.close();
    assert.equal(await status(), 'running', 'the guest is running again');
  });

  test('two passes, and a third reusing nothing, give unique keys and the same key sets for every plugin', () => {
    const a = keysOf(k.startPass());
    const b = keysOf(k.startPass());
    const c = keysOf(k.startPass({ reuse: false }));
    for (const [label, x] of [['pass 1', a], ['pass 2', b], ['pass 3', c]] as const) assertUnique(x, label);
    for (const [name, { keys }] of a) {
      assert.ok(keys.length > 0 || MAY_BE_EMPTY.has(name), `${name} gave rows`);
      assert.deepEqual(sorted(b.get(name)!.keys), sorted(keys), `${name}: same keys in pass 2`);
      assert.deepEqual(sorted(c.get(name)!.keys), sorted(keys), `${name}: same keys in a pass that reuses nothing`);
    }
  });

  test('a validated pass over the paused guest validates every run on the first try', () => {
    const p = k.startPass({ validate: true });
    for (const r of RUNS) {
      const res = p.run(r.plugin, r.options as never);
      assert.equal(res.validation?.validated, true, `${r.name}: ${res.validation?.reason ?? ''}`);
      assert.equal(res.validation?.retries, 0, r.name);
      assert.ok(res.validation!.watchedPages > 0, `${r.name} watched what it read`);
    }
    const sum = p.end();
    assert.deepEqual({ ...sum.validation }, { runs: RUNS.length, retries: 0, changedRanges: 0, changedValues: 0, reused: 0, validated: true });
  });

  test('the next validated pass hands over the runs whose every read word still holds, with the rows a fresh run gives', () => {
    const p = k.startPass({ validate: true });
    const handed = RUNS.map((r) => ({ r, res: p.run(r.plugin, r.options as never) }));
    const sum = p.end();
    const reused = handed.filter(({ res }) => res.validation?.reused === true);
    // The guest runs between two passes (guest-halting pauses per pass): what changed is re-run, the module list does not change.
    assert.ok(reused.some(({ r }) => r.name === 'lsmod'), `lsmod reused (reused: ${reused.map(({ r }) => r.name).join(', ')})`);
    assert.equal(sum.validation?.reused, reused.length);
    for (const { r, res } of reused) assert.equal(res.validation!.attempts, 0, `${r.name}: a reused run does not run the plugin`);
    // Modules do not come and go on the lab guest: a fresh run gives the very rows handed over.
    const lsmod = handed.find(({ r }) => r.name === 'lsmod')!;
    const fresh = k.startPass({ reuse: false });
    assert.deepEqual(fresh.run(lsmod.r.plugin, lsmod.r.options as never).rows, lsmod.res.rows);
    fresh.end();
  });
});

describe('row keys on the running 6.1 guest', () => {
  let k: AttachedKernel;
  before(async () => {
    k = await attachKernel(`shm:${g.guest.shmPath}?qmp=${qmp}`);
  }, { timeout: 300_000 });
  after(async () => {
    await k?.close();
  });

  test('two passes: unique keys; the same keys except rows that legitimately change', async () => {
    const a = keysOf(await k.pass());
    const b = keysOf(await k.pass());
    assertUnique(a, 'pass 1');
    assertUnique(b, 'pass 2');
    // Tasks both passes saw (key prefix pid:task:start of every per-process row).
    const tasksA = new Set(a.get('pslist --threads')!.keys);
    const both = new Set(b.get('pslist --threads')!.keys.filter((x) => tasksA.has(x)));
    const taskOf = (key: string): string => key.split(':').slice(0, 3).join(':');
    for (const [name, { keys }] of a) {
      const other = b.get(name)!.keys;
      if (name === 'kmsg') {
        const seqA = keys.map(BigInt);
        const seqB = other.map(BigInt);
        const minB = seqB.reduce((m, x) => (x < m ? x : m), seqB[0]!);
        const maxA = seqA.reduce((m, x) => (x > m ? x : m), seqA[0]!);
        const inB = new Set(other);
        for (const s of seqA) if (s >= minB) assert.ok(inB.has(String(s)), `kmsg: record ${s} still in the ring`);
        for (const s of seqB) if (!keys.includes(String(s))) assert.ok(s > maxA, `kmsg: only later records are new (${s})`);
        continue;
      }
      const perTask = a.get(name)!.rows.length > 0 && keys.every((x) => /^\d+:[0-9a-f]+:\d+(:|$)/.test(x));
      if (perTask) {
        const keep = (xs: string[]) => sorted(xs.filter((x) => both.has(taskOf(x))));
        // Maps of a running process can change (heap growth); the lab's scenario processes are idle.
        assert.deepEqual(keep(other), keep(keys), `${name}: same keys for the tasks both passes saw`);
        continue;
      }
      if (name === 'sockstat') {
        const stable = (rows: Record<string, unknown>[]) =>
          sorted(
            rows
              .filter((r) => ['LISTEN', 'ESTABLISHED', 'CLOSE', 'UNCONNECTED', 'CONNECTED', ''].includes(String(r['state'])))
              .map((r) => (plugins as readonly Plugin<any>[]).find((p) => p.name === 'sockstat')!.key(r)),
          );
        assert.deepEqual(stable(b.get(name)!.rows), stable(a.get(name)!.rows), 'sockstat: same keys for sockets in a settled state');
        continue;
      }
      assert.deepEqual(sorted(other), sorted(keys), `${name}: same keys`);
    }
  });
});
