/**
 * The SQLite event store (better-sqlite3): every MonitorEvent as one row with indexed columns (run, seq,
 * type, time, pid, key, watch, severity) plus the full JSON, in WAL mode so `vmsight events` can read while a
 * monitor writes.
 *
 * Writes are queued and committed in batched transactions: when `batchSize` events are pending or
 * `batchMs` after the first pending one, whichever comes first, and on flush/close. The queue is bounded:
 * from `highWaterMark` pending events on, `write` returns false (back-pressure: await `drain()`); a producer
 * that keeps writing reaches `maxPending`, and events beyond it are dropped, counted, and recorded in the
 * store itself as a `dropped` event at the next commit — nothing is lost silently.
 *
 * Format: PRAGMA user_version = STORE_SCHEMA_VERSION, and a `meta` table (format, store schema, event
 * schema, the vmsight version that created it and the last that wrote it, runs). A file that is not a
 * vmsight store, or was written by a newer vmsight, is refused before anything is written to it.
 *
 * Longer than ~400 lines on purpose: the store's schema, batching, drop accounting and queries share one database handle and its prepared statements.
 */
import type Database from 'better-sqlite3';
import { existsSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { EVENT_SCHEMA_VERSION, EVENT_TYPES, type EventDraft, type EventSink, type EventType, type MonitorEvent } from '../events.js';
import { PRODUCER } from '../../profile/isf.js';
import { SinkUnavailableError, StoreFormatError } from './errors.js';
import { checkWritablePath } from './output-path.js';

/** Version of the SQL layout (tables, columns, indexes). A newer number on disk is refused. */
export const STORE_SCHEMA_VERSION = 1;
const FORMAT = 'vmsight-events';

export interface EventStoreOptions {
  /** Commit when this many events are pending (default 256). */
  readonly batchSize?: number;
  /** Commit at most this many ms after the first pending event (default 200). */
  readonly batchMs?: number;
  /** From this many pending events on, write returns false (default 4096). */
  readonly highWaterMark?: number;
  /** Events beyond this many pending are dropped and counted (default 4 × highWaterMark). */
  readonly maxPending?: number;
  /** Recorded in the meta table (default: this vmsight's version). */
  readonly vmsightVersion?: string;
  /**
   * Turns the store's own `dropped` record into an event. The monitor passes its stamper so the record gets
   * a real sequence number; by default it takes the seq of the last event offered to the store.
   */
  readonly stampDropped?: (draft: EventDraft) => MonitorEvent;
}

/** A time bound: ms since the epoch, a Date, or an ISO 8601 string. */
export type TimeBound = number | Date | string;

export interface EventQuery {
  readonly since?: TimeBound;
  readonly until?: TimeBound;
  readonly types?: readonly EventType[];
  readonly pid?: number;
  readonly key?: string;
  readonly watch?: string;
  /** At most this many events (the first ones in order). */
  readonly limit?: number;
  /** Only rows written after this row number (see queryRows; for following a store as it grows). */
  readonly afterRow?: number;
}

export interface StoreInfo {
  readonly path: string;
  readonly storeSchema: number;
  readonly eventSchema: number;
  readonly createdBy: string;
  readonly lastWrittenBy: string;
  readonly runs: number;
  readonly events: number;
}

interface Pending {
  readonly event: MonitorEvent;
  readonly json: string;
}

function timeMs(bound: TimeBound, what: string): number {
  const ms = typeof bound === 'number' ? bound : bound instanceof Date ? bound.getTime() : Date.parse(bound);
  if (!Number.isFinite(ms)) throw new RangeError(`${what}: not a time: ${String(bound)}`);
  return ms;
}

function sqliteCode(e: unknown): string | undefined {
  return (e as { code?: string } | undefined)?.code;
}

const SCHEMA_SQL = `
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE events (
  id INTEGER PRIMARY KEY,
  run INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  type TEXT NOT NULL,
  time INTEGER NOT NULL,
  pid INTEGER,
  key TEXT,
  watch TEXT NOT NULL,
  severity TEXT,
  json TEXT NOT NULL
);
CREATE INDEX events_run_seq ON events (run, seq);
CREATE INDEX events_seq ON events (seq);
CREATE INDEX events_type ON events (type, id);
CREATE INDEX events_time ON events (time);
CREATE INDEX events_pid ON events (pid, id);
CREATE INDEX events_key ON events (key, id);
CREATE INDEX events_watch ON events (watch, id);
`;

export class EventStore implements EventSink {
  readonly name: string;
  private readonly db: Database.Database;
  private readonly insert: Database.Statement;
  private readonly commitBatch: (batch: readonly Pending[], drop: MonitorEvent | undefined) => void;
  private readonly run: number;
  private readonly batchSize: number;
  private readonly batchMs: number;
  private readonly highWaterMark: number;
  private readonly maxPending: number;
  private readonly stampDropped: ((draft: EventDraft) => MonitorEvent) | undefined;
  private pending: Pending[] = [];
  private droppedCount = 0;
  /** Drops not yet written to the store as a `dropped` event. */
  private unrecorded = { count: 0, firstSeq: 0, lastSeq: 0 };
  private lastSeq = 0;
  private timer: NodeJS.Timeout | undefined;
  private immediate: NodeJS.Immediate | undefined;
  private drainWaiters: (() => void)[] = [];
  private failure: Error | undefined;
  private closed = false;

  private constructor(
    readonly path: string,
    db: Database.Database,
    run: number,
    options: EventStoreOptions,
    private readonly readOnly = false,
  ) {
    this.name = `store:${path}`;
    this.db = db;
    this.run = run;
    this.batchSize = Math.max(1, options.batchSize ?? 256);
    this.batchMs = Math.max(0, options.batchMs ?? 200);
    this.highWaterMark = Math.max(1, options.highWaterMark ?? 4096);
    this.maxPending = Math.max(this.highWaterMark, options.maxPending ?? this.highWaterMark * 4);
    this.stampDropped = options.stampDropped;
    this.insert = db.prepare(
      'INSERT INTO events (run, seq, type, time, pid, key, watch, severity, json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
    );
    const add = (e: MonitorEvent, json: string) => {
      const t = Date.parse(e.time);
      this.insert.run(this.run, e.seq, e.type, Number.isFinite(t) ? t : 0, e.process?.pid ?? null, e.key ?? null, e.watch, e.severity ?? null, json);
    };
    this.commitBatch = db.transaction((batch: readonly Pending[], drop: MonitorEvent | undefined) => {
      for (const p of batch) add(p.event, p.json);
      if (drop) add(drop, JSON.stringify(drop));
    });
  }

  /**
   * Opens (or creates) a store for writing. Refuses, with one actionable line, a path in a missing folder or
   * without write permission, a file that is not a vmsight store, and a store of a newer schema.
   */
  static open(path: string, options: EventStoreOptions = {}): EventStore {
    checkWritablePath(path, 'event store', { folderToo: true });
    const db = openDatabase(path, false);
    try {
      const version = options.vmsightVersion ?? PRODUCER.version;
      const fresh = isEmptyDatabase(db, path);
      if (!fresh) checkStoreFormat(db, path);
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      db.pragma('busy_timeout = 250');
      // BEGIN IMMEDIATE, and look again: another monitor may have created the store since the first look.
      const run = db.transaction(() => {
        const stillFresh = isEmptyDatabase(db, path);
        if (!stillFresh && fresh) checkStoreFormat(db, path);
        if (stillFresh) {
          db.exec(SCHEMA_SQL);
          const put = db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)');
          put.run('format', FORMAT);
          put.run('store_schema', String(STORE_SCHEMA_VERSION));
          put.run('event_schema', String(EVENT_SCHEMA_VERSION));
          put.run('created_by', version);
          put.run('created', new Date().toISOString());
          put.run('runs', '0');
          db.pragma(`user_version = ${STORE_SCHEMA_VERSION}`);
        }
        const runs = Number(metaValue(db, 'runs') ?? '0') + 1;
        const set = db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value');
        set.run('runs', String(runs));
        set.run('last_written_by', version);
        return runs;
      }).immediate();
      return new EventStore(path, db, run, options);
    } catch (e) {
      db.close();
      throw translateSqliteError(e, path);
    }
  }

  /** Opens an existing store to query it (never writes to it). */
  static openReadOnly(path: string): EventStore {
    if (!existsSync(path)) throw new SinkUnavailableError(path, 'no such event store', { hint: 'give the file a monitor wrote with --store' });
    if (!statSync(path).isFile()) throw new StoreFormatError(path, 'not a file', { hint: 'give an event store file' });
    const db = openDatabase(path, true);
    try {
      if (isEmptyDatabase(db, path)) throw new StoreFormatError(path, 'not a vmsight event store (an empty database)', { hint: 'give the file a monitor wrote with --store' });
      checkStoreFormat(db, path);
      return new EventStore(path, db, 0, {}, true);
    } catch (e) {
      db.close();
      throw translateSqliteError(e, path);
    }
  }

  get dropped(): number {
    return this.droppedCount;
  }

  /** Events queued and not yet committed. */
  get pendingCount(): number {
    return this.pending.length;
  }

  /** The error of the last failed commit, when the store could not write. */
  get error(): Error | undefined {
    return this.failure;
  }

  write(event: MonitorEvent): boolean {
    if (this.readOnly) throw new TypeError(`${this.path}: opened read-only, cannot write events`);
    if (event.seq > this.lastSeq) this.lastSeq = event.seq;
    if (this.closed || this.pending.length >= this.maxPending) {
      this.countDrop(event.seq);
      return false;
    }
    this.pending.push({ event, json: JSON.stringify(event) });
    if (this.pending.length >= this.batchSize) this.commitSoon();
    else if (!this.timer) {
      this.timer = setTimeout(() => this.commitScheduled(), this.batchMs);
      this.timer.unref();
    }
    return this.pending.length < this.highWaterMark;
  }

  drain(): Promise<void> {
    if (this.pending.length < this.highWaterMark || this.closed) return Promise.resolve();
    this.commitSoon();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  /** Commits everything pending now; throws when the store cannot be written. */
  async flush(): Promise<void> {
    this.commitNow();
    if (this.failure) throw this.wrapFailure();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.commitNow();
    this.closed = true;
    this.clearTimers();
    const lost = this.pending.length;
    if (lost) {
      this.droppedCount += lost;
      this.pending = [];
    }
    this.releaseDrainWaiters();
    const failure = this.failure;
    try {
      if (this.db.open) this.db.close();
    } catch (e) {
      throw translateSqliteError(e, this.path);
    }
    if (failure) throw this.wrapFailure(lost);
  }

  /** Facts about the store (schema versions, writers, runs, event count). */
  info(): StoreInfo {
    return {
      path: this.path,
      storeSchema: Number(this.db.pragma('user_version', { simple: true })),
      eventSchema: Number(metaValue(this.db, 'event_schema') ?? 0),
      createdBy: metaValue(this.db, 'created_by') ?? '?',
      lastWrittenBy: metaValue(this.db, 'last_written_by') ?? '?',
      runs: Number(metaValue(this.db, 'runs') ?? 0),
      events: Number((this.db.prepare('SELECT count(*) AS n FROM events').get() as { n: number }).n),
    };
  }

  /** Events matching every given filter, in the order they were written (seq order within a run). */
  query(q: EventQuery = {}): MonitorEvent[] {
    return this.queryRows(q).map((r) => r.event);
  }

  /** As query, with each event's row number (increasing in write order), to resume with `afterRow`. */
  queryRows(q: EventQuery = {}): { row: number; event: MonitorEvent }[] {
    if (!this.closed && this.pending.length) this.commitNow();
    const where: string[] = [];
    const params: (string | number)[] = [];
    if (q.since !== undefined) {
      where.push('time >= ?');
      params.push(timeMs(q.since, 'since'));
    }
    if (q.until !== undefined) {
      where.push('time <= ?');
      params.push(timeMs(q.until, 'until'));
    }
    if (q.types !== undefined) {
      const types = q.types.filter((t) => (EVENT_TYPES as readonly string[]).includes(t));
      if (types.length === 0) return [];
      where.push(`type IN (${types.map(() => '?').join(', ')})`);
      params.push(...types);
    }
    if (q.pid !== undefined) {
      where.push('pid = ?');
      params.push(q.pid);
    }
    if (q.key !== undefined) {
      where.push('key = ?');
      params.push(q.key);
    }
    if (q.watch !== undefined) {
      where.push('watch = ?');
      params.push(q.watch);
    }
    if (q.afterRow !== undefined) {
      where.push('id > ?');
      params.push(q.afterRow);
    }
    let sql = `SELECT id, json FROM events${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY id`;
    if (q.limit !== undefined) {
      sql += ' LIMIT ?';
      params.push(Math.max(0, Math.floor(q.limit)));
    }
    const rows = this.db.prepare(sql).all(...params) as { id: number; json: string }[];
    return rows.map((r) => {
      try {
        return { row: r.id, event: JSON.parse(r.json) as MonitorEvent };
      } catch {
        throw new StoreFormatError(this.path, `event row ${r.id} holds no valid JSON`, { hint: 'the store was changed by something else than vmsight' });
      }
    });
  }

  private countDrop(seq: number): void {
    this.droppedCount++;
    if (this.unrecorded.count === 0) this.unrecorded.firstSeq = seq;
    this.unrecorded.count++;
    this.unrecorded.lastSeq = seq;
  }

  private droppedRecord(): MonitorEvent | undefined {
    const u = this.unrecorded;
    if (u.count === 0) return undefined;
    const draft: EventDraft = {
      type: 'dropped',
      watch: 'monitor',
      severity: 'medium',
      data: { sink: this.name, count: u.count, firstSeq: u.firstSeq, lastSeq: u.lastSeq, reason: 'store queue full' },
    };
    if (this.stampDropped) return this.stampDropped(draft);
    const now = Date.now();
    return { schema: EVENT_SCHEMA_VERSION, seq: this.lastSeq, time: new Date(now).toISOString(), window: { from: now, to: now }, ...draft };
  }

  private commitSoon(): void {
    if (this.immediate || this.closed) return;
    this.immediate = setImmediate(() => {
      this.immediate = undefined;
      this.commitNow();
    });
  }

  private commitScheduled(): void {
    this.timer = undefined;
    this.commitNow();
  }

  private clearTimers(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.immediate) clearImmediate(this.immediate);
    this.timer = undefined;
    this.immediate = undefined;
  }

  /** One transaction for everything pending, plus the record of drops since the last commit. */
  private commitNow(): void {
    if (this.closed || !this.db.open) return;
    this.clearTimers();
    const drop = this.droppedRecord();
    if (this.pending.length === 0 && !drop) return;
    const batch = this.pending;
    try {
      this.commitBatch(batch, drop);
      this.pending = [];
      this.unrecorded = { count: 0, firstSeq: 0, lastSeq: 0 };
      this.failure = undefined;
    } catch (e) {
      // Keep the batch and retry later; a store that stays unwritable fills its queue and counts drops.
      this.failure = e instanceof Error ? e : new Error(String(e));
      this.timer = setTimeout(() => this.commitScheduled(), Math.max(50, this.batchMs));
      this.timer.unref();
    }
    if (this.pending.length < this.highWaterMark) this.releaseDrainWaiters();
  }

  private releaseDrainWaiters(): void {
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiters) w();
  }

  private wrapFailure(lost = 0): Error {
    const f = this.failure!;
    const translated = translateSqliteError(f, this.path);
    if (lost === 0) return translated;
    return new SinkUnavailableError(this.path, `could not write ${lost} events: ${f.message}`, { hint: 'free disk space or check the file', cause: f });
  }
}

