import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Plugin } from '../../src/linux/plugin.js';
import type { EventDraft } from '../../src/monitor/events.js';
import { PluginWatch } from '../../src/monitor/watches/plugin-watch.js';
import { BASE, FakeGuest } from './helpers/fake-guest.js';

interface Row {
  id: string;
  owner: number | undefined;
}

/** A watch whose plugin returns whatever rows the test put in `rows`, diffed into appear/vanish events. */
function setup() {
  let rows: Row[] = [];
  const plugin = { name: 'rows', key: (r: Row) => r.id } as unknown as Plugin<Row>;
  const events: EventDraft[] = [];
  const ctx = new FakeGuest().context(events);
  (ctx as { pass: unknown }).pass = { run: () => ({ rows }) };
  const w = new PluginWatch<Row>({
    name: 'rows',
    plugin,
    emits: ['socket-listen', 'socket-close'],
    sentinels: () => [],
    sweepMs: 500,
    incomplete: (r) => r.owner === undefined,
    diff(prev, next) {
      const out: EventDraft[] = [];
      for (const [key, r] of next) if (!prev.has(key)) out.push({ type: 'socket-listen', watch: 'rows', key, data: { owner: r.owner ?? null } });
      for (const key of prev.keys()) if (!next.has(key)) out.push({ type: 'socket-close', watch: 'rows', key });
      return out;
    },
  });
  w.init(ctx);
  return { w, ctx, events, set: (r: Row[]) => (rows = r) };
}

test('a new row caught half-made is held back and re-read soon, then reported complete', () => {
  const { w, ctx, events, set } = setup();
  set([{ id: 'a', owner: undefined }]);
  w.sweep(ctx);
  assert.equal(events.length, 0, 'held, not reported ownerless');
  assert.equal(w.sweepMs, 5, 'a held row asks for an early re-read');
  set([{ id: 'a', owner: 42 }]);
  w.sweep(ctx);
  assert.deepEqual(events.map((e) => [e.type, e.key, e.data?.['owner']]), [['socket-listen', 'a', 42]]);
  assert.equal(w.sweepMs, 500, 'back to the normal sweep');
  assert.equal(w.stats()['heldTotal'], 1);
});

test('a held row that vanishes is still reported, appearance then end; one that stays incomplete is reported after the hold', async () => {
  const { w, ctx, events, set } = setup();
  set([{ id: 'b', owner: undefined }]);
  w.sweep(ctx);
  set([]);
  w.sweep(ctx);
  w.sweep(ctx);
  assert.deepEqual(events.map((e) => [e.type, e.key]), [['socket-listen', 'b'], ['socket-close', 'b']]);
  events.length = 0;
  set([{ id: 'c', owner: undefined }]);
  w.sweep(ctx);
  assert.equal(events.length, 0);
  await new Promise((r) => setTimeout(r, 260));
  w.sweep(ctx);
  assert.deepEqual(events.map((e) => [e.type, e.key, e.data?.['owner']]), [['socket-listen', 'c', null]]);
  w.sweep(ctx);
  assert.equal(events.length, 1, 'reported once');
});

test('a write landing between a re-run\'s read and its new watch ranges still wakes the next tick', () => {
  const g = new FakeGuest();
  const SENTINEL = 0x3800;
  const events: EventDraft[] = [];
  const ctx = g.context(events);
  let raceOnce = false;
  // The plugin reads a count from guest memory; the guest bumps it right after (while the watch works).
  ctx.pass.run = (() => {
    const n = g.ram[SENTINEL]!;
    if (raceOnce) {
      raceOnce = false;
      g.ram[SENTINEL] = n + 1;
    }
    return { rows: Array.from({ length: n }, (_, i) => ({ id: `r${i}`, owner: 1 })) };
  }) as unknown as typeof ctx.pass.run;
  const w = new PluginWatch<Row>({
    name: 'rows',
    plugin: { name: 'rows', key: (r: Row) => r.id } as unknown as Plugin<Row>,
    emits: ['module-load'],
    sentinels: (c) => [{ pa: c.view.pa(BASE + BigInt(SENTINEL))!, len: 1, kind: 'link' }],
    diff: (prev, next) => [...next.keys()].filter((k) => !prev.has(k)).map((key) => ({ type: 'module-load', watch: 'rows', key })),
  });
  w.init(ctx);
  const tick = () => {
    const det = ctx.watchSet.detect({ pageLevel: false, fieldFilter: true });
    if (det.structural.has('rows')) w.update(ctx, { structural: true, dirty: new Set() });
  };
  g.ram[SENTINEL] = 1;
  raceOnce = true;
  tick(); // reads 1 row; the guest writes 2 meanwhile
  assert.deepEqual(events.map((e) => e.key), ['r0']);
  tick(); // the write after the read is still a change
  assert.deepEqual(events.map((e) => e.key), ['r0', 'r1']);
  tick();
  assert.equal(events.length, 2);
});
