import assert from 'node:assert/strict';
import { test } from 'node:test';
import { migrateToFile, whileStopped } from '../../src/qemu/migration.js';
import { QmpClient } from '../../src/qemu/qmp.js';
import { QmpReplyError, startFakeQmp } from './helpers/fake-qmp.js';

/** A fake QEMU whose run state follows stop/cont/migrate like QEMU 7.2's. */
function fakeVm(opts: { background: boolean; refuseBackground?: boolean; failMigration?: boolean }) {
  let status = 'running';
  let bg = false;
  let polls = 0;
  return (cmd: string, args: Record<string, unknown> | undefined): unknown => {
    switch (cmd) {
      case 'query-status':
        return { status, running: status === 'running' };
      case 'stop':
        status = 'paused';
        return {};
      case 'cont':
        status = 'running';
        return {};
      case 'query-migrate-capabilities':
        return opts.background ? [{ capability: 'background-snapshot', state: bg }] : [{ capability: 'xbzrle', state: false }];
      case 'migrate-set-capabilities': {
        const c = (args!['capabilities'] as Array<{ capability: string; state: boolean }>)[0]!;
        if (opts.refuseBackground && c.state) throw new QmpReplyError('Background-snapshot is not supported');
        bg = c.state;
        return {};
      }
      case 'migrate':
        polls = 0;
        return {};
      case 'query-migrate':
        if (++polls < 3) return { status: 'active' };
        if (opts.failMigration) return { status: 'failed', 'error-desc': 'disk full' };
        // A completed pre-copy migration leaves the source paused (postmigrate).
        if (!bg) status = 'postmigrate';
        return { status: 'completed', downtime: 7, ram: { transferred: 1234 } };
      default:
        throw new QmpReplyError(`unexpected ${cmd}`);
    }
  };
}

test('whileStopped resumes the guest even when the work fails', async () => {
  const fake = await startFakeQmp(fakeVm({ background: true }));
  const q = await QmpClient.connect(fake.path);
  try {
    await assert.rejects(whileStopped(q, async () => { throw new Error('pmemsave failed'); }), /pmemsave failed/);
    assert.deepEqual(fake.log.filter((c) => c === 'stop' || c === 'cont'), ['stop', 'cont']);
    assert.equal((await q.execute<{ status: string }>('query-status')).status, 'running');
  } finally {
    await q.close();
    await fake.close();
  }
});

test('migrateToFile: background snapshot when accepted; capability restored; guest left running', async () => {
  const fake = await startFakeQmp(fakeVm({ background: true }));
  const q = await QmpClient.connect(fake.path);
  try {
    const r = await migrateToFile(q, '/tmp/x.mig');
    assert.equal(r.mode, 'background');
    assert.equal(r.downtimeMs, 7);
    assert.ok(fake.log.some((c) => c.startsWith('migrate')));
    const caps = await q.execute<Array<{ state: boolean }>>('query-migrate-capabilities');
    assert.equal(caps[0]!.state, false, 'background-snapshot turned off again');
    assert.equal((await q.execute<{ status: string }>('query-status')).status, 'running');
  } finally {
    await q.close();
    await fake.close();
  }
});

test('migrateToFile: falls back to pre-copy and resumes the postmigrate guest; failures are QemuErrors', async () => {
  const fake = await startFakeQmp(fakeVm({ background: true, refuseBackground: true }));
  const q = await QmpClient.connect(fake.path);
  try {
    const r = await migrateToFile(q, '/tmp/x.mig');
    assert.equal(r.mode, 'precopy');
    assert.equal((await q.execute<{ status: string }>('query-status')).status, 'running');
    assert.ok(fake.log.includes('cont'), 'cont after postmigrate');
    await assert.rejects(migrateToFile(q, 'relative.mig'), /absolute/);
  } finally {
    await q.close();
    await fake.close();
  }
  const bad = await startFakeQmp(fakeVm({ background: false, failMigration: true }));
  const q2 = await QmpClient.connect(bad.path);
  try {
    await assert.rejects(migrateToFile(q2, '/tmp/y.mig'), /failed: disk full/);
  } finally {
    await q2.close();
    await bad.close();
  }
});
