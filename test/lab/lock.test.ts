import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { withLock } from '../../src/lab/lock.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('withLock runs holders one at a time and releases on throw', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmsight-lock-'));
  try {
    const lock = path.join(dir, 'x.lock');
    let inside = 0;
    let maxInside = 0;
    const order: number[] = [];
    await Promise.all(
      [1, 2, 3].map((i) =>
        withLock(lock, async () => {
          inside++;
          maxInside = Math.max(maxInside, inside);
          await sleep(30);
          order.push(i);
          inside--;
        }),
      ),
    );
    assert.equal(maxInside, 1);
    assert.equal(order.length, 3);
    await assert.rejects(withLock(lock, async () => { throw new Error('boom'); }), /boom/);
    assert.ok(!fs.existsSync(lock), 'released after a throw');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a lock left by a dead process is broken; a live owner makes us time out', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmsight-lock-'));
  try {
    const lock = path.join(dir, 'y.lock');
    fs.mkdirSync(lock);
    fs.writeFileSync(path.join(lock, 'pid'), '2147483646'); // no such pid
    assert.equal(await withLock(lock, async () => 42, { timeoutMs: 2000 }), 42);
    fs.mkdirSync(lock);
    fs.writeFileSync(path.join(lock, 'pid'), String(process.ppid)); // alive, not us
    await assert.rejects(withLock(lock, async () => 1, { timeoutMs: 300 }), /timed out/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
