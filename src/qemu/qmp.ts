/**
 * A QMP (QEMU Machine Protocol) client: newline-delimited JSON over a unix or
 * TCP socket. Handles the greeting and capabilities negotiation, matches
 * replies to commands by id, queues events, and turns every failure into a
 * QemuError that names the socket.
 */
import { EventEmitter } from 'node:events';
import net from 'node:net';
import { QemuError } from '../core/errors.js';

export interface QmpEvent {
  event: string;
  data?: Record<string, unknown>;
  timestamp?: { seconds: number; microseconds: number };
}

export interface QmpGreeting {
  version: { qemu: { major: number; minor: number; micro: number }; package?: string };
  capabilities: string[];
}

export interface QmpConnectOptions {
  /** Milliseconds to wait for connect + greeting (default 5000). */
  timeoutMs?: number;
}

/** `unix:/path`, `tcp:host:port`, or a plain socket path. */
export type QmpEndpoint = string;

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  command: string;
  timer: NodeJS.Timeout | undefined;
}

/**
 * What vmsight asks of a QEMU monitor: a QMP socket (QmpClient) or a passthrough such as libvirt's
 * `virsh qemu-monitor-command` (qemu/libvirt.ts).
 */
export interface QemuMonitor {
  readonly endpoint: string;
  readonly closed: boolean;
  readonly greeting?: QmpGreeting;
  execute<T = unknown>(command: string, args?: Record<string, unknown>, timeoutMs?: number): Promise<T>;
  hmp(commandLine: string, timeoutMs?: number): Promise<string>;
}

export class QmpClient extends EventEmitter implements QemuMonitor {
  readonly endpoint: string;
  greeting!: QmpGreeting;
  private socket!: net.Socket;
  private buffer = '';
  private nextId = 1;
  private pending = new Map<string, Pending>();
  private closedError: Error | undefined;
  /** Events received so far that nobody consumed with `waitEvent`. */
  readonly events: QmpEvent[] = [];

  private constructor(endpoint: string) {
    super();
    this.endpoint = endpoint;
  }

  static async connect(endpoint: QmpEndpoint, options: QmpConnectOptions = {}): Promise<QmpClient> {
    const client = new QmpClient(endpoint);
    await client.open(options.timeoutMs ?? 5000);
    return client;
  }

  private open(timeoutMs: number): Promise<void> {
    const label = `QMP ${this.endpoint}`;
    return new Promise<void>((resolve, reject) => {
      const { path, host, port } = parseEndpoint(this.endpoint);
      const socket = path ? net.createConnection({ path }) : net.createConnection({ host: host!, port: port! });
      this.socket = socket;
      let phase: 'greeting' | 'capabilities' | 'ready' = 'greeting';
      const timer = setTimeout(() => {
        socket.destroy();
        reject(
          new QemuError(label, `no QMP greeting within ${timeoutMs} ms`, {
            hint: 'is another client holding this QMP socket, or is this not a QMP socket?',
          }),
        );
      }, timeoutMs);
      const fail = (err: Error) => {
        clearTimeout(timer);
        reject(err);
      };
      socket.setEncoding('utf8');
      socket.on('error', (err: NodeJS.ErrnoException) => {
        const e = socketError(label, err);
        if (phase !== 'ready') fail(e);
        this.shutdown(e);
      });
      socket.on('close', () => {
        const e = new QemuError(label, 'connection closed by QEMU', { hint: 'did the guest exit?' });
        if (phase !== 'ready') fail(e);
        this.shutdown(e);
      });
      socket.on('data', (chunk: string) => {
        this.buffer += chunk;
        let nl: number;
        while ((nl = this.buffer.indexOf('\n')) >= 0) {
          const line = this.buffer.slice(0, nl).trim();
          this.buffer = this.buffer.slice(nl + 1);
          if (!line) continue;
          let msg: Record<string, unknown>;
          try {
            msg = JSON.parse(line) as Record<string, unknown>;
          } catch {
            const e = new QemuError(label, `peer does not speak QMP (got ${JSON.stringify(line.slice(0, 40))})`, {
              hint: 'point vmsight at the socket given to QEMU with -qmp',
            });
            socket.destroy();
            if (phase !== 'ready') fail(e);
            this.shutdown(e);
            return;
          }
          if (phase === 'greeting') {
            if (!msg['QMP']) {
              const e = new QemuError(label, 'peer sent JSON but no QMP greeting', {
                hint: 'point vmsight at the socket given to QEMU with -qmp',
              });
              socket.destroy();
              fail(e);
              return;
            }
            this.greeting = msg['QMP'] as QmpGreeting;
            phase = 'capabilities';
            this.send('qmp_capabilities', undefined, timeoutMs).then(
              () => {
                phase = 'ready';
                clearTimeout(timer);
                resolve();
              },
              fail,
            );
            continue;
          }
          this.dispatch(msg);
        }
      });
    });
  }