type DatabaseConstructor = typeof Database;
let sqlite: DatabaseConstructor | undefined;

/**
 * better-sqlite3 is a native addon, loaded on first use so that every other command works even where it
 * could not be built.
 */
function loadSqlite(path: string): DatabaseConstructor {
  if (sqlite) return sqlite;
  try {
    const mod = createRequire(import.meta.url)('better-sqlite3') as DatabaseConstructor;
    // Opening a database is what loads the addon: fail here, not in the middle of a run.
    new mod(':memory:').close();
    sqlite = mod;
    return mod;
  } catch (e) {
    throw new SinkUnavailableError(path, `the SQLite module better-sqlite3 is not usable (${(e as Error).message.split('\n')[0]})`, {
      hint: "run 'npm rebuild better-sqlite3' (it needs python3, make and g++: node scripts/setup.mjs installs them)",
      cause: e,
    });
  }
}

function openDatabase(path: string, readonly: boolean): Database.Database {
  const Sqlite = loadSqlite(path);
  try {
    return new Sqlite(path, readonly ? { readonly: true, fileMustExist: true } : {});
  } catch (e) {
    throw translateSqliteError(e, path);
  }
}

function metaValue(db: Database.Database, key: string): string | undefined {
  const row = db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined;
  return row?.value;
}

