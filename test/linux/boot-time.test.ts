/** Wall-clock dates of start times: the Volatility 3 form, microseconds kept, absent boot time passed on. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatWallClock, startedAt } from '../../src/linux/boot-time.js';
import { absent } from '../../src/linux/plugin.js';

test('nanoseconds since the epoch print as YYYY-MM-DD HH:MM:SS.ffffff UTC', () => {
  assert.equal(formatWallClock(0n), '1970-01-01 00:00:00.000000 UTC');
  assert.equal(formatWallClock(1_796_166_304_000_000_000n + 12_345_678_901n), '2026-12-01 23:05:16.345678 UTC');
  assert.equal(formatWallClock(999_999n), '1970-01-01 00:00:00.000999 UTC');
});

test('a start counted from boot adds to the boot time; an unknown boot time stays absent with its reason', () => {
  assert.equal(startedAt(1_000_000_000n, 500_000_000n), '1970-01-01 00:00:01.500000 UTC');
  const why = absent('not-available', 'no tk_core symbol');
  assert.deepEqual(startedAt(why, 5n), why);
});
