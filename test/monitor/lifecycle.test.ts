/**
 * The lifecycle's QMP signals next to a guest-halting source: the STOPs and RESUMEs the source's own stop
 * and cont make QEMU announce are no signal, another client's are, over a fake QEMU that announces state
 * changes to every connection as QEMU does (inside the command, before its reply).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HaltingMemory, qmpControl, type GuestControl } from '../../src/memory/halting.js';
import { GuestLifecycle, type LifecycleSignal } from '../../src/monitor/lifecycle.js';
import { QmpClient } from '../../src/qemu/qmp.js';
import { FakeMemory } from '../memory/helpers/fake-memory.js';
import { startFakeQmp, type FakeQmp } from '../qemu/helpers/fake-qmp.js';

/** A QEMU with a run state that emits STOP/RESUME only when the state changes (QEMU 7.2's vm_stop/vm_start). */
async function fakeQemu(): Promise<{ qmp: FakeQmp; running: () => boolean }> {
  let running = true;
  const qmp: FakeQmp = await startFakeQmp((cmd) => {
    if (cmd === 'query-status') return { status: running ? 'running' : 'paused', running };
    if (cmd === 'stop' && running) {
      running = false;
      qmp.emit('STOP');
    }
    if (cmd === 'cont' && !running) {
      running = true;
      qmp.emit('RESUME');
    }
    return {};
  });
  return { qmp, running: () => running };
}

/** Takes signals until `done` says enough arrived (events cross a socket of their own), at most 2 s. */
async function takeUntil(life: GuestLifecycle, done: (got: LifecycleSignal[]) => boolean): Promise<LifecycleSignal[]> {
  const got: LifecycleSignal[] = [];
  const deadline = Date.now() + 2000;
  while (!done(got) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 10));
    got.push(...life.take());
  }
  await new Promise((r) => setTimeout(r, 30));
  got.push(...life.take());
  return got;
}

/** Five passes of the halting source, then another client pausing and resuming the guest. */
async function ownAndForeign(control: (c: QmpClient) => GuestControl): Promise<void> {
  const { qmp, running } = await fakeQemu();
  const client = await QmpClient.connect(qmp.path);
  const halting = await HaltingMemory.open(new FakeMemory(4096), control(client));
  const life = await GuestLifecycle.open([qmp.path], undefined, { own: halting });
  const other = await QmpClient.connect(qmp.path);
  try {
    for (let i = 0; i < 5; i++) await halting.refresh();
    await halting.end();
    assert.equal(running(), true);
    // The first STOP came before the lifecycle connected: 5 × (RESUME, STOP) + the last RESUME.
    const own = await takeUntil(life, () => life.ownEvents >= 11);
    assert.deepEqual(own, [], 'our own pauses are no signal');
    assert.equal(life.ownEvents, 11);

    await other.execute('stop');
    assert.deepEqual(await takeUntil(life, (g) => g.length > 0), ['paused'], "another client's stop is the guest pausing");
    await other.execute('cont');
    assert.deepEqual(await takeUntil(life, (g) => g.length > 0), ['resumed']);
    // A STOP no command of ours caused (e.g. a guest I/O error stopping the VM) is a signal too.
    qmp.emit('STOP');
    assert.deepEqual(await takeUntil(life, (g) => g.length > 0), ['paused']);
    assert.equal(life.ownEvents, 11);
  } finally {
    await life.close();
    await halting.close();
    await other.close();
    await client.close();
    await qmp.close();
  }
}

test("a halting source's own STOP/RESUME (QEMU's stamp seen on its own connection) are not the guest pausing; another client's are", async () => {
  await ownAndForeign(qmpControl);
});

test('a control that cannot see events: own STOP/RESUME are told apart by the host-time window of the command', async () => {
  await ownAndForeign((c) => ({
    ...qmpControl(c),
    stop: async () => void (await c.execute('stop')),
    cont: async () => void (await c.execute('cont')),
  }));
});

test('an event of ours is matched once: the same stamp seen again is a signal', async () => {
  const { qmp } = await fakeQemu();
  const client = await QmpClient.connect(qmp.path);
  const halting = await HaltingMemory.open(new FakeMemory(4096), qmpControl(client));
  try {
    const stop = client.events.find((e) => e.event === 'STOP');
    assert.ok(stop, 'the fake QEMU announced our stop');
    assert.equal(halting.causedBy(stop), true);
    assert.equal(halting.causedBy(stop), false);
    assert.equal(halting.causedBy({ event: 'RESET', timestamp: stop.timestamp! }), false, 'only STOP and RESUME are ours to cause');
    assert.equal(halting.holdsGuestPaused, true);
  } finally {
    await halting.close();
    assert.equal(halting.holdsGuestPaused, false);
    await client.close();
    await qmp.close();
  }
});
