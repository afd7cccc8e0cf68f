import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { ExitCode, VmsightError } from '../../src/core/errors.js';
import { EVENT_SCHEMA_VERSION, EventStamper, type MonitorEvent } from '../../src/monitor/events.js';
import { EventStore, STORE_SCHEMA_VERSION } from '../../src/monitor/sinks/store.js';
import { SinkUnavailableError, StoreFormatError } from '../../src/monitor/sinks/errors.js';
import { sampleEvents, tempDir } from './helpers/events.js';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

function refusal(fn: () => unknown): VmsightError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof VmsightError, `expected a VmsightError, got ${String(e)}`);
    assert.doesNotMatch(e.oneLine(), /\n/);
    return e;
  }
  assert.fail('expected the store to be refused');
}

async function until(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) assert.fail('condition not reached');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('EventStore', () => {
  const tmp = tempDir();
  after(() => tmp.cleanup());
  let n = 0;
  const fresh = () => path.join(tmp.dir, `store-${++n}.db`);

  it('reads back exactly the N events written, in order, with equal JSON', async () => {
    const file = fresh();
    const events = sampleEvents(1500);
    const store = EventStore.open(file, { batchSize: 100 });
    for (const e of events) assert.equal(store.write(e), true);
    await store.close();
    const ro = EventStore.openReadOnly(file);
    const back = ro.query();
    assert.equal(back.length, events.length);
    assert.deepEqual(back, events);
    assert.deepEqual(back.map((e) => e.seq), events.map((_, i) => i + 1));
    await ro.close();
  });

  it('is in WAL mode, versioned by user_version and a meta table', async () => {
    const file = fresh();
    const store = EventStore.open(file, { vmsightVersion: '9.8.7' });
    store.write(sampleEvents(1)[0]!);
    await store.flush();
    const raw = new Database(file, { readonly: true });
    assert.equal(raw.pragma('journal_mode', { simple: true }), 'wal');
    assert.equal(raw.pragma('user_version', { simple: true }), STORE_SCHEMA_VERSION);
    const meta = Object.fromEntries((raw.prepare('SELECT key, value FROM meta').all() as { key: string; value: string }[]).map((r) => [r.key, r.value]));
    assert.equal(meta['format'], 'vmsight-events');
    assert.equal(meta['event_schema'], String(EVENT_SCHEMA_VERSION));
    assert.equal(meta['created_by'], '9.8.7');
    const indexes = (raw.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events'").all() as { name: string }[]).map((r) => r.name);
    for (const col of ['seq', 'type', 'time', 'pid', 'key', 'watch']) assert.ok(indexes.includes(`events_${col}`), `index on ${col}`);
    // A reader sees committed events while the writer is open (WAL).
    assert.equal((raw.prepare('SELECT count(*) AS n FROM events').get() as { n: number }).n, 1);
    raw.close();
    await store.close();
  });

  it('reopens after close and appends a second run', async () => {
    const file = fresh();
    const first = sampleEvents(10);
    const s1 = EventStore.open(file);
    first.forEach((e) => s1.write(e));
    await s1.close();
    const second = sampleEvents(5, Date.parse('2026-12-01T11:00:00Z'));
    const s2 = EventStore.open(file);
    second.forEach((e) => s2.write(e));
    await s2.close();
    const ro = EventStore.openReadOnly(file);
    assert.deepEqual(ro.query(), [...first, ...second]);
    assert.equal(ro.info().runs, 2);
    assert.equal(ro.info().events, 15);
    await ro.close();
  });

  it('commits on its own after batchMs, without a flush', async () => {
    const file = fresh();
    const store = EventStore.open(file, { batchSize: 1000, batchMs: 20 });
    sampleEvents(3).forEach((e) => store.write(e));
    const raw = new Database(file, { readonly: true });
    const count = () => (raw.prepare('SELECT count(*) AS n FROM events').get() as { n: number }).n;
    assert.equal(count(), 0);
    await until(() => count() === 3);
    raw.close();
    await store.close();
  });

  it('refuses a store of a newer schema and leaves it untouched', async () => {
    const file = fresh();
    await EventStore.open(file).close();
    const raw = new Database(file);
    raw.pragma('user_version = 99');
    raw.close();
    const before = fs.readFileSync(file);
    const e = refusal(() => EventStore.open(file));
    assert.ok(e instanceof StoreFormatError);
    assert.equal(e.exitCode, ExitCode.analysis);
    assert.match(e.oneLine(), /schema 99 .* newer than this vmsight reads/);
    assert.match(e.oneLine(), /use vmsight/);
    assert.ok(fs.readFileSync(file).equals(before));
    assert.throws(() => EventStore.openReadOnly(file), StoreFormatError);

    const file2 = fresh();
    await EventStore.open(file2).close();
    const raw2 = new Database(file2);
    raw2.prepare("UPDATE meta SET value = ? WHERE key = 'event_schema'").run(String(EVENT_SCHEMA_VERSION + 1));
    raw2.close();
    assert.match(refusal(() => EventStore.open(file2)).oneLine(), /newer/);
  });

  it('refuses a file that is not a vmsight store, without changing it', () => {
    const text = fresh();
    fs.writeFileSync(text, 'this is not a database, just some text that is long enough to have a header........\n');
    const before = fs.readFileSync(text);
    const e = refusal(() => EventStore.open(text));
    assert.ok(e instanceof StoreFormatError);
    assert.match(e.oneLine(), /not a vmsight event store/);
    assert.ok(fs.readFileSync(text).equals(before));
    assert.ok(!fs.existsSync(`${text}-wal`));

    const other = fresh();
    const db = new Database(other);
    db.exec('CREATE TABLE users (name TEXT)');
    db.close();
    assert.match(refusal(() => EventStore.open(other)).oneLine(), /not a vmsight event store/);
    assert.match(refusal(() => EventStore.openReadOnly(other)).oneLine(), /not a vmsight event store/);
    assert.equal(new Database(other).pragma('journal_mode', { simple: true }), 'delete');
  });

  it('refuses a path in a missing folder or under a regular file, before creating anything', () => {
    const missing = path.join(tmp.dir, 'no-such-folder', 'events.db');
    const e = refusal(() => EventStore.open(missing));
    assert.ok(e instanceof SinkUnavailableError);
    assert.equal(e.exitCode, ExitCode.unavailable);
    assert.match(e.oneLine(), /no-such-folder\/events\.db: cannot create the event store: the folder does not exist: create .*no-such-folder/);
    const file = fresh();
    fs.writeFileSync(file, 'x');
    const under = refusal(() => EventStore.open(path.join(file, 'events.db')));
    assert.match(under.oneLine(), /a part of the path is a file, not a folder|is not a folder/);
    const absent = refusal(() => EventStore.openReadOnly(path.join(tmp.dir, 'absent.db')));
    assert.match(absent.oneLine(), /no such event store/);
    assert.equal(absent.exitCode, ExitCode.unavailable);
  });

  it('refuses a folder without write permission', () => {
    const ro = path.join(tmp.dir, 'read-only');
    fs.mkdirSync(ro);
    fs.chmodSync(ro, 0o555);
    const target = path.join(ro, 'events.db');
    if (process.getuid?.() !== 0) {
      assert.match(refusal(() => EventStore.open(target)).oneLine(), /no permission to write the event store/);
      return;
    }
    // root writes anywhere: ask the question as an unprivileged user, in a child process.
    fs.chmodSync(tmp.dir, 0o755);
    const script = `import { EventStore } from ${JSON.stringify(path.join(root, 'src/monitor/sinks/store.ts'))};
try { EventStore.open(${JSON.stringify(target)}); console.log('opened'); } catch (e) { console.log(e.exitCode + ' ' + e.oneLine()); }`;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: root,
      uid: 65534,
      gid: 65534,
      encoding: 'utf8',
      env: { ...process.env, HOME: '/tmp', TSX_TSCONFIG_PATH: path.join(root, 'tsconfig.json') },
    });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout.trim(), /^3 .*read-only\/events\.db: no permission to write the event store: make .*read-only writable/);
    assert.ok(!fs.existsSync(target));
  });

  it('applies back-pressure, then counts drops and records them as a dropped event', async () => {
    const file = fresh();
    const store = EventStore.open(file, { batchSize: 1000, batchMs: 60_000, highWaterMark: 10, maxPending: 20 });
    const events = sampleEvents(30);
    const results = events.map((e) => store.write(e));
    assert.deepEqual(results.slice(0, 9), Array(9).fill(true));
    assert.deepEqual(results.slice(9), Array(21).fill(false)); // 10..20 taken over the mark, 21..30 dropped
    assert.equal(store.dropped, 10);
    assert.equal(store.pendingCount, 20);
    await store.close();
    const ro = EventStore.openReadOnly(file);
    const back = ro.query();
    assert.equal(back.length, 21);
    assert.deepEqual(back.slice(0, 20), events.slice(0, 20));
    const drop = back[20]!;
    assert.equal(drop.type, 'dropped');
    assert.equal(drop.schema, EVENT_SCHEMA_VERSION);
    assert.deepEqual(drop.data, { sink: `store:${file}`, count: 10, firstSeq: 21, lastSeq: 30, reason: 'store queue full' });
    assert.deepEqual(ro.query({ types: ['dropped'] }), [drop]);
    await ro.close();
  });

  it('loses nothing when the producer awaits drain()', async () => {
    const file = fresh();
    const store = EventStore.open(file, { batchSize: 1000, batchMs: 60_000, highWaterMark: 8, maxPending: 8 });
    const events = sampleEvents(200);
    let pressured = 0;
    for (const e of events) {
      if (!store.write(e)) {
        pressured++;
        await store.drain();
        assert.ok(store.pendingCount < 8);
      }
    }
    assert.ok(pressured > 10);
    assert.equal(store.dropped, 0);
    await store.close();
    const ro = EventStore.openReadOnly(file);
    assert.deepEqual(ro.query(), events);
    await ro.close();
  });

  it('stamps its dropped record through the monitor stamper when given one', async () => {
    const file = fresh();
    const monitorStamper = new EventStamper();
    const store = EventStore.open(file, {
      highWaterMark: 1,
      maxPending: 1,
      batchMs: 60_000,
      stampDropped: (d) => monitorStamper.stamp(d, { from: 1, to: 2 }),
    });
    const [a, b] = [monitorStamper.stamp({ type: 'process-start', watch: 'processes' }, { from: 0, to: 1 }), monitorStamper.stamp({ type: 'process-exit', watch: 'processes' }, { from: 0, to: 1 })];
    store.write(a);
    store.write(b);
    await store.close();
    const ro = EventStore.openReadOnly(file);
    const back = ro.query();
    assert.deepEqual(back.map((e) => [e.seq, e.type]), [[1, 'process-start'], [3, 'dropped']]);
    await ro.close();
  });

  it('filters by time, type, pid, key and limit', async () => {
    const file = fresh();
    const start = Date.parse('2026-12-01T10:00:00Z');
    const events = sampleEvents(100, start); // one per second
    const store = EventStore.open(file);
    events.forEach((e) => store.write(e));
    // queries see pending events of the writer too
    const eq = (got: MonitorEvent[], want: MonitorEvent[]) => assert.deepEqual(got.map((e) => e.seq), want.map((e) => e.seq));
    eq(store.query({ since: start + 90_000 }), events.slice(90));
    eq(store.query({ since: new Date(start + 10_000), until: '2026-12-01T10:00:19.000Z' }), events.slice(10, 20));
    eq(store.query({ types: ['module-load', 'cred-change'] }), events.filter((e) => e.type === 'module-load' || e.type === 'cred-change'));
    eq(store.query({ pid: 103 }), events.filter((e) => e.process?.pid === 103));
    eq(store.query({ key: 'k5' }), events.filter((e) => e.key === 'k5'));
    eq(store.query({ watch: 'module' }), events.filter((e) => e.watch === 'module'));
    eq(store.query({ types: ['kernel-log'], pid: 105, limit: 2 }), events.filter((e) => e.type === 'kernel-log' && e.process?.pid === 105).slice(0, 2));
    eq(store.query({ limit: 0 }), []);
    eq(store.query({ types: [] }), []);
    await store.close();
  });

  it('never writes after close, and counts the attempt as a drop', async () => {
    const file = fresh();
    const store = EventStore.open(file);
    await store.close();
    assert.equal(store.write(sampleEvents(1)[0]!), false);
    assert.equal(store.dropped, 1);
    await store.close(); // twice is fine
  });
});
