import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { HaltingMemory, pausedGuestCount, type EmittedEvent, type GuestControl } from '../../src/memory/halting.js';
import { FakeMemory } from './helpers/fake-memory.js';
import type { GuestPhysAddr } from '../../src/core/address.js';

/** A guest that only has a run state, and logs what it was told. */
class FakeGuest implements GuestControl {
  readonly endpoint = 'fake';
  state = 'running';
  log: string[] = [];
  failStop = false;
  /** What the stop announces (undefined: this control cannot tell). */
  stopEmits: EmittedEvent = undefined;
  async status() {
    return this.state;
  }
  async stop(): Promise<EmittedEvent> {
    this.log.push('stop');
    if (this.failStop) throw new Error('stop failed');
    this.state = 'paused';
    return this.stopEmits;
  }
  async cont() {
    this.log.push('cont');
    this.state = 'running';
  }
  contSync() {
    this.log.push('contSync');
    this.state = 'running';
  }
}

test('open pauses, refresh resumes and pauses again with a new generation, close resumes', async () => {
  const g = new FakeGuest();
  const inner = new FakeMemory(8192);
  const h = await HaltingMemory.open(inner, g);
  assert.equal(g.state, 'paused');
  assert.equal(h.technique.class, 'guest-halting');
  assert.equal(h.technique.haltsGuest, true);
  assert.equal(h.technique.name, 'halting(fake)');
  assert.equal(h.passOpen, true);
  assert.equal(pausedGuestCount(), 1);
  const gen = h.generation;
  const op = { addr: 16, len: 4 } as { addr: GuestPhysAddr; len: number; dst?: Uint8Array };
  assert.deepEqual(h.readv([op]), []);
  assert.deepEqual(op.dst, inner.bytes.subarray(16, 20));
  await h.refresh();
  assert.equal(h.generation, gen + 1);
  assert.equal(inner.refreshed, 2, 'each pass refreshes the inner source too');
  assert.deepEqual(g.log, ['stop', 'cont', 'stop']);
  assert.equal(h.stats.passes, 2);
  await h.close();
  await h.close();
  assert.equal(g.state, 'running');
  assert.deepEqual(g.log, ['stop', 'cont', 'stop', 'cont']);
  assert.equal(inner.closed, 1);
  assert.equal(pausedGuestCount(), 0);
  assert.ok(h.stats.pausedMs >= 0);
});

test('pass() resumes even when the work throws', async () => {
  const g = new FakeGuest();
  const h = new HaltingMemory(new FakeMemory(4096), g);
  await assert.rejects(
    h.pass(async () => {
      assert.equal(g.state, 'paused');
      throw new Error('boom');
    }),
    /boom/,
  );
  assert.equal(g.state, 'running');
  const v = await h.pass((m) => m.size);
  assert.equal(v, 4096);
  assert.deepEqual(g.log, ['stop', 'cont', 'stop', 'cont']);
  assert.equal(h.generation, 2);
  await h.close();
  assert.deepEqual(g.log, ['stop', 'cont', 'stop', 'cont'], 'close after passes does not cont twice');
});

test('a guest paused by someone else stays paused', async () => {
  const g = new FakeGuest();
  g.state = 'paused';
  const h = await HaltingMemory.open(new FakeMemory(4096), g);
  await h.refresh();
  await h.close();
  assert.deepEqual(g.log, []);
  assert.equal(g.state, 'paused');
  assert.equal(h.stats.alreadyPaused, 2);
});

test('a stop that QEMU announced no STOP for is still resumed, and that resume is no own event', async () => {
  const g = new FakeGuest();
  // Another client's stop lands between our query-status and our stop: ours changes nothing, emits nothing.
  g.stopEmits = 'none';
  const h = await HaltingMemory.open(new FakeMemory(4096), g);
  assert.equal(h.holdsGuestPaused, true, 'never left paused on a guess');
  await h.end();
  assert.deepEqual(g.log, ['stop', 'cont']);
  assert.equal(g.state, 'running');
  // Our cont ended the other client's pause: its RESUME must reach the monitor (it saw that client's STOP).
  const now = Date.now() * 1000;
  assert.equal(h.causedBy({ event: 'RESUME', timestamp: { seconds: Math.floor(now / 1e6), microseconds: now % 1e6 } }), false);
  await h.close();
});

test('a failing stop leaves the guest running and the error visible', async () => {
  const g = new FakeGuest();
  g.failStop = true;
  await assert.rejects(HaltingMemory.open(new FakeMemory(4096), g), /stop failed/);
  assert.equal(g.state, 'running');
  assert.equal(pausedGuestCount(), 0);
});

for (const how of ['exit', 'SIGTERM'] as const) {
  test(`${how === 'exit' ? 'process exit' : 'SIGTERM'} resumes a guest we paused`, () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmsight-test-halt-'));
    const marker = path.join(dir, 'resumed');
    const halting = fileURLToPath(new URL('../../src/memory/halting.ts', import.meta.url));
    const fake = fileURLToPath(new URL('./helpers/fake-memory.ts', import.meta.url));
    const script = path.join(dir, 'child.mts');
    const ending = how === 'exit' ? 'process.exit(3);' : "process.kill(process.pid, 'SIGTERM'); setTimeout(() => {}, 10_000);";
    fs.writeFileSync(
      script,
      `import { HaltingMemory } from ${JSON.stringify(halting)};
       import { FakeMemory } from ${JSON.stringify(fake)};
       import fs from 'node:fs';
       const control = { endpoint: 'x', status: async () => 'running', stop: async () => {}, cont: async () => {},
         contSync: () => fs.writeFileSync(${JSON.stringify(marker)}, 'yes') };
       await HaltingMemory.open(new FakeMemory(4096), control);
       ${ending}`,
    );
    try {
      const tsx = fileURLToPath(new URL('../../node_modules/tsx/dist/cli.mjs', import.meta.url));
      const r = spawnSync(process.execPath, [tsx, script], { encoding: 'utf8', timeout: 60_000 });
      if (how === 'exit') assert.equal(r.status, 3, r.stderr);
      else assert.ok(r.signal === 'SIGTERM' || r.status === 143, `ended by ${r.signal ?? r.status}: ${r.stderr}`);
      assert.equal(fs.readFileSync(marker, 'utf8'), 'yes');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
}
