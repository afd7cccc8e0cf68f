import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { acquireQmp, checkReadable, discoverQemu, findQemuPid, normalizeEndpoint, openOnQmpLease, parseGpa2hva } from '../../src/qemu/discover.js';
import { startFakeQmp } from './helpers/fake-qmp.js';

const fixture = (name: string) => fs.readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8');

test('gpa2hva answers', () => {
  assert.deepEqual(parseGpa2hva('Host virtual address for 0x1000 (mem) is 0x7fddac000000\r\n'), { region: 'mem', hva: 0x7fddac000000 });
  assert.deepEqual(parseGpa2hva('Host virtual address for 0xfd000000 (vga.vram) is 0x7fddaa200000'), { region: 'vga.vram', hva: 0x7fddaa200000 });
  assert.equal(parseGpa2hva('Memory at address 0xa0000 is not RAM'), undefined);
  assert.equal(parseGpa2hva('No memory is mapped at address 0x20000000'), undefined);
});

test('the pid of the process holding a listening unix socket', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmsight-test-pid-'));
  const sock = path.join(dir, 's.sock');
  const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(sock)}, () => console.log('up'))`], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
    const found = findQemuPid(sock);
    assert.equal(found.pid, child.pid, found.reason);
    assert.equal(findQemuPid(`unix:${sock}`).pid, child.pid);
    const none = findQemuPid(path.join(dir, 'absent.sock'));
    assert.equal(none.pid, undefined);
    assert.match(none.reason, /no listening socket/);
  } finally {
    child.kill();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('backend file readability', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmsight-test-rd-'));
  try {
    const f = path.join(dir, 'ram');
    fs.writeFileSync(f, Buffer.alloc(8192));
    assert.equal(checkReadable(f, 8192).readable, true);
    assert.match(checkReadable(f, 16384).reason, /less than/);
    assert.match(checkReadable(dir, 1).reason, /directory/);
    assert.match(checkReadable(path.join(dir, 'nope'), 1).reason, /ENOENT/);
    assert.match(checkReadable(undefined, 1).reason, /anonymous/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('discovery from a QMP conversation', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmsight-test-disc-'));
  const ramFile = path.join(dir, 'guest-ram');
  fs.writeFileSync(ramFile, '');
  fs.truncateSync(ramFile, 0x10000000);
  const qmp = await startFakeQmp((cmd, args) => {
    if (cmd === 'query-status') return { status: 'running', running: true };
    if (cmd === 'hmp:info mtree -f') return fixture('q35-256m.mtree-f.txt');
    if (cmd === 'query-memdev') return [{ id: 'mem', size: 0x10000000, share: true }];
    if (cmd === 'qom-list') return [{ name: 'type', type: 'string' }, { name: 'mem', type: 'child<memory-backend-file>' }];
    if (cmd === 'qom-get' && args?.['property'] === 'mem-path') return ramFile;
    if (cmd === 'qom-get' && args?.['property'] === 'memory-backend') return '/objects/mem';
    throw new Error(`unexpected ${cmd}`);
  });
  try {
    const lease = await acquireQmp(qmp.path);
    const again = await acquireQmp(`unix:${qmp.path}`);
    assert.equal(again.client, lease.client, 'one connection per endpoint');
    const d = await lease.discovery();
    assert.equal(await again.discovery(), d, 'discovery is asked once per connection');
    assert.equal(d.version, '7.2.22');
    assert.equal(d.status, 'running');
    assert.equal(d.mainBlock, 'mem');
    assert.equal(d.mainBackend?.memPath, ramFile);
    assert.equal(d.mainBackend?.type, 'memory-backend-file');
    assert.equal(d.mainBackend?.share, true);
    assert.equal(d.mainBackend?.readable, true);
    assert.deepEqual(d.layout.map((r) => [r.start, r.end]), [
      [0, 0xa0000],
      [0xc0000, 0x10000000],
    ]);
    // The fake server runs in this process, which findQemuPid never reports as QEMU.
    assert.equal(d.pid, undefined);
    await again.release();
    assert.equal(lease.client.closed, false, 'still leased');
    await lease.release();
    assert.equal(lease.client.closed, true, 'last release closes');
    assert.equal(qmp.log.filter((c) => c === 'hmp:info mtree -f').length, 1);
    // A direct call works on any client.
    const l2 = await acquireQmp(qmp.path);
    assert.equal((await discoverQemu(l2.client)).mainBlock, 'mem');
    await l2.release();
  } finally {
    await qmp.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('endpoint normalisation', () => {
  assert.equal(normalizeEndpoint('unix:/a/b.sock'), '/a/b.sock');
  assert.equal(normalizeEndpoint('tcp:127.0.0.1:4444'), 'tcp:127.0.0.1:4444');
  assert.equal(normalizeEndpoint('b.sock'), path.resolve('b.sock'));
});

test('openOnQmpLease: a successful open keeps the lease, a failed one releases it', async () => {
  const qmp = await startFakeQmp((cmd) => {
    if (cmd === 'query-status') return { status: 'running', running: true };
    throw new Error(`unexpected ${cmd}`);
  });
  try {
    const kept = await openOnQmpLease(qmp.path, async (lease) => lease);
    assert.equal(kept.client.closed, false);
    let failed: { client: { closed: boolean } } | undefined;
    await assert.rejects(
      openOnQmpLease(qmp.path, async (lease) => {
        failed = lease;
        throw new Error('open failed');
      }),
      /open failed/,
    );
    assert.equal(failed?.client, kept.client, 'both leases share the pooled connection');
    assert.equal(kept.client.closed, false, 'the failed open released only its own lease');
    await kept.release();
    assert.equal(kept.client.closed, true, 'the last lease closes the connection');
  } finally {
    await qmp.close();
  }
});

test('openOnQmpLease: a failed open with the only lease closes the connection', async () => {
  const qmp = await startFakeQmp(() => ({}));
  try {
    let lease: { client: { closed: boolean } } | undefined;
    await assert.rejects(
      openOnQmpLease(qmp.path, async (l) => {
        lease = l;
        throw new Error('no');
      }),
      /no/,
    );
    assert.equal(lease?.client.closed, true);
  } finally {
    await qmp.close();
  }
});
