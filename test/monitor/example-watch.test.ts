import assert from 'node:assert/strict';
import { test } from 'node:test';
import { kernelStringWatch } from '../../examples/watches/kernel-string.js';
import type { EventDraft } from '../../src/monitor/events.js';
import { FakeGuest } from './helpers/fake-guest.js';

test('the example watch (public API only) raises one alert when modprobe_path is rewritten', () => {
  const g = new FakeGuest({ modprobe_path: 0x3000 });
  g.ram.set(Buffer.from('/sbin/modprobe\0'), 0x3000);
  const events: EventDraft[] = [];
  const ctx = g.context(events);
  const w = kernelStringWatch('modprobe_path');
  w.init(ctx);
  const tick = () => {
    const d = ctx.watchSet.detect({ pageLevel: true, fieldFilter: true });
    if (d.dirty.get(w.name)) w.update(ctx, { structural: false, dirty: d.dirty.get(w.name)! });
  };
  g.ram[0x3800] = 1; // same page, not the string: nothing
  tick();
  assert.equal(events.length, 0);
  g.ram.set(Buffer.from('/tmp/x\0'), 0x3000);
  tick();
  tick();
  assert.equal(events.length, 1);
  assert.deepEqual([events[0]!.type, events[0]!.before?.['modprobe_path'], events[0]!.after?.['modprobe_path'], events[0]!.severity], ['alert', '/sbin/modprobe', '/tmp/x', 'critical']);
});
