/**
 * A GDB remote serial protocol client for QEMU's gdbstub, enough to read
 * guest memory: packets `$data#cs`, `+`/`-` acks (QEMU 7.2 has no
 * QStartNoAckMode), `}` escapes and `*` run-length encoding in replies,
 * `qSupported`, `Qqemu.PhyMemMode:1` (physical addresses), `m addr,len`
 * reads of at most 2048 bytes, all-stop control (`c` resumes, 0x03 stops),
 * and `D;1` detach (which resumes the guest).
 *
 * QEMU pauses the guest when a client connects and takes one client at a
 * time: a second client's TCP connect succeeds (listen backlog) but nothing
 * ever answers, so silence within the timeout is reported as "taken".
 */
import net from 'node:net';
import { QemuError } from '../core/errors.js';

/** Largest `m` request QEMU 7.2 answers (its PacketSize is 0x1000 hex digits). */
export const GDB_MAX_READ = 2048;

export function gdbChecksum(data: string): number {
  let sum = 0;
  for (let i = 0; i < data.length; i++) sum = (sum + data.charCodeAt(i)) & 0xff;
  return sum;
}

/** Frames a command: escapes `$ # } *` and appends the checksum. */
export function encodePacket(data: string): string {
  let body = '';
  for (const ch of data) {
    if (ch === '$' || ch === '#' || ch === '}' || ch === '*') body += '}' + String.fromCharCode(ch.charCodeAt(0) ^ 0x20);
    else body += ch;
  }
  return `$${body}#${gdbChecksum(body).toString(16).padStart(2, '0')}`;
}

/**
 * Undoes `}` escapes and `X*n` run-length encoding (X repeated n−29 more
 * times) of a packet body whose checksum has been verified.
 */
export function decodePacketBody(body: string): string {
  let out = '';
  for (let i = 0; i < body.length; i++) {
    const ch = body[i]!;
    if (ch === '}' && i + 1 < body.length) {
      out += String.fromCharCode(body.charCodeAt(++i) ^ 0x20);
    } else if (ch === '*' && i + 1 < body.length && out.length > 0) {
      const repeat = body.charCodeAt(++i) - 29;
      if (repeat > 0 && repeat < 128) out += out[out.length - 1]!.repeat(repeat);
    } else out += ch;
  }
  return out;
}

export type GdbEvent = { type: 'ack' } | { type: 'nak' } | { type: 'packet'; data: string; checksumOk: boolean };

/** Incremental parser of the byte stream from the stub (pure: no sockets). */
export class GdbStreamParser {
  private state: 'idle' | 'body' | 'cs1' | 'cs2' = 'idle';
  private body = '';
  private cs = '';
  /** Bodies longer than this are garbage (a reply to a 2 KiB read is 4 KiB of hex). */
  static readonly MAX_BODY = 1 << 20;

  push(chunk: string): GdbEvent[] {
    const out: GdbEvent[] = [];
    for (let i = 0; i < chunk.length; i++) {
      const ch = chunk[i]!;
      switch (this.state) {
        case 'idle':
          if (ch === '+') out.push({ type: 'ack' });
          else if (ch === '-') out.push({ type: 'nak' });
          else if (ch === '$') {
            this.state = 'body';
            this.body = '';
          }
          // '%' notifications and noise outside packets are ignored.
          break;
        case 'body':
          if (ch === '#') this.state = 'cs1';
          else if (this.body.length >= GdbStreamParser.MAX_BODY) this.state = 'idle';
          else this.body += ch;
          break;
        case 'cs1':
          this.cs = ch;
          this.state = 'cs2';
          break;
        case 'cs2': {
          this.cs += ch;
          this.state = 'idle';
          const ok = Number.parseInt(this.cs, 16) === gdbChecksum(this.body);
          out.push({ type: 'packet', data: ok ? decodePacketBody(this.body) : '', checksumOk: ok });
          break;
        }
      }
    }
    return out;
  }
}

/** Decodes the hex payload of an `m` reply. */
export function hexToBytes(hex: string, dst: Uint8Array): boolean {
  if (hex.length !== dst.length * 2) return false;
  for (let i = 0; i < dst.length; i++) {
    const v = Number.parseInt(hex.substr(i * 2, 2), 16);
    if (Number.isNaN(v)) return false;
    dst[i] = v;
  }
  return true;
}

const isStopReply = (p: string) => /^[ST][0-9a-fA-F]{2}/.test(p) || p.startsWith('W') || p.startsWith('X');

