/** An in-memory PhysicalMemory for wrapper tests: counts reads, can change bytes, bumps generation on refresh. */
import type { PhysicalMemory, ReadFailure, ReadOp } from '../../../src/memory/types.js';
import { gpa } from '../../../src/core/address.js';

export class FakeMemory implements PhysicalMemory {
  readonly technique = { class: 'live-read', name: 'fake', live: true, haltsGuest: false, zeroCopy: false } as const;
  readonly target = 'fake:';
  generation = 0;
  readonly bytes: Uint8Array;
  /** Every op the wrapper passed down. */
  readonly reads: Array<{ addr: number; len: number }> = [];
  closed = 0;
  refreshed = 0;
  constructor(
    readonly size: number,
    /** Addresses at or above this are holes. */
    readonly backedEnd = size,
  ) {
    this.bytes = new Uint8Array(size);
    for (let i = 0; i < size; i++) this.bytes[i] = (i * 13 + 7) & 0xff;
  }
  ranges() {
    return [{ start: gpa(0), end: gpa(this.backedEnd) }];
  }
  readv(ops: ReadOp[]): ReadFailure[] {
    const failures: ReadFailure[] = [];
    for (const op of ops) {
      this.reads.push({ addr: op.addr, len: op.len });
      const dst = (op.dst ??= new Uint8Array(Math.max(0, op.len)));
      if (op.addr < 0 || op.len < 0) {
        failures.push({ addr: op.addr, len: op.len, reason: 'invalid' });
        continue;
      }
      const end = Math.min(op.addr + op.len, this.backedEnd);
      if (end > op.addr) dst.set(this.bytes.subarray(op.addr, end), 0);
      if (op.addr + op.len > end) {
        const from = Math.max(op.addr, end);
        dst.fill(0, from - op.addr, op.len);
        failures.push({ addr: gpa(from), len: op.addr + op.len - from, reason: 'not RAM' });
      }
    }
    return failures;
  }
  async refresh(): Promise<void> {
    this.refreshed++;
    this.generation++;
  }
  async close(): Promise<void> {
    this.closed++;
  }
}
