import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseXp, XpError } from '../../../src/memory/bridge/xp.js';

test('xp /Ngx output: two little-endian words per line, in order', () => {
  const text = '0000000006361900: 0x65762078756e694c 0x2e36206e6f697372\r\n0000000006361910: 0x612d36352d302e31\r\n';
  const dst = new Uint8Array(24);
  parseXp(text, 0x6361900, 3, dst);
  assert.equal(Buffer.from(dst.subarray(0, 16)).toString('latin1'), 'Linux version 6.');
});

test('xp errors: unbacked memory, missing words, out-of-order lines, garbage', () => {
  const dst = new Uint8Array(16);
  assert.throws(() => parseXp('0000000020000000: Cannot access memory\r\n', 0x20000000, 2, dst), (e: unknown) => e instanceof XpError && /cannot access guest-physical 0x0000000020000000/.test(e.message));
  assert.throws(() => parseXp('0000000000001000: 0x1\r\n', 0x1000, 2, dst), /1 of 2 words/);
  assert.throws(() => parseXp('0000000000001008: 0x1 0x2\r\n', 0x1000, 2, dst), /out of order/);
  assert.throws(() => parseXp('unknown command: xp\r\n', 0x1000, 2, dst), /unexpected xp output/);
});