  private dispatch(msg: Record<string, unknown>): void {
    if (typeof msg['event'] === 'string') {
      const ev = msg as unknown as QmpEvent;
      this.events.push(ev);
      if (this.events.length > 1000) this.events.shift();
      this.emit('event', ev);
      return;
    }
    const id = msg['id'] as string | undefined;
    if (id === undefined) return;
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    if (p.timer) clearTimeout(p.timer);
    if ('error' in msg) {
      const err = msg['error'] as { class?: string; desc?: string };
      p.reject(
        new QemuError(`QMP ${this.endpoint}`, `${p.command} failed: ${err.desc ?? 'unknown error'}`, {
          ...(err.class ? { errorClass: err.class } : {}),
        }),
      );
    } else {
      p.resolve(msg['return']);
    }
  }

  private shutdown(err: Error): void {
    if (this.closedError) return;
    this.closedError = err;
    for (const p of this.pending.values()) {
      if (p.timer) clearTimeout(p.timer);
      p.reject(err);
    }
    this.pending.clear();
    this.emit('close', err);
  }

  private send(command: string, args: Record<string, unknown> | undefined, timeoutMs: number): Promise<unknown> {
    if (this.closedError) return Promise.reject(this.closedError);
    const id = `v${this.nextId++}`;
    return new Promise((resolve, reject) => {
      const timer =
        timeoutMs > 0
          ? setTimeout(() => {
              this.pending.delete(id);
              reject(new QemuError(`QMP ${this.endpoint}`, `${command} did not answer within ${timeoutMs} ms`));
            }, timeoutMs)
          : undefined;
      this.pending.set(id, { resolve, reject, command, timer });
      this.socket.write(JSON.stringify(args ? { execute: command, arguments: args, id } : { execute: command, id }) + '\n');
    });
  }

  /** Runs a QMP command and returns its `return` value. `timeoutMs` 0 waits forever. */
  execute<T = unknown>(command: string, args?: Record<string, unknown>, timeoutMs = 30_000): Promise<T> {
    return this.send(command, args, timeoutMs) as Promise<T>;
  }

  /** Runs a human monitor (HMP) command line and returns its text output. */
  hmp(commandLine: string, timeoutMs = 30_000): Promise<string> {
    return this.execute<string>('human-monitor-command', { 'command-line': commandLine }, timeoutMs);
  }

  /** Resolves with the next event named `name` (or an already queued one). */
  waitEvent(name: string, timeoutMs = 30_000, predicate: (e: QmpEvent) => boolean = () => true): Promise<QmpEvent> {
    const queued = this.events.findIndex((e) => e.event === name && predicate(e));
    if (queued >= 0) return Promise.resolve(this.events.splice(queued, 1)[0]!);
    return new Promise((resolve, reject) => {
      const onEvent = (e: QmpEvent) => {
        if (e.event !== name || !predicate(e)) return;
        const i = this.events.indexOf(e);
        if (i >= 0) this.events.splice(i, 1);
        cleanup();
        resolve(e);
      };
      const onClose = (err: Error) => {
        cleanup();
        reject(err);
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new QemuError(`QMP ${this.endpoint}`, `no ${name} event within ${timeoutMs} ms`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.off('event', onEvent);
        this.off('close', onClose);
      };
      this.on('event', onEvent);
      this.on('close', onClose);
    });
  }

  get closed(): boolean {
    return this.closedError !== undefined;
  }

  async close(): Promise<void> {
    if (this.closedError) return;
    this.shutdown(new QemuError(`QMP ${this.endpoint}`, 'client closed'));
    await new Promise<void>((resolve) => {
      this.socket.end(() => resolve());
      setTimeout(resolve, 200).unref();
    });
    this.socket.destroy();
  }
}

function parseEndpoint(endpoint: string): { path?: string; host?: string; port?: number } {
  if (endpoint.startsWith('tcp:')) {
    const rest = endpoint.slice(4);
    const i = rest.lastIndexOf(':');
    return { host: rest.slice(0, i) || '127.0.0.1', port: Number(rest.slice(i + 1)) };
  }
  return { path: endpoint.startsWith('unix:') ? endpoint.slice(5) : endpoint };
}

function socketError(label: string, err: NodeJS.ErrnoException): QemuError {
  switch (err.code) {
    case 'ENOENT':
      return new QemuError(label, 'no such socket', { hint: 'check the path given to QEMU with -qmp', cause: err });
    case 'ECONNREFUSED':
      return new QemuError(label, 'connection refused', {
        hint: 'QEMU is not listening there (exited, or the socket file is stale)',
        cause: err,
      });
    case 'EACCES':
      return new QemuError(label, 'permission denied', {
        hint: 'run as the user that owns the QEMU process, or as root',
        cause: err,
      });
    default:
      return new QemuError(label, `${err.code ?? 'socket error'}: ${err.message}`, { cause: err });
  }
}
