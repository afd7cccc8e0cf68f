/**
 * The monitor over a guest-halting source (`?halting=1`: QMP stop … reads … cont around every pass) on a
 * real lab guest. QEMU announces those stops and resumes to every QMP client, the monitor's lifecycle
 * connection too: they must not come out as guest-paused / guest-resumed events, while a real pause (a
 * `stop` from another client, then `cont`) in the middle of it is reported once each way. The guest is
 * running at the end. No assertion on times.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { labDown, labUp, type LabGuest } from '../../src/lab/index.js';
import { attachKernel } from '../../src/linux/attach.js';
import { HaltingMemory, pausedGuestCount } from '../../src/memory/halting.js';
import { GuestLifecycle } from '../../src/monitor/lifecycle.js';
import { Monitor } from '../../src/monitor/monitor.js';
import { QmpClient } from '../../src/qemu/qmp.js';
import { TEST_GUEST_PREFIX } from '../helpers/guest.js';
import { CollectingSink } from './helpers/events.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const running = async (qmp: QmpClient): Promise<boolean> => (await qmp.execute<{ running: boolean }>('query-status')).running;

describe('monitor over a guest-halting source', () => {
  let guest: LabGuest;
  before(async () => {
    // A guest of its own: it is paused hundreds of times, and a test pauses it on purpose.
    guest = await labUp({ name: `${TEST_GUEST_PREFIX}halting-6.1`, kernel: '6.1', memory: 256, extraQmpSockets: 3 });
  });
  after(async () => {
    await labDown(guest.name).catch(() => undefined);
  });

  test("its own stops and resumes are no guest-paused event; another client's pause is reported once, and the guest is left running", async () => {
    const kernel = await attachKernel(`lab:${guest.name}?halting=1`);
    const memory = kernel.memory;
    assert.ok(memory instanceof HaltingMemory, `a halting source (got ${memory.technique.name})`);
    const sink = new CollectingSink();
    const lifecycle = await GuestLifecycle.open(guest.qmpSockets.slice(1), guest.pid, { own: memory });
    assert.ok(lifecycle.qmpSocket, `the lifecycle has QMP events: ${lifecycle.qmpUnavailable}`);
    let ready!: () => void;
    const isReady = new Promise<void>((r) => (ready = r));
    const monitor = new Monitor(kernel, { watches: ['processes'], sinks: [sink], lifecycle, onReady: ready });
    const done = monitor.run();
    await isReady;
    const other = await QmpClient.connect(guest.qmpSockets.at(-1)!);
    let result;
    try {
      await sleep(3000);
      const passes = memory.stats.passes;
      assert.ok(passes > 10, `the source paused the guest for its passes (${passes})`);
      assert.deepEqual(sink.of('guest-paused'), [], 'the source’s own pauses are not the guest pausing');

      // A stop that lands while the source holds the guest paused changes nothing in QEMU (no STOP event)
      // and the source's cont ends it: stop again until the guest stays paused. A pass in progress holds the
      // guest paused too (a loaded machine makes one last longer than the wait): the status tells only
      // between passes.
      let stays = false;
      for (let i = 0; i < 20 && !stays; i++) {
        await other.execute('stop');
        await sleep(300);
        for (let j = 0; j < 200 && memory.holdsGuestPaused; j++) await sleep(25);
        const passes = memory.stats.passes;
        const paused = !(await running(other));
        stays = paused && !memory.holdsGuestPaused && memory.stats.passes === passes; // no pass began meanwhile
      }
      assert.ok(stays, 'the guest stayed paused after another client stopped it');
      const paused = await sink.until('guest-paused', (e) => e.type === 'guest-paused', 30_000);
      const ticks = monitor.stats.ticks;
      const pausesBefore = memory.stats.passes;
      await sleep(1000);
      assert.ok(monitor.stats.ticks - ticks <= 1, 'no ticks while the guest is paused');
      assert.equal(await running(other), false, 'the monitor leaves a pause of another client alone');
      assert.ok(memory.stats.passes - pausesBefore <= 1, 'no passes of its own while the guest is paused');
      await other.execute('cont');
      const resumed = await sink.until('guest-resumed', (e) => e.type === 'guest-resumed', 30_000);
      assert.ok(resumed.seq > paused.seq);
      // Passes go on after the real pause, still unreported.
      const passesAfter = memory.stats.passes;
      await sleep(2000);
      assert.ok(memory.stats.passes > passesAfter + 5, `passes after the resume (${memory.stats.passes - passesAfter})`);
    } finally {
      monitor.stop();
      result = await done;
      await monitor.closeSinks();
      await lifecycle.close();
      await monitor.current.close();
      await other.execute('cont').catch(() => undefined);
    }
    try {
      assert.equal(result.reason, 'signal', result.detail);
      assert.equal(sink.of('guest-paused').length, 1, JSON.stringify(sink.of('guest-paused')));
      assert.equal(sink.of('guest-resumed').length, 1, JSON.stringify(sink.of('guest-resumed')));
      // The source's STOP/RESUME pairs reached the lifecycle and were recognised (this is what the filter is for).
      assert.ok(result.stats.ownPauseEvents > 10, `own pause events recognised: ${result.stats.ownPauseEvents}`);
      assert.equal(pausedGuestCount(), 0);
      assert.equal(await running(other), true, 'the guest is running at the end');
    } finally {
      await other.close();
    }
  });
});
