import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { QemuError } from '../../src/core/errors.js';
import { decodePacketBody, encodePacket, GdbClient, GdbStreamParser, gdbChecksum, hexToBytes } from '../../src/qemu/gdb.js';

test('packet framing: checksum mod 256, escapes, run-length decoding', () => {
  assert.equal(encodePacket('qSupported'), `$qSupported#${gdbChecksum('qSupported').toString(16).padStart(2, '0')}`);
  assert.equal(encodePacket('m0,4'), '$m0,4#fd');
  assert.equal(encodePacket('a#b'), '$a}\x03b#' + gdbChecksum('a}\x03b').toString(16).padStart(2, '0'));
  // '0* ' = '0' + 3 more ('*' then ' ' = 32 - 29 = 3).
  assert.equal(decodePacketBody('0* '), '0000');
  assert.equal(decodePacketBody('ab}\x03'), 'ab#');
  const p = new GdbStreamParser();
  const body = 'ff* 12';
  const evs = p.push(`+$${body}#${gdbChecksum(body).toString(16).padStart(2, '0')}-$OK#00`);
  assert.deepEqual(evs, [
    { type: 'ack' },
    { type: 'packet', data: 'fffff12', checksumOk: true },
    { type: 'nak' },
    { type: 'packet', data: '', checksumOk: false },
  ]);
  // Split across chunks.
  const q = new GdbStreamParser();
  assert.deepEqual(q.push('$O'), []);
  assert.deepEqual(q.push('K#9'), []);
  assert.deepEqual(q.push('a'), [{ type: 'packet', data: 'OK', checksumOk: true }]);
  const d = new Uint8Array(2);
  assert.equal(hexToBytes('0aff', d), true);
  assert.deepEqual([...d], [10, 255]);
  assert.equal(hexToBytes('0a', d), false);
});

/** Run-length encodes like a stub may: `X*c` repeats X (c − 29) more times; never emits '#' or '$' as count. */
function rle(hex: string): string {
  return hex.replace(/0{5,}/g, (run) => {
    let out = '';
    let left = run.length;
    while (left > 0) {
      let k = Math.min(left, 90);
      if (k === 7 || k === 8) k = 6; // counts 6 and 7 would be '#' and '$'
      out += k >= 4 ? '0*' + String.fromCharCode(29 + k - 1) : '0'.repeat(k);
      left -= k;
    }
    return out;
  });
}

/** A tiny fake gdbstub: acks, answers qSupported/PhyMemMode/m/c/0x03/D, sends a stop reply on connect. */
function fakeStub(memory: Uint8Array, opts: { silent?: boolean; corruptFirst?: boolean } = {}): Promise<{ server: net.Server; port: number; log: string[] }> {
  const log: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    if (opts.silent) return;
    const parser = new GdbStreamParser();
    let corrupt = opts.corruptFirst;
    // Replies are framed raw: a stub's run-length '*' must not be escaped.
    const send = (s: string) => {
      let framed = `$${s}#${gdbChecksum(s).toString(16).padStart(2, '0')}`;
      if (corrupt) {
        corrupt = false;
        framed = framed.slice(0, -2) + '00';
      }
      sock.write(framed);
    };
    sock.setEncoding('latin1');
    send('T02thread:p01.01;');
    sock.on('data', (chunk: string) => {
      if (chunk.includes('\x03')) {
        log.push('^C');
        send('T02thread:p01.01;');
      }
      for (const ev of parser.push(chunk)) {
        if (ev.type === 'nak') {
          log.push('nak');
          send(lastReply);
        }
        if (ev.type !== 'packet') continue;
        sock.write('+');
        log.push(ev.data);
        const reply = answer(ev.data);
        if (reply !== undefined) {
          lastReply = reply;
          send(reply);
        }
      }
    });
    let lastReply = '';
    const answer = (cmd: string): string | undefined => {
      if (cmd.startsWith('qSupported')) return 'PacketSize=1000;multiprocess+';
      if (cmd === 'Qqemu.PhyMemMode:1') return 'OK';
      if (cmd === 'c') return undefined;
      if (cmd === 'D;1') return 'OK';
      const m = /^m([0-9a-f]+),([0-9a-f]+)$/.exec(cmd);
      if (m) {
        const a = parseInt(m[1]!, 16);
        const n = parseInt(m[2]!, 16);
        if (n > 2048 || a + n > memory.length) return 'E14';
        // Run-length encode long runs the way stubs may.
        return rle(Buffer.from(memory.subarray(a, a + n)).toString('hex'));
      }
      return '';
    };
  });
  server.on('close', () => sockets.forEach((x) => x.destroy()));
  const close = server.close.bind(server);
  server.close = ((cb?: (err?: Error) => void) => {
    sockets.forEach((x) => x.destroy());
    return close(cb);
  }) as typeof server.close;
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as net.AddressInfo).port, log })));
}

test('GdbClient: physical mode, split reads ≤ 2 KiB, resume/stop, detach, bad checksum retried', async () => {
  const mem = new Uint8Array(8192);
  for (let i = 0; i < mem.length; i++) mem[i] = i % 7 === 0 ? (i * 13) & 0xff : 0;
  const { server, port, log } = await fakeStub(mem, { corruptFirst: true });
  try {
    const g = await GdbClient.connect(`127.0.0.1:${port}`);
    assert.equal(g.physicalMode, true);
    const dst = new Uint8Array(5000);
    await g.readMemory(100, dst);
    assert.deepEqual([...dst], [...mem.subarray(100, 5100)]);
    assert.ok(log.filter((l) => l.startsWith('m')).every((l) => parseInt(l.split(',')[1]!, 16) <= 2048));
    await assert.rejects(g.readMemory(8000, new Uint8Array(1000)), /E14/);
    await g.resume();
    await assert.rejects(g.readMemory(0, new Uint8Array(8)), /running/);
    await g.stop();
    await g.detach();
    assert.ok(log.includes('D;1') && log.includes('^C') && log.includes('c'));
    assert.ok(log.includes('nak'), 'the corrupted first packet was NAKed');
  } finally {
    server.close();
  }
});

test('GdbClient: a stub that never answers (taken by another client) is a clear error, not a hang', async () => {
  const { server, port } = await fakeStub(new Uint8Array(0), { silent: true });
  try {
    await assert.rejects(GdbClient.connect(`127.0.0.1:${port}`, { timeoutMs: 300 }), (e: unknown) => e instanceof QemuError && /another debugger/.test(e.oneLine()));
  } finally {
    server.close();
  }
  await assert.rejects(GdbClient.connect('127.0.0.1:1', { timeoutMs: 300 }), /connection refused/);
});
