/** The QMP client against fake peers on unix sockets: framing, ids, events, and every way a peer can be wrong. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { QemuError } from '../../src/core/errors.js';
import { QmpClient } from '../../src/qemu/qmp.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmsight-qmp-test-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));
let n = 0;

/** A fake peer: `onLine` answers each line the client sends. Returns the socket path and a closer. */
async function fakePeer(onConnect: (s: net.Socket) => void, onLine: (s: net.Socket, msg: Record<string, unknown>) => void = () => {}): Promise<{ socket: string; close: () => void }> {
  const socket = path.join(dir, `p${n++}.sock`);
  const server = net.createServer((s) => {
    onConnect(s);
    let buf = '';
    s.on('data', (d) => {
      buf += d.toString();
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (line.trim()) onLine(s, JSON.parse(line) as Record<string, unknown>);
      }
    });
    s.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(socket, r));
  return { socket, close: () => server.close() };
}

const GREETING = JSON.stringify({ QMP: { version: { qemu: { major: 7, minor: 2, micro: 22 } }, capabilities: ['oob'] } }) + '\r\n';

function qemuLike(s: net.Socket, msg: Record<string, unknown>): void {
  const id = msg['id'];
  switch (msg['execute']) {
    case 'qmp_capabilities':
      // An event may arrive between replies, split across writes.
      s.write(JSON.stringify({ return: {}, id }) + '\n{"event": "RESU');
      s.write('ME", "timestamp": {"seconds": 1, "microseconds": 2}}\n');
      break;
    case 'query-status':
      s.write(JSON.stringify({ return: { status: 'running', running: true }, id }) + '\n');
      break;
    case 'human-monitor-command':
      s.write(JSON.stringify({ return: `echo ${(msg['arguments'] as Record<string, string>)['command-line']}\r\n`, id }) + '\n');
      break;
    default:
      s.write(JSON.stringify({ error: { class: 'CommandNotFound', desc: `The command ${String(msg['execute'])} has not been found` }, id }) + '\n');
  }
}

test('greeting, capabilities, commands matched by id, HMP, events queued', async () => {
  const peer = await fakePeer((s) => s.write(GREETING), qemuLike);
  const q = await QmpClient.connect(peer.socket);
  try {
    assert.equal(q.greeting.version.qemu.minor, 2);
    const [a, b] = await Promise.all([q.execute<{ status: string }>('query-status'), q.hmp('info version')]);
    assert.equal(a.status, 'running');
    assert.equal(b, 'echo info version\r\n');
    const ev = await q.waitEvent('RESUME', 1000);
    assert.equal(ev.timestamp?.microseconds, 2);
    await assert.rejects(q.execute('frobnicate'), (e: unknown) => e instanceof QemuError && e.errorClass === 'CommandNotFound' && /frobnicate failed/.test(e.message));
  } finally {
    await q.close();
    peer.close();
  }
});

test('a missing socket, a refused one, and a peer that speaks something else each say so in one line', async () => {
  await assert.rejects(QmpClient.connect(path.join(dir, 'nothing.sock')), (e: unknown) => e instanceof QemuError && /no such socket: check the path given to QEMU/.test(e.oneLine()));

  const stale = path.join(dir, 'stale.sock');
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(stale, r));
  await new Promise<void>((r) => server.close(() => r()));
  fs.writeFileSync(stale, ''); // a leftover file where a socket used to be
  await assert.rejects(QmpClient.connect(stale), (e: unknown) => e instanceof QemuError && /refused|ECONNREFUSED|ENOTSOCK|not a socket/i.test(e.message));

  const ssh = await fakePeer((s) => s.write('SSH-2.0-OpenSSH_9.2\r\n'));
  await assert.rejects(QmpClient.connect(ssh.socket), /does not speak QMP/);
  ssh.close();

  const json = await fakePeer((s) => s.write('{"hello": "world"}\n'));
  await assert.rejects(QmpClient.connect(json.socket), /no QMP greeting/);
  json.close();
});

test('a silent peer times out, and QEMU exiting mid-command rejects the pending command', async () => {
  const silent = await fakePeer(() => {});
  await assert.rejects(QmpClient.connect(silent.socket, { timeoutMs: 200 }), /no QMP greeting within 200 ms/);
  silent.close();

  const dying = await fakePeer(
    (s) => s.write(GREETING),
    (s, msg) => (msg['execute'] === 'qmp_capabilities' ? qemuLike(s, msg) : s.destroy()),
  );
  const q = await QmpClient.connect(dying.socket);
  await assert.rejects(q.execute('query-status'), /connection closed by QEMU/);
  await assert.rejects(q.execute('query-status'), /connection closed by QEMU/);
  assert.equal(q.closed, true);
  dying.close();
});
