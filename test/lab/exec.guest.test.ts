/**
 * `lab exec` against a real 6.1 guest: what the guest's own tools report
 * (sha256sum, /proc) must match what the host sent and received.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import net from 'node:net';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import { labExec, labRun, labSpawn } from '../../src/lab/exec.js';
import { encodeFrame, FrameDecoder } from '../../src/lab/exec-frame.js';
import { withLock } from '../../src/lab/lock.js';
import type { LabGuest } from '../../src/lab/index.js';
import { sharedGuest } from '../helpers/guest.js';
import { runCli as cli } from './helpers/cli.js';

const sha256 = (b: Uint8Array) => crypto.createHash('sha256').update(b).digest('hex');

describe('lab exec on 6.1', () => {
  let guest: LabGuest;
  before(async () => {
    ({ guest } = await sharedGuest({ kernel: '6.1', purpose: 'exec' }));
  });

  test('echo: argv arrives intact, stdout comes back', async () => {
    const r = await labExec(guest, ['echo', 'hello', 'two words', "quote'd"]);
    assert.equal(r.exitCode, 0);
    assert.equal(r.signal, null);
    assert.equal(r.stdout.toString(), "hello two words quote'd\n");
    assert.equal(r.stderr.length, 0);
    assert.ok(r.pid > 1);
  });

  test('exit codes, the killing signal and a missing command', async () => {
    assert.equal((await labExec(guest, ['sh', '-c', 'exit 7'])).exitCode, 7);
    assert.equal((await labExec(guest, ['false'])).exitCode, 1);
    const killed = await labExec(guest, ['sh', '-c', 'kill -TERM $$']);
    assert.equal(killed.exitCode, null);
    assert.equal(killed.signal, 15);
    assert.equal(killed.timedOut, false);
    const missing = await labExec(guest, ['/bin/no-such-command']);
    assert.equal(missing.exitCode, 127);
    assert.match(missing.stderr.toString(), /no-such-command: No such file or directory/);
  });

  test('stderr is kept apart from stdout', async () => {
    const r = await labExec(guest, ['sh', '-c', 'echo out1; echo err1 >&2; echo out2; echo err2 >&2; exit 3']);
    assert.equal(r.stdout.toString(), 'out1\nout2\n');
    assert.equal(r.stderr.toString(), 'err1\nerr2\n');
    assert.equal(r.exitCode, 3);
  });

  test('1 MiB of random binary stdin: the guest computes the same sha256', async (t) => {
    const data = crypto.randomBytes(1 << 20);
    const t0 = performance.now();
    const r = await labExec(guest, ['sha256sum'], { stdin: data });
    const ms = performance.now() - t0;
    assert.equal(r.exitCode, 0, r.stderr.toString());
    assert.equal(r.stdout.toString().split(/\s/)[0], sha256(data));
    t.diagnostic(`host->guest ${((data.length / ms) * 1000 / 1024).toFixed(1)} KiB/s (${Math.round(ms)} ms for 1 MiB)`);
  });

  test('large stdout (1 MiB of random bytes) arrives intact', async (t) => {
    await labRun(guest, ['sh', '-c', 'head -c 1048576 /dev/urandom > /tmp/exec-big']);
    const guestSum = (await labRun(guest, ['sha256sum', '/tmp/exec-big'])).split(/\s/)[0];
    const t0 = performance.now();
    const r = await labExec(guest, ['cat', '/tmp/exec-big']);
    const ms = performance.now() - t0;
    await labRun(guest, ['rm', '-f', '/tmp/exec-big']);
    assert.equal(r.exitCode, 0);
    assert.equal(r.stdout.length, 1 << 20);
    assert.equal(sha256(r.stdout), guestSum);
    t.diagnostic(`guest->host ${((r.stdout.length / ms) * 1000 / 1024).toFixed(1)} KiB/s (${Math.round(ms)} ms for 1 MiB)`);
  });

  test('stdin the command never reads does not stall the channel', async () => {
    const r = await labExec(guest, ['true'], { stdin: crypto.randomBytes(200 * 1024) });
    assert.equal(r.exitCode, 0);
  });

  test('a timeout kills the guest command and says so', async () => {
    const t0 = performance.now();
    const r = await labExec(guest, ['sh', '-c', 'echo started; exec sleep 60'], { timeoutMs: 1500 });
    assert.ok(performance.now() - t0 < 20_000);
    assert.equal(r.timedOut, true);
    assert.equal(r.signal, 9);
    assert.equal(r.exitCode, null);
    assert.equal(r.stdout.toString(), 'started\n');
    const alive = await labExec(guest, ['test', '-e', `/proc/${r.pid}`]);
    assert.equal(alive.exitCode, 1, `pid ${r.pid} still exists in the guest`);
  });

  test('two concurrent labExec calls are serialized and both correct', async () => {
    const a = crypto.randomBytes(64 * 1024);
    const b = crypto.randomBytes(48 * 1024);
    const [ra, rb] = await Promise.all([labExec(guest, ['sha256sum'], { stdin: a }), labExec(guest, ['sh', '-c', 'sha256sum; echo second >&2'], { stdin: b })]);
    assert.equal(ra.stdout.toString().split(/\s/)[0], sha256(a));
    assert.equal(rb.stdout.toString().split(/\s/)[0], sha256(b));
    assert.equal(rb.stderr.toString(), 'second\n');
    assert.equal(ra.stderr.length, 0);
  });

  test('--detach (labSpawn) starts a background process re-parented to init and returns its pid', async () => {
    const { pid, logPath } = await labSpawn(guest, ['sh', '-c', 'echo spawned-$$; exec sleep 120']);
    try {
      const status = await labRun(guest, ['cat', `/proc/${pid}/status`]);
      assert.match(status, /^PPid:\s+1$/m);
      assert.equal((await labRun(guest, ['cat', `/proc/${pid}/comm`])).trim(), 'sleep');
      assert.equal((await labRun(guest, ['cat', logPath])).trim(), `spawned-${pid}`);
    } finally {
      await labRun(guest, ['kill', String(pid)]);
    }
  });

  test('a corrupted frame is reported, and the agent still answers afterwards', async () => {
    await withLock(path.join(guest.stateDir, 'exec.lock'), async () => {
      const sock = net.connect(guest.execSocket!);
      await new Promise<void>((r, j) => sock.once('connect', () => r()).once('error', j));
      const dec = new FrameDecoder();
      const frames: { type: string; id: number; body: Buffer }[] = [];
      sock.on('data', (c: Buffer) => frames.push(...dec.push(c)));
      const bad = encodeFrame('R', 42, Buffer.from('\0\0\0\0echo\0'));
      bad[bad.length - 1]! ^= 0xff; // break its checksum
      sock.write(Buffer.concat([Buffer.from('junk before any frame'), bad, encodeFrame('A', 0x1234)]));
      const deadline = Date.now() + 20_000;
      while (!frames.some((f) => f.type === 'a' && f.id === 0x1234) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      sock.destroy();
      const failures = frames.filter((f) => f.type === 'F').map((f) => f.body.toString());
      assert.ok(frames.some((f) => f.type === 'a' && f.id === 0x1234), 'no reset answer after the bad frame');
      assert.ok(failures.some((m) => /checksum mismatch/.test(m)), failures.join(' | '));
      assert.ok(!frames.some((f) => f.type === 'S' && f.id === 42), 'the corrupted request ran');
    });
    assert.equal((await labRun(guest, ['echo', 'still here'])).trim(), 'still here');
  });

  test('the agent itself serializes a second request that arrives while one runs', async () => {
    await withLock(path.join(guest.stateDir, 'exec.lock'), async () => {
      const sock = net.connect(guest.execSocket!);
      await new Promise<void>((r, j) => sock.once('connect', () => r()).once('error', j));
      const dec = new FrameDecoder();
      const frames: { type: string; id: number; body: Buffer }[] = [];
      sock.on('data', (c: Buffer) => frames.push(...dec.push(c)));
      const req = (id: number, line: string) => encodeFrame('R', id, Buffer.from(`\0\0\0\0sh\0-c\0${line}\0`));
      const eof = (id: number) => encodeFrame('Z', id, Buffer.alloc(8));
      sock.write(Buffer.concat([req(1, 'sleep 1; echo first'), eof(1), req(2, 'echo second'), eof(2)]));
      const deadline = Date.now() + 30_000;
      while (!frames.some((f) => f.type === 'X' && f.id === 2) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      sock.destroy();
      // The second starts only after the first exited; each output belongs to its own request.
      const order = frames.filter((f) => 'SOX'.includes(f.type)).map((f) => `${f.type}${f.id}`);
      assert.deepEqual(order, ['S1', 'O1', 'X1', 'S2', 'O2', 'X2']);
      assert.equal(frames.find((f) => f.type === 'O' && f.id === 1)!.body.toString(), 'first\n');
      assert.equal(frames.find((f) => f.type === 'O' && f.id === 2)!.body.toString(), 'second\n');
    });
  });

  test('a command flooding output past maxOutputBytes is killed and reported', async () => {
    await assert.rejects(labExec(guest, ['head', '-c', '400000', '/dev/zero'], { maxOutputBytes: 64 * 1024 }), /more than 65536 bytes of output and was killed/);
    assert.equal((await labRun(guest, ['echo', 'after the flood'])).trim(), 'after the flood');
  });

  test('a command left running by a caller that vanished is killed by the next session', async () => {
    let pid = 0;
    await withLock(path.join(guest.stateDir, 'exec.lock'), async () => {
      const sock = net.connect(guest.execSocket!);
      await new Promise<void>((r, j) => sock.once('connect', () => r()).once('error', j));
      const dec = new FrameDecoder();
      const frames: { type: string; id: number; body: Buffer }[] = [];
      sock.on('data', (c: Buffer) => frames.push(...dec.push(c)));
      sock.write(encodeFrame('R', 77, Buffer.from('\0\0\0\0sleep\x00300\0', 'latin1')));
      const deadline = Date.now() + 20_000;
      while (!frames.some((f) => f.type === 'S' && f.id === 77) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      pid = frames.find((f) => f.type === 'S' && f.id === 77)!.body.readUInt32LE(0);
      sock.destroy(); // gone without a word, its command still running
    });
    assert.ok(pid > 1);
    const r = await labExec(guest, ['test', '-e', `/proc/${pid}`]);
    assert.equal(r.exitCode, 1, `the abandoned sleep (pid ${pid}) still runs`);
  });

  test('CLI: vmsight lab exec forwards stdin, stdout, stderr and the exit code', async () => {
    const data = crypto.randomBytes(20_000);
    const r = await cli(['lab', 'exec', guest.name, '--', 'sh', '-c', 'cat; echo to-stderr >&2; exit 5'], data);
    assert.equal(r.code, 5, r.stderr);
    assert.ok(r.stdout.equals(data));
    assert.equal(r.stderr, 'to-stderr\n');
    const killed = await cli(['lab', 'exec', guest.name, '--timeout', '1', '--', 'sleep', '30'], Buffer.alloc(0));
    assert.equal(killed.code, 128 + 9);
    assert.match(killed.stderr, /timed out after 1 s and was killed/);
  });
});

// The agent relies on nothing kernel-specific beyond the 8250 UART and pidfd_open (5.3+): check the other lab kernels too.
for (const kernel of ['5.10', '6.12']) {
  describe(`lab exec on ${kernel}`, () => {
    test('argv, stdin, stdout, stderr and the exit code make the round trip', async () => {
      const { guest } = await sharedGuest({ kernel, purpose: 'exec' });
      const data = crypto.randomBytes(32 * 1024);
      const r = await labExec(guest, ['sh', '-c', 'sha256sum; uname -r >&2; exit 4'], { stdin: data });
      assert.equal(r.exitCode, 4);
      assert.equal(r.stdout.toString().split(/\s/)[0], sha256(data));
      assert.equal(r.stderr.toString().trim(), guest.kernel.release);
      const t = await labExec(guest, ['sleep', '30'], { timeoutMs: 1000 });
      assert.equal(t.timedOut, true);
      assert.equal(t.signal, 9);
    });
  });
}
