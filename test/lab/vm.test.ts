import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { LabError, UsageError } from '../../src/core/errors.js';
import { chooseAccel, defaultGuestName, findGuest, guestAlive, labDown, labList, labUp } from '../../src/lab/vm.js';

let run: string;
const saved = process.env['VMSIGHT_RUN'];
before(() => {
  run = fs.mkdtempSync(path.join(os.tmpdir(), 'vmsight-run-'));
  process.env['VMSIGHT_RUN'] = run;
});
after(() => {
  if (saved === undefined) delete process.env['VMSIGHT_RUN'];
  else process.env['VMSIGHT_RUN'] = saved;
  fs.rmSync(run, { recursive: true, force: true });
});

/** A record whose pid is a live process that is not its QEMU (this test process). */
function fakeGuest(name: string): { stateDir: string; shmPath: string } {
  const stateDir = path.join(run, name);
  const shmPath = `/dev/shm/vmsight-${name}`;
  fs.mkdirSync(stateDir, { recursive: true });
  fs.writeFileSync(shmPath, 'not guest ram');
  fs.writeFileSync(
    path.join(stateDir, 'guest.json'),
    JSON.stringify({ name, pid: process.pid, stateDir, shmPath, consolePath: path.join(stateDir, 'console.log'), kernel: { release: 'x' } }),
  );
  return { stateDir, shmPath };
}

test('accelerator and default names', () => {
  assert.equal(chooseAccel('tcg'), 'tcg');
  assert.ok(['tcg', 'kvm'].includes(chooseAccel('auto')));
  assert.equal(defaultGuestName('6.1'), 'lab-6.1');
  assert.equal(defaultGuestName('linux-image-6.12.95+deb12-amd64'), 'lab-6.12.95_deb12-amd64');
});

test('a pid that is not our QEMU is never treated as alive, and its record is cleaned', () => {
  const { stateDir, shmPath } = fakeGuest('test-unit-stale');
  assert.equal(guestAlive({ pid: process.pid, stateDir }), false);
  assert.equal(guestAlive({ pid: 0, stateDir }), false);
  assert.equal(guestAlive({ pid: 1, stateDir }), false);
  const listed = labList().find((e) => e.guest.name === 'test-unit-stale');
  assert.equal(listed?.alive, false);
  assert.ok(!fs.existsSync(stateDir), 'stale state removed');
  assert.ok(!fs.existsSync(shmPath), 'stale shm removed');
  fakeGuest('test-unit-stale2');
  assert.equal(findGuest('test-unit-stale2'), undefined);
});

test('labDown of a record pointing at another process leaves that process alone', async () => {
  const { shmPath } = fakeGuest('test-unit-down');
  assert.equal(await labDown('test-unit-down'), true); // we are still running: it did not kill us
  assert.ok(!fs.existsSync(shmPath));
  assert.equal(await labDown('test-unit-down'), false);
});

test('bad guest names and options are usage errors before anything starts', async () => {
  assert.throws(() => findGuest('../etc'), UsageError);
  assert.throws(() => findGuest('a b'), UsageError);
  await assert.rejects(labUp({ name: 'test-unit', memory: 12 }), UsageError);
  await assert.rejects(labUp({ name: 'test-unit', cpu: 'host' as never }), UsageError);
  await assert.rejects(labUp({ name: 'x'.repeat(60) }), UsageError);
});

test('a RAM file used by a QEMU outside our run directory is never taken over', async () => {
  const name = 'test-unit-foreign';
  // Any live process whose command line names the mem-path counts as its user.
  const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)', `mem-path=/dev/shm/vmsight-${name},share=on`], { stdio: 'ignore' });
  try {
    await new Promise((r) => setTimeout(r, 200));
    await assert.rejects(labUp({ name }), (e: unknown) => e instanceof LabError && e.message.includes(`pid ${child.pid}`));
  } finally {
    child.kill();
  }
});