/** A database with no tables and no user_version: a new (or zero-byte) file the store may initialise. */
function isEmptyDatabase(db: Database.Database, path: string): boolean {
  try {
    const tables = (db.prepare("SELECT count(*) AS n FROM sqlite_master").get() as { n: number }).n;
    const userVersion = Number(db.pragma('user_version', { simple: true }));
    return tables === 0 && userVersion === 0;
  } catch (e) {
    throw translateSqliteError(e, path);
  }
}

function checkStoreFormat(db: Database.Database, path: string): void {
  const notStore = () => new StoreFormatError(path, 'not a vmsight event store', { hint: 'give another path (vmsight creates a new store there)' });
  const hasMeta = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").get() !== undefined;
  if (!hasMeta) throw notStore();
  let format: string | undefined;
  try {
    format = metaValue(db, 'format');
  } catch {
    throw notStore();
  }
  if (format !== FORMAT) throw notStore();
  const storeSchema = Number(db.pragma('user_version', { simple: true }));
  const eventSchema = Number(metaValue(db, 'event_schema') ?? '0');
  const writer = metaValue(db, 'last_written_by') ?? metaValue(db, 'created_by') ?? 'a newer vmsight';
  if (storeSchema > STORE_SCHEMA_VERSION || eventSchema > EVENT_SCHEMA_VERSION) {
    throw new StoreFormatError(
      path,
      `event store schema ${storeSchema} (events v${eventSchema}) is newer than this vmsight reads (schema ${STORE_SCHEMA_VERSION}, events v${EVENT_SCHEMA_VERSION})`,
      { hint: `use vmsight ${writer} or newer, or give another path` },
    );
  }
  if (storeSchema < 1) throw notStore();
}

