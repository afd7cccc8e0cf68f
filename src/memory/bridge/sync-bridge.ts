/**
 * Makes an asynchronous transport (gdbstub, QMP) readable through the
 * synchronous `PhysicalMemory.readv`: a worker thread runs the async client;
 * the main thread posts a batch and blocks in `Atomics.wait` on a
 * SharedArrayBuffer until the worker has posted the bytes and the failure
 * list, which the main thread then takes with `receiveMessageOnPort`.
 * A timeout or the worker's death is a SourceError, never a hang.
 */
import { MessageChannel, type MessagePort, receiveMessageOnPort, Worker } from 'node:worker_threads';
import { SourceError } from '../../core/errors.js';
import type { ReadFailure, ReadOp } from '../types.js';
import {
  type BackendReadOp,
  CTRL_STATE,
  type SerializedError,
  siblingModule,
  STATE_DEAD,
  STATE_DONE,
  STATE_PENDING,
  type SyncReply,
} from './protocol.js';

export interface SyncBridgeOptions {
  /** Technique name and target, for error messages. */
  technique: string;
  target: string;
  /** Milliseconds one synchronous batch may take (default 15000). */
  timeoutMs?: number;
  /** Milliseconds the backend may take to start (default 15000). */
  startTimeoutMs?: number;
  /** Largest number of bytes posted per round trip; bigger batches are split (default 16 MiB). */
  maxBatchBytes?: number;
}

/**
 * The worker entry: compiled `worker.js` next to this module (dist/), or,
 * when running from TypeScript sources under tsx, a tiny bootstrap that
 * registers tsx's loader in the worker thread (loader hooks are per thread)
 * and then imports `worker.ts`.
 */
