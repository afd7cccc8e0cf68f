/**
 * A QMP server in the test process: greeting, qmp_capabilities, and whatever
 * commands the test answers. For exercising discovery and live read without
 * booting QEMU.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export type Handler = (command: string, args: Record<string, unknown> | undefined) => unknown;

export interface FakeQmp {
  readonly path: string;
  /** Every command received, in order (HMP command lines as 'hmp:LINE'). */
  readonly log: string[];
  /** Sends an event to every connected client, stamped like QEMU's (host real time); returns its stamp in µs. */
  emit(event: string, data?: Record<string, unknown>): number;
  close(): Promise<void>;
}

/** An error reply: throw this from a handler. */
export class QmpReplyError extends Error {}

export async function startFakeQmp(handle: Handler): Promise<FakeQmp> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmsight-test-fakeqmp-'));
  const sock = path.join(dir, 'qmp.sock');
  const log: string[] = [];
  const clients = new Set<net.Socket>();
  const server = net.createServer((c) => {
    clients.add(c);
    c.on('close', () => clients.delete(c));
    c.setEncoding('utf8');
    c.write(JSON.stringify({ QMP: { version: { qemu: { major: 7, minor: 2, micro: 22 }, package: '' }, capabilities: [] } }) + '\n');
    let buf = '';
    c.on('data', (d: string) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (!line.trim()) continue;
        const msg = JSON.parse(line) as { execute: string; arguments?: Record<string, unknown>; id?: unknown };
        const cmd = msg.execute === 'human-monitor-command' ? `hmp:${String(msg.arguments?.['command-line'])}` : msg.execute;
        log.push(cmd);
        let reply: Record<string, unknown>;
        try {
          const ret = msg.execute === 'qmp_capabilities' ? {} : handle(cmd, msg.arguments);
          reply = { return: ret ?? {} };
        } catch (err) {
          reply = { error: { class: 'GenericError', desc: (err as Error).message } };
        }
        if (msg.id !== undefined) reply['id'] = msg.id;
        c.write(JSON.stringify(reply) + '\n');
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(sock, resolve));
  return {
    path: sock,
    log,
    emit(event, data) {
      const us = Date.now() * 1000 + (Math.floor(performance.now() * 1000) % 1000);
      const line = JSON.stringify({ event, ...(data ? { data } : {}), timestamp: { seconds: Math.floor(us / 1e6), microseconds: us % 1e6 } }) + '\n';
      for (const c of clients) c.write(line);
      return us;
    },
    async close() {
      for (const c of clients) c.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