/** SQLite's errors as one actionable line. */
function translateSqliteError(e: unknown, path: string): Error {
  if (e instanceof SinkUnavailableError || e instanceof StoreFormatError) return e;
  const full = sqliteCode(e);
  const code = full?.split('_').slice(0, 2).join('_'); // SQLITE_CANTOPEN_ISDIR → SQLITE_CANTOPEN
  const msg = e instanceof Error ? e.message : String(e);
  switch (code) {
    case 'SQLITE_NOTADB':
    case 'SQLITE_CORRUPT':
      return new StoreFormatError(path, `not a vmsight event store (${msg})`, { hint: 'give another path (vmsight creates a new store there)', cause: e });
    case 'SQLITE_CANTOPEN':
      return new SinkUnavailableError(path, `cannot open the event store (${msg})`, { hint: 'check that the folder exists and is writable', cause: e });
    case 'SQLITE_READONLY':
    case 'SQLITE_PERM':
    case 'SQLITE_AUTH':
      return new SinkUnavailableError(path, `no permission to write the event store (${msg})`, { hint: 'make the file and its folder writable', cause: e });
    case 'SQLITE_FULL':
      return new SinkUnavailableError(path, 'the disk is full', { hint: 'free space or move the store', cause: e });
    case 'SQLITE_BUSY':
    case 'SQLITE_LOCKED':
      return new SinkUnavailableError(path, 'the event store is locked by another writer', { hint: 'stop the other monitor or give another store', cause: e });
    default:
      return e instanceof Error ? e : new Error(msg);
  }
}
