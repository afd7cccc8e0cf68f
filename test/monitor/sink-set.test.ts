import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { EventSink, MonitorEvent } from '../../src/monitor/events.js';
import { SinkSet } from '../../src/monitor/sinks/sink-set.js';
import { sampleEvents } from './helpers/events.js';

/** A sink that keeps events, takes at most `capacity` and can be told to fail. */
class MemorySink implements EventSink {
  readonly events: MonitorEvent[] = [];
  dropped = 0;
  closed = false;
  constructor(
    readonly name: string,
    private readonly capacity = Infinity,
    private readonly failOn: { write?: boolean; close?: boolean } = {},
  ) {}
  write(e: MonitorEvent): boolean {
    if (this.failOn.write) throw new Error(`${this.name} broke`);
    if (this.events.length >= this.capacity) {
      this.dropped++;
      return false;
    }
    this.events.push(e);
    return true;
  }
  async flush(): Promise<void> {}
  async close(): Promise<void> {
    this.closed = true;
    if (this.failOn.close) throw new Error(`${this.name}: disk full`);
  }
}

describe('SinkSet', () => {
  it('writes every event to every sink, and one failing sink does not stop the others', async () => {
    const good = new MemorySink('good');
    const small = new MemorySink('small', 3);
    const broken = new MemorySink('broken', Infinity, { write: true });
    const set = new SinkSet([good, broken, small]);
    const events = sampleEvents(5);
    const results = events.map((e) => set.write(e));
    assert.deepEqual(results, [false, false, false, false, false]); // broken throws every time
    assert.deepEqual(good.events, events);
    assert.deepEqual(small.events, events.slice(0, 3));
    assert.equal(set.droppedBy(small), 2);
    assert.equal(set.droppedBy(broken), 5);
    assert.equal(set.dropped, 7);
  });

  it('reports drops per sink since the last report', () => {
    const small = new MemorySink('small', 2);
    const ok = new MemorySink('ok');
    const set = new SinkSet([small, ok]);
    sampleEvents(5).forEach((e) => set.write(e));
    assert.deepEqual(set.dropReport(), [{ sink: 'small', count: 3 }]);
    assert.deepEqual(set.dropReport(), []);
    set.write(sampleEvents(1)[0]!);
    assert.deepEqual(set.dropReport(), [{ sink: 'small', count: 1 }]);
  });

  it('closes every sink and reports the ones that failed instead of throwing', async () => {
    const a = new MemorySink('a');
    const b = new MemorySink('b', Infinity, { close: true });
    const c = new MemorySink('c');
    const set = new SinkSet([a, b, c]);
    const failures = await set.close();
    assert.deepEqual(failures.map((f) => [f.sink, f.error.message]), [['b', 'b: disk full']]);
    assert.ok(a.closed && b.closed && c.closed);
    assert.deepEqual(await set.close(), []);
  });
});

describe('SinkSet over real sinks', () => {
  it('loses nothing across JSON Lines (slow stream), the store and the terminal when the producer awaits drain()', async () => {
    const { Writable } = await import('node:stream');
    const path = await import('node:path');
    const { JsonlSink } = await import('../../src/monitor/sinks/jsonl.js');
    const { TerminalSink } = await import('../../src/monitor/sinks/terminal.js');
    const { EventStore } = await import('../../src/monitor/sinks/store.js');
    const { tempDir } = await import('./helpers/events.js');
    const tmp = tempDir();
    try {
      let jsonl = '';
      const slow = new Writable({
        highWaterMark: 512,
        write(c: Buffer, _e, done) {
          setTimeout(() => {
            jsonl += c.toString();
            done();
          }, 1);
        },
      });
      let terminal = '';
      const term = new Writable({ write: (c: Buffer, _e, done) => ((terminal += c.toString()), done()) });
      const file = path.join(tmp.dir, 'events.db');
      const set = new SinkSet([new JsonlSink(slow), EventStore.open(file, { highWaterMark: 16, maxPending: 16, batchSize: 1000, batchMs: 60_000 }), new TerminalSink(term)]);
      const events = sampleEvents(300);
      let waits = 0;
      for (const e of events) {
        if (!set.write(e)) {
          waits++;
          await set.drain();
        }
      }
      assert.ok(waits > 10);
      assert.deepEqual(set.dropReport(), []);
      assert.deepEqual(await set.close(), []);
      assert.deepEqual(jsonl.trimEnd().split('\n').map((l) => JSON.parse(l)), events);
      assert.equal(terminal.trimEnd().split('\n').length, 300);
      const ro = EventStore.openReadOnly(file);
      assert.deepEqual(ro.query(), events);
      await ro.close();
    } finally {
      tmp.cleanup();
    }
  });
});
