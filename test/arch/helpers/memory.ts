/**
 * A PhysicalMemory over a byte array, for unit tests: optionally "mapped"
 * (zero-copy views, like the live-map source) and with holes, counting the
 * readv calls so tests can check batching.
 */
import type { PhysicalMemory, PhysRange, ReadFailure, ReadOp, SourceHints } from '../../../src/memory/types.js';
import { gpa } from '../../../src/core/address.js';

export interface TestMemory extends PhysicalMemory {
  readonly bytes: Uint8Array;
  /** readv calls and ops seen. */
  readonly calls: { readv: number; ops: number };
  /** Starts a new pass (bumps the generation), like refresh() on a live source. */
  bump(): void;
}

export interface TestMemoryOptions {
  mapped?: boolean;
  ranges?: PhysRange[];
  hints?: SourceHints;
}

export function testMemory(bytes: Uint8Array, options: TestMemoryOptions = {}): TestMemory {
  const ranges = options.ranges ?? [{ start: gpa(0), end: gpa(bytes.length), name: 'ram' }];
  let generation = 0;
  let closed = false;
  const calls = { readv: 0, ops: 0 };
  const backed = (a: number): boolean => ranges.some((r) => a >= r.start && a < r.end);
  const mem: TestMemory = {
    bytes,
    calls,
    technique: {
      class: options.mapped ? 'live-map' : 'file',
      name: options.mapped ? 'test-mapped' : 'test-copy',
      live: true,
      haltsGuest: false,
      zeroCopy: !!options.mapped,
    },
    target: 'test-memory',
    size: ranges.length ? ranges[ranges.length - 1]!.end : 0,
    get generation() {
      return generation;
    },
    ranges: () => ranges,
    readv(ops: ReadOp[]): ReadFailure[] {
      if (closed) throw new Error('test memory: read after close');
      calls.readv++;
      calls.ops += ops.length;
      const failures: ReadFailure[] = [];
      for (const op of ops) {
        const dst = (op.dst ??= new Uint8Array(op.len));
        if (ranges.some((r) => op.addr >= r.start && op.addr + op.len <= Math.min(r.end, bytes.length))) {
          dst.set(bytes.subarray(op.addr, op.addr + op.len));
          continue;
        }
        let failStart = -1;
        for (let i = 0; i < op.len; i++) {
          const a = op.addr + i;
          if (backed(a) && a < bytes.length) {
            if (failStart >= 0) {
              failures.push({ addr: gpa(op.addr + failStart), len: i - failStart, reason: 'hole' });
              failStart = -1;
            }
            dst[i] = bytes[a]!;
          } else {
            dst[i] = 0;
            if (failStart < 0) failStart = i;
          }
        }
        if (failStart >= 0) failures.push({ addr: gpa(op.addr + failStart), len: op.len - failStart, reason: 'hole' });
      }
      return failures;
    },
    bump() {
      generation++;
    },
    async close() {
      closed = true;
    },
  };
  if (options.mapped) {
    const views = ranges.map((r) => ({ start: r.start, bytes: bytes.subarray(r.start, Math.min(r.end, bytes.length)) }));
    (mem as { mapped?: PhysicalMemory['mapped'] }).mapped = () => (closed ? [] : views);
  }
  if (options.hints) (mem as { hints?: PhysicalMemory['hints'] }).hints = async () => options.hints!;
  return mem;
}
