import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { ExitCode, VmsightError } from '../../src/core/errors.js';
import { JsonlSink } from '../../src/monitor/sinks/jsonl.js';
import { sampleEvents, tempDir } from './helpers/events.js';

/** A Writable with a tiny buffer that takes each chunk only after a delay: a slow consumer. */
function slowStream(delayMs: number): { stream: Writable; received(): string } {
  const chunks: string[] = [];
  const stream = new Writable({
    highWaterMark: 256,
    write(chunk: Buffer, _enc, done) {
      setTimeout(() => {
        chunks.push(chunk.toString());
        done();
      }, delayMs);
    },
  });
  return { stream, received: () => chunks.join('') };
}

describe('JsonlSink', () => {
  const tmp = tempDir();
  after(() => tmp.cleanup());

  it('writes one parseable JSON object per line to a file, appending', async () => {
    const file = path.join(tmp.dir, 'events.jsonl');
    const events = sampleEvents(50);
    const a = JsonlSink.open(file);
    events.slice(0, 30).forEach((e) => a.write(e));
    await a.close();
    const b = JsonlSink.open(file);
    events.slice(30).forEach((e) => b.write(e));
    await b.close();
    const lines = fs.readFileSync(file, 'utf8').split('\n');
    assert.equal(lines.pop(), '');
    assert.deepEqual(lines.map((l) => JSON.parse(l)), events);
  });

  it('loses nothing through a slow stream when the producer honours back-pressure', async () => {
    const slow = slowStream(1);
    const sink = new JsonlSink(slow.stream);
    const events = sampleEvents(120);
    let pressured = 0;
    for (const e of events) {
      if (!sink.write(e)) {
        pressured++;
        await sink.drain();
        assert.equal(slow.stream.writableNeedDrain, false);
      }
    }
    assert.ok(pressured > 20, `back-pressure seen ${pressured} times`);
    await sink.close();
    assert.equal(sink.dropped, 0);
    assert.deepEqual(slow.received().trimEnd().split('\n').map((l) => JSON.parse(l)), events);
  });

  it('flushes buffered lines on close even when the producer ignored back-pressure', async () => {
    const slow = slowStream(0);
    const sink = new JsonlSink(slow.stream, { end: true });
    const events = sampleEvents(40);
    const taken = events.map((e) => sink.write(e));
    assert.ok(taken.includes(false));
    await sink.close();
    assert.equal(slow.received().trimEnd().split('\n').length, 40);
  });

  it('counts events after a stream failure as drops and reports the failure on close', async () => {
    const broken = new Writable({
      write(_c, _e, done) {
        done(new Error('EPIPE: broken pipe'));
      },
    });
    const sink = new JsonlSink(broken);
    const [a, b, c] = sampleEvents(3);
    sink.write(a!);
    await new Promise((r) => setImmediate(r));
    assert.equal(sink.write(b!), false);
    assert.equal(sink.write(c!), false);
    assert.equal(sink.dropped, 2);
    await assert.rejects(sink.close(), /jsonl: EPIPE: broken pipe/);
  });

  it('writes to a FIFO, and refuses a folder', async () => {
    const { spawnSync, spawn } = await import('node:child_process');
    const fifo = path.join(tmp.dir, 'events.fifo');
    assert.equal(spawnSync('mkfifo', [fifo]).status, 0);
    const reader = spawn('cat', [fifo]);
    let got = '';
    reader.stdout.on('data', (c: Buffer) => (got += c.toString()));
    const done = new Promise((r) => reader.on('close', r));
    const sink = JsonlSink.open(fifo);
    const events = sampleEvents(5);
    events.forEach((e) => sink.write(e));
    await sink.close();
    await done;
    assert.deepEqual(got.trimEnd().split('\n').map((l) => JSON.parse(l)), events);
    assert.throws(() => JsonlSink.open(tmp.dir), /exists and is not a regular file/);
  });

  it('refuses a file in a missing folder before writing anything', () => {
    const file = path.join(tmp.dir, 'missing', 'events.jsonl');
    assert.throws(
      () => JsonlSink.open(file),
      (e: unknown) => e instanceof VmsightError && e.exitCode === ExitCode.unavailable && /missing\/events\.jsonl: cannot create the JSON Lines file: the folder does not exist/.test(e.oneLine()),
    );
  });
});
