import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { scanBashHistory } from '../../src/linux/bash-history.js';

const BASE = 0x5555_5555_9000n;

/** A heap image with HIST_ENTRY { line, timestamp, data } structs laid out as readline allocates them. */
function heap(entries: { at: number; line: string; lineAt: number; stamp: string; stampAt: number }[], size = 0x4000): Uint8Array {
  const b = new Uint8Array(size);
  const dv = new DataView(b.buffer);
  for (const e of entries) {
    b.set(Buffer.from(e.line + '\0'), e.lineAt);
    b.set(Buffer.from(e.stamp + '\0'), e.stampAt);
    dv.setBigUint64(e.at, BASE + BigInt(e.lineAt), true);
    dv.setBigUint64(e.at + 8, BASE + BigInt(e.stampAt), true);
  }
  return b;
}

describe('bash history scan', () => {
  test('entries found through their timestamp strings, in time order', () => {
    const h = heap([
      { at: 0x100, line: 'cat /etc/passwd', lineAt: 0x200, stamp: '#1764630000', stampAt: 0x300 },
      { at: 0x120, line: 'echo hello', lineAt: 0x400, stamp: '#1764620000', stampAt: 0x500 },
    ]);
    assert.deepEqual(scanBashHistory(h, BASE), [
      { address: BASE + 0x120n, time: 1764620000n, command: 'echo hello' },
      { address: BASE + 0x100n, time: 1764630000n, command: 'cat /etc/passwd' },
    ]);
  });

  test('entries of the same second keep the order of the history array, not of the heap', () => {
    const h = heap([
      { at: 0x100, line: 'third', lineAt: 0x200, stamp: '#1764630000', stampAt: 0x300 },
      { at: 0x120, line: 'first', lineAt: 0x400, stamp: '#1764630000', stampAt: 0x500 },
      { at: 0x140, line: 'second', lineAt: 0x600, stamp: '#1764630000', stampAt: 0x700 },
    ]);
    const dv = new DataView(h.buffer);
    [0x120, 0x140, 0x100].forEach((e, i) => dv.setBigUint64(0x1000 + i * 8, BASE + BigInt(e), true)); // the_history
    assert.deepEqual(scanBashHistory(h, BASE).map((e) => e.command), ['first', 'second', 'third']);
  });

  test('a stamp nobody points at, a line pointer outside the heap, an unterminated line are not entries', () => {
    const h = heap([{ at: 0x100, line: 'ls', lineAt: 0x200, stamp: '#1764630000', stampAt: 0x300 }]);
    h.set(Buffer.from('#123\0'), 0x600); // an orphan stamp
    const dv = new DataView(h.buffer);
    dv.setBigUint64(0x700, 0x1234n, true); // line outside the heap
    dv.setBigUint64(0x708, BASE + 0x300n, true);
    h.fill(0x41, 0x800); // an unterminated string to the end of the heap
    dv.setBigUint64(0x780, BASE + 0x800n, true);
    dv.setBigUint64(0x788, BASE + 0x300n, true);
    assert.deepEqual(scanBashHistory(h, BASE).map((e) => e.command), ['ls']);
  });

  test('not a stamp: "#" without digits, digits without a NUL, more than 19 digits', () => {
    const h = new Uint8Array(0x200);
    h.set(Buffer.from('#abc\0#12x\0#' + '9'.repeat(25) + '\0'), 0);
    assert.deepEqual(scanBashHistory(h, BASE), []);
  });
});