export interface GdbConnectOptions {
  /** Milliseconds to wait for connect and each reply (default 3000). */
  timeoutMs?: number;
}

interface Waiter {
  accept: (p: string) => boolean;
  resolve: (p: string) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

export class GdbClient {
  private socket!: net.Socket;
  private parser = new GdbStreamParser();
  private waiter: Waiter | undefined;
  private ackWaiter: { resolve: (ok: boolean) => void } | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private closedError: Error | undefined;
  /** True while the guest runs (after `c`); reads need it stopped (all-stop). */
  running = false;
  features = '';
  physicalMode = false;

  private constructor(
    readonly endpoint: string,
    private readonly timeoutMs: number,
  ) {}

  /** True once the connection is gone (closed by QEMU, by us, or failed). */
  get closed(): boolean {
    return this.closedError !== undefined;
  }

  private get label(): string {
    return `gdbstub ${this.endpoint}`;
  }

  /** Connects, negotiates features, and (by default) switches to physical addresses. The guest is left stopped. */
  static async connect(endpoint: string, options: GdbConnectOptions & { physical?: boolean } = {}): Promise<GdbClient> {
    const client = new GdbClient(endpoint, options.timeoutMs ?? 3000);
    await client.open();
    try {
      client.features = await client.command('qSupported:multiprocess+;swbreak+;hwbreak+', (p) => !isStopReply(p), {
        silence: 'no reply to qSupported: another debugger is probably attached (QEMU\'s gdbstub takes one client at a time)',
      });
      if (options.physical !== false) {
        const r = await client.command('Qqemu.PhyMemMode:1', (p) => !isStopReply(p));
        if (r !== 'OK') throw new QemuError(client.label, `Qqemu.PhyMemMode:1 refused (${JSON.stringify(r)})`, { hint: 'this QEMU cannot read physical memory over gdb' });
        client.physicalMode = true;
      }
    } catch (err) {
      client.destroy();
      throw err;
    }
    return client;
  }