function workerEntry(): [string | URL, { eval?: boolean; execArgv: string[] }] {
  const entry = siblingModule(import.meta.url, 'worker');
  // Workers inherit the parent's flags; --input-type (from `node -e`) is refused for file entries.
  const execArgv = process.execArgv.filter((a) => !a.startsWith('--input-type'));
  if (!entry.pathname.endsWith('.ts')) return [entry, { execArgv }];
  let tsx: string;
  try {
    tsx = import.meta.resolve('tsx/esm/api');
  } catch {
    throw new SourceError('bridge', entry.pathname, 'running from TypeScript sources needs the tsx package', { hint: 'build with `npm run build` or install tsx' });
  }
  const code = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry.href)}); })`;
  return [code, { eval: true, execArgv }];
}

interface PendingCall {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

export class SyncBridge {
  private readonly ctrl: Int32Array;
  private readonly syncPort: MessagePort;
  private seq = 0;
  private nextCall = 1;
  private calls = new Map<number, PendingCall>();
  private broken: SourceError | undefined;
  private readonly timeoutMs: number;
  private readonly maxBatch: number;
  /** Round trips made (for benchmarks). */
  roundTrips = 0;

  private constructor(
    private readonly worker: Worker,
    ctrl: SharedArrayBuffer,
    syncPort: MessagePort,
    private readonly opts: SyncBridgeOptions,
  ) {
    this.ctrl = new Int32Array(ctrl);
    this.syncPort = syncPort;
    this.timeoutMs = opts.timeoutMs ?? 15_000;
    this.maxBatch = opts.maxBatchBytes ?? 16 << 20;
  }

  /**
   * Starts a worker that imports `backendModule` (a URL; see siblingModule)
   * and calls its `createBackend(params)`.
   */
  static start(backendModule: URL, params: unknown, opts: SyncBridgeOptions): Promise<SyncBridge> {
    const ctrl = new SharedArrayBuffer(8);
    const { port1, port2 } = new MessageChannel();
    const [entry, extra] = workerEntry();
    const worker = new Worker(entry, {
      ...extra,
      workerData: { module: backendModule.href, params, ctrl, syncPort: port2 },
      transferList: [port2],
    });
    worker.unref();
    const bridge = new SyncBridge(worker, ctrl, port1, opts);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        void worker.terminate();
        reject(bridge.error(`backend did not start within ${opts.startTimeoutMs ?? 15_000} ms`));
      }, opts.startTimeoutMs ?? 15_000);
      const onMessage = (msg: { ready?: boolean; error?: SerializedError; id?: number; result?: unknown; fatal?: SerializedError }) => {
        if (msg.ready === true) {
          clearTimeout(timer);
          resolve(bridge);
        } else if (msg.ready === false) {
          clearTimeout(timer);
          reject(bridge.fromWorker(msg.error!));
        } else bridge.onMessage(msg);
      };
      worker.on('message', onMessage);
      worker.on('error', (err) => {
        clearTimeout(timer);
        const e = bridge.error(`bridge worker failed: ${err.message}`, err);
        bridge.fail(e);
        reject(e);
      });
      worker.on('exit', (code) => {
        clearTimeout(timer);
        const e = bridge.error(`bridge worker exited (code ${code})`);
        bridge.fail(e);
        reject(e);
      });
    });
  }

  private error(message: string, cause?: unknown): SourceError {
    return new SourceError(this.opts.technique, this.opts.target, message, cause === undefined ? {} : { cause });
  }

  private fromWorker(e: SerializedError): SourceError {
    return new SourceError(this.opts.technique, this.opts.target, e.message, e.hint === undefined ? {} : { hint: e.hint });
  }

  private fail(e: SourceError): void {
    this.broken ??= e;
    for (const c of this.calls.values()) c.reject(e);
    this.calls.clear();
  }

  private onMessage(msg: { id?: number; result?: unknown; error?: SerializedError; fatal?: SerializedError }): void {
    if (msg.fatal) {
      this.fail(this.fromWorker(msg.fatal));
      return;
    }
    if (msg.id === undefined) return;
    const c = this.calls.get(msg.id);
    if (!c) return;
    this.calls.delete(msg.id);
    if (msg.error) c.reject(this.fromWorker(msg.error));
    else c.resolve(msg.result);
  }

  /** Runs a named async backend operation (not blocking the main thread). */
  call<T = unknown>(method: string, arg?: unknown): Promise<T> {
    if (this.broken) return Promise.reject(this.broken);
    const id = this.nextCall++;
    // Keep the process alive while a call is outstanding; an idle bridge must not.
    this.worker.ref();
    const done = () => {
      if (this.calls.size === 0) this.worker.unref();
    };
    return new Promise<T>((resolve, reject) => {
      this.calls.set(id, {
        resolve: (v) => {
          resolve(v as T);
          done();
        },
        reject: (e) => {
          reject(e);
          done();
        },
      });
      this.worker.postMessage({ id, method, arg });
    });
  }

  /** Synchronous batched read: blocks until the worker answers, times out, or dies. */
  readv(ops: ReadOp[]): ReadFailure[] {
    const failures: ReadFailure[] = [];
    let start = 0;
    while (start < ops.length) {
      let bytes = 0;
      let end = start;
      while (end < ops.length && (end === start || bytes + ops[end]!.len <= this.maxBatch)) bytes += ops[end++]!.len;
      this.roundTrip(ops.slice(start, end), failures);
      start = end;
    }
    return failures;
  }

  /**
   * Runs a backend method and blocks until it is done or `timeoutMs` passed: for exit paths ('exit' handlers,
   * signals) where nothing asynchronous runs any more. Best effort: failures are swallowed.
   */
  callSync(method: string, timeoutMs = 2000): void {
    if (this.broken) return;
    try {
      this.roundTrip([], [], method, timeoutMs);
    } catch {
      // the backend is gone: nothing more to do
    }
  }

  private roundTrip(ops: ReadOp[], failures: ReadFailure[], call?: string, timeoutMs = this.timeoutMs): void {
    if (this.broken) throw this.broken;
    const req: BackendReadOp[] = ops.map((o) => ({ addr: o.addr, len: o.len }));
    const seq = ++this.seq;
    Atomics.store(this.ctrl, CTRL_STATE, STATE_PENDING);
    this.syncPort.postMessage(call === undefined ? { seq, ops: req } : { seq, ops: req, call });
    this.roundTrips++;
    const deadline = Date.now() + timeoutMs;
    let reply: SyncReply | undefined;
    // Bounded by the deadline: each wait is at most the remaining time.
    for (;;) {
      const state = Atomics.load(this.ctrl, CTRL_STATE);
      if (state === STATE_DONE) {
        const m = receiveMessageOnPort(this.syncPort);
        if (m) {
          reply = m.message as SyncReply;
          if (reply.seq === seq) break;
          reply = undefined; // a late reply to a timed-out request; keep waiting
          Atomics.store(this.ctrl, CTRL_STATE, STATE_PENDING);
          continue;
        }
      } else if (state === STATE_DEAD) {
        const e = this.error('bridge worker died during a read');
        this.fail(e);
        throw e;
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        const e = this.error(`${call ?? `read of ${ops.length} range(s)`} did not complete within ${timeoutMs} ms`);
        this.fail(e);
        void this.worker.terminate();
        throw e;
      }
      Atomics.wait(this.ctrl, CTRL_STATE, state === STATE_DONE ? STATE_DONE : STATE_PENDING, Math.min(left, 50));
    }
    if (reply.error) throw this.fromWorker(reply.error);
    const data = reply.data!;
    let off = 0;
    for (const op of ops) {
      const dst = op.dst ?? (op.dst = new Uint8Array(op.len));
      dst.set(data.subarray(off, off + Math.min(op.len, dst.length)));
      off += op.len;
    }
    for (const f of reply.failures ?? []) failures.push(f);
  }

  /** True once the bridge failed (a read timed out, the worker died) or was closed. */
  get isBroken(): boolean {
    return this.broken !== undefined;
  }

  /** Closes the backend and ends the worker. Idempotent. */
  async close(): Promise<void> {
    if (!this.broken) {
      try {
        await Promise.race([this.call('close'), new Promise((r) => setTimeout(r, 5000).unref())]);
      } catch {
        // already broken: terminate below
      }
      this.fail(this.error('closed'));
    }
    this.syncPort.close();
    await this.worker.terminate();
  }
}
