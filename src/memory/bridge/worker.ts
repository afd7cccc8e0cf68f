/**
 * The bridge worker: loads a backend module, answers synchronous read
 * requests (reply on the sync port, then wake the blocked main thread through
 * the control word) and asynchronous calls (reply on parentPort).
 */
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import {
  type AsyncBackend,
  type BackendModule,
  CTRL_STATE,
  STATE_DEAD,
  STATE_DONE,
  serializeError,
  type SyncReply,
  type SyncRequest,
} from './protocol.js';

interface WorkerInit {
  module: string;
  params: unknown;
  ctrl: SharedArrayBuffer;
  syncPort: MessagePort;
}

const init = workerData as WorkerInit;
const ctrl = new Int32Array(init.ctrl);
const port = parentPort!;

function wake(state: number): void {
  Atomics.store(ctrl, CTRL_STATE, state);
  Atomics.notify(ctrl, CTRL_STATE);
}

// Whatever ends this thread, a blocked main thread must not wait for a reply.
process.on('exit', () => wake(STATE_DEAD));
process.on('uncaughtException', (err) => {
  port.postMessage({ fatal: serializeError(err) });
  wake(STATE_DEAD);
  process.exit(1);
});

let backend: AsyncBackend;
try {
  const mod = (await import(init.module)) as BackendModule;
  backend = await mod.createBackend(init.params);
  port.postMessage({ ready: true });
} catch (err) {
  port.postMessage({ ready: false, error: serializeError(err) });
  process.exit(0);
}

init.syncPort.on('message', async (req: SyncRequest) => {
  let reply: SyncReply;
  const transfer: ArrayBuffer[] = [];
  try {
    if (req.call !== undefined) {
      if (req.call === 'close') await backend.close();
      else await backend.call?.(req.call, undefined);
      init.syncPort.postMessage({ seq: req.seq, data: new Uint8Array(0), failures: [] });
      wake(STATE_DONE);
      return;
    }
    const res = await backend.readv(req.ops);
    reply = { seq: req.seq, data: res.data, failures: res.failures };
    if (res.data.byteOffset === 0 && res.data.byteLength === res.data.buffer.byteLength && res.data.buffer instanceof ArrayBuffer) {
      transfer.push(res.data.buffer);
    }
  } catch (err) {
    reply = { seq: req.seq, error: serializeError(err) };
  }
  init.syncPort.postMessage(reply, transfer);
  wake(STATE_DONE);
});

port.on('message', async (msg: { id: number; method: string; arg: unknown }) => {
  try {
    let result: unknown;
    if (msg.method === 'close') {
      await backend.close();
      result = undefined;
    } else if (backend.call) result = await backend.call(msg.method, msg.arg);
    else throw new Error(`backend has no method ${msg.method}`);
    port.postMessage({ id: msg.id, result });
  } catch (err) {
    port.postMessage({ id: msg.id, error: serializeError(err) });
  }
  if (msg.method === 'close') {
    init.syncPort.close();
    port.close();
  }
});