  private open(): Promise<void> {
    const { host, port } = parseGdbEndpoint(this.endpoint);
    return new Promise((resolve, reject) => {
      const socket = net.createConnection({ host, port });
      this.socket = socket;
      socket.setNoDelay(true);
      socket.setEncoding('latin1');
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new QemuError(this.label, `no TCP connection within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve();
      });
      socket.on('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        const e =
          err.code === 'ECONNREFUSED'
            ? new QemuError(this.label, 'connection refused', { hint: 'is QEMU running with -gdb tcp:HOST:PORT?', cause: err })
            : new QemuError(this.label, `${err.code ?? 'socket error'}: ${err.message}`, { cause: err });
        reject(e);
        this.shutdown(e);
      });
      socket.on('close', () => this.shutdown(new QemuError(this.label, 'connection closed by QEMU', { hint: 'another debugger attached, or the guest exited' })));
      socket.on('data', (chunk: string) => this.onData(chunk));
    });
  }

  private onData(chunk: string): void {
    for (const ev of this.parser.push(chunk)) {
      if (ev.type === 'ack' || ev.type === 'nak') {
        const w = this.ackWaiter;
        this.ackWaiter = undefined;
        w?.resolve(ev.type === 'ack');
        continue;
      }
      if (!ev.checksumOk) {
        this.socket.write('-');
        continue;
      }
      this.socket.write('+');
      const w = this.waiter;
      if (w && w.accept(ev.data)) {
        this.waiter = undefined;
        clearTimeout(w.timer);
        w.resolve(ev.data);
      }
      // Otherwise: an unsolicited stop reply (QEMU sends one on connect) or a stray packet; dropped.
    }
  }

  private shutdown(err: Error): void {
    if (this.closedError) return;
    this.closedError = err;
    if (this.waiter) {
      clearTimeout(this.waiter.timer);
      this.waiter.reject(err);
      this.waiter = undefined;
    }
    this.ackWaiter?.resolve(false);
    this.ackWaiter = undefined;
  }

  /** Serializes one exchange after the previous ones. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.queue.then(fn, fn);
    this.queue = p.catch(() => undefined);
    return p;
  }

  private sendPacket(data: string): Promise<void> {
    const framed = encodePacket(data);
    return (async () => {
      // Bounded retransmission on '-'.
      for (let attempt = 0; attempt < 4; attempt++) {
        if (this.closedError) throw this.closedError;
        const acked = new Promise<boolean>((resolve) => (this.ackWaiter = { resolve }));
        this.socket.write(framed);
        const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), this.timeoutMs).unref());
        const res = await Promise.race([acked, timeout]);
        if (res === true) return;
        if (res === 'timeout') {
          this.ackWaiter = undefined;
          throw new QemuError(this.label, `no acknowledgement for '${data.slice(0, 20)}' within ${this.timeoutMs} ms`, {
            hint: "another debugger is probably attached (QEMU's gdbstub takes one client at a time)",
          });
        }
        if (this.closedError) throw this.closedError;
      }
      throw new QemuError(this.label, `stub kept rejecting packet '${data.slice(0, 20)}'`);
    })();
  }

  private waitPacket(accept: (p: string) => boolean, silence?: string): Promise<string> {
    if (this.closedError) return Promise.reject(this.closedError);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        reject(new QemuError(this.label, silence ?? `no reply within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.waiter = { accept, resolve, reject, timer };
    });
  }

  /** Sends a packet and returns the first reply `accept` takes. */
  command(data: string, accept: (p: string) => boolean = () => true, opts: { silence?: string } = {}): Promise<string> {
    return this.serial(async () => {
      const reply = this.waitPacket(accept, opts.silence);
      reply.catch(() => undefined);
      try {
        await this.sendPacket(data);
      } catch (err) {
        if (this.waiter) {
          clearTimeout(this.waiter.timer);
          this.waiter = undefined;
        }
        throw err;
      }
      return reply;
    });
  }

  /** Reads guest memory (physical when `physicalMode`), splitting into 2 KiB requests. */
  async readMemory(addr: number | bigint, dst: Uint8Array): Promise<void> {
    if (this.running) throw new QemuError(this.label, 'guest is running: stop it before reading (all-stop stub)');
    const base = BigInt(addr);
    for (let done = 0; done < dst.length; done += GDB_MAX_READ) {
      const n = Math.min(GDB_MAX_READ, dst.length - done);
      const at = base + BigInt(done);
      const reply = await this.command(`m${at.toString(16)},${n.toString(16)}`, (p) => !isStopReply(p));
      if (/^E[0-9a-fA-F]{2}$/.test(reply) || reply === '') {
        throw new QemuError(this.label, `read of ${n} bytes at 0x${at.toString(16)} failed (${reply || 'empty reply'})`);
      }
      if (!hexToBytes(reply, dst.subarray(done, done + n))) {
        throw new QemuError(this.label, `malformed reply to read at 0x${at.toString(16)}: ${reply.length} hex digits for ${n} bytes`);
      }
    }
  }

  /** Resumes the guest (`c`). The stub answers only when the guest stops again. */
  resume(): Promise<void> {
    return this.serial(async () => {
      if (this.running) return;
      await this.sendPacket('c');
      this.running = true;
    });
  }

  /** Stops a running guest (0x03) and waits for its stop reply. */
  stop(): Promise<void> {
    return this.serial(async () => {
      if (!this.running) return;
      if (this.closedError) throw this.closedError;
      const reply = this.waitPacket(isStopReply, 'no stop reply after interrupt');
      this.socket.write('\x03');
      await reply;
      this.running = false;
    });
  }

  /** Detaches (`D;1`, which also resumes the guest) and closes the connection. Idempotent. */
  async detach(): Promise<void> {
    if (this.closedError) return;
    try {
      if (this.running) await this.stop();
      // Older stubs without multiprocess answer plain 'D'.
      const r = await this.command(this.features.includes('multiprocess+') ? 'D;1' : 'D', (p) => !isStopReply(p));
      if (r !== 'OK') await this.command('D', (p) => !isStopReply(p)).catch(() => undefined);
    } catch {
      // The guest may already be gone; nothing more to do than close.
    } finally {
      this.destroy();
    }
  }

  private destroy(): void {
    this.shutdown(new QemuError(this.label, 'client closed'));
    this.socket?.destroy();
  }
}

export function parseGdbEndpoint(endpoint: string): { host: string; port: number } {
  const rest = endpoint.replace(/^(gdb:|tcp:)/, '').replace(/^\/\//, '');
  const i = rest.lastIndexOf(':');
  const port = Number(rest.slice(i + 1));
  if (i < 0 || !Number.isInteger(port) || port <= 0 || port > 65535) {
    throw new QemuError(`gdbstub ${endpoint}`, 'expected HOST:PORT');
  }
  return { host: rest.slice(0, i) || '127.0.0.1', port };
}
