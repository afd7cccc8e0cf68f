/** A fake async backend for the bridge tests: memory is i & 0xff; 'hang' and 'die' misbehave on purpose. */
import type { AsyncBackend, BackendReadOp } from '../../../../src/memory/bridge/protocol.js';
import type { ReadFailure } from '../../../../src/memory/types.js';
import { gpa } from '../../../../src/core/address.js';

export async function createBackend(params: unknown): Promise<AsyncBackend> {
  const p = params as { size: number; failStart?: boolean };
  if (p.failStart) throw new Error('fake backend refused to start');
  let mode = 'ok';
  return {
    async readv(ops: BackendReadOp[]) {
      if (mode === 'hang') await new Promise(() => undefined);
      if (mode === 'die') process.exit(3);
      await new Promise((r) => setTimeout(r, 1)); // really asynchronous
      let total = 0;
      for (const op of ops) total += op.len;
      const data = new Uint8Array(total);
      const failures: ReadFailure[] = [];
      let off = 0;
      for (const op of ops) {
        for (let i = 0; i < op.len; i++) if (op.addr + i < p.size) data[off + i] = (op.addr + i) & 0xff;
        if (op.addr + op.len > p.size) failures.push({ addr: gpa(Math.max(op.addr, p.size)), len: op.addr + op.len - Math.max(op.addr, p.size), reason: 'beyond fake memory' });
        off += op.len;
      }
      return { data, failures };
    },
    async call(method: string, arg: unknown) {
      if (method === 'mode') mode = String(arg);
      return method === 'echo' ? arg : mode;
    },
    async close() {},
  };
}
