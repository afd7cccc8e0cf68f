import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SourceError } from '../../../src/core/errors.js';
import { siblingModule } from '../../../src/memory/bridge/protocol.js';
import { SyncBridge } from '../../../src/memory/bridge/sync-bridge.js';
import { type GuestPhysAddr, gpa } from '../../../src/core/address.js';

const backend = siblingModule(import.meta.url, 'helpers/fake-backend');
const opts = { technique: 'fake', target: 'fake:0' };

test('sync bridge: blocking readv returns the worker bytes and failures; async calls work', async () => {
  const b = await SyncBridge.start(backend, { size: 0x1000 }, { ...opts, maxBatchBytes: 300 });
  try {
    const ops = [
      { addr: 0x10, len: 200 },
      { addr: 0xff0, len: 32, dst: new Uint8Array(32) },
      { addr: 0x200, len: 400 },
    ] as Array<{ addr: GuestPhysAddr; len: number; dst?: Uint8Array }>;
    const failures = b.readv(ops);
    assert.equal(ops[0]!.dst![0], 0x10);
    assert.equal(ops[0]!.dst![199], (0x10 + 199) & 0xff);
    assert.equal(ops[1]!.dst![15], 0xff);
    assert.equal(ops[2]!.dst![399], (0x200 + 399) & 0xff);
    assert.deepEqual(failures, [{ addr: 0x1000, len: 16, reason: 'beyond fake memory' }]);
    assert.ok(b.roundTrips >= 2, 'batch split by maxBatchBytes');
    assert.deepEqual(await b.call('echo', { x: 1 }), { x: 1 });
  } finally {
    await b.close();
  }
});

test('sync bridge: a hung backend times out with a SourceError; a dead worker is a SourceError', async () => {
  const b = await SyncBridge.start(backend, { size: 64 }, { ...opts, timeoutMs: 300 });
  await b.call('mode', 'hang');
  const t0 = Date.now();
  assert.throws(() => b.readv([{ addr: gpa(0), len: 8 }]), (e: unknown) => e instanceof SourceError && /within 300 ms/.test(e.message));
  assert.ok(Date.now() - t0 < 3000);
  assert.throws(() => b.readv([{ addr: gpa(0), len: 8 }]), SourceError, 'stays broken');
  await b.close();

  const d = await SyncBridge.start(backend, { size: 64 }, { ...opts, timeoutMs: 5000 });
  await d.call('mode', 'die');
  const t1 = Date.now();
  assert.throws(() => d.readv([{ addr: gpa(0), len: 8 }]), (e: unknown) => e instanceof SourceError && /died/.test(e.message));
  assert.ok(Date.now() - t1 < 3000, 'death noticed before the timeout');
  await d.close();

  await assert.rejects(SyncBridge.start(backend, { size: 1, failStart: true }, opts), /refused to start/);
});
