/**
 * `vmsight events <store>`: the events a monitor recorded in its SQLite store, filtered by time, type, pid,
 * key or watch. A table by default (time, seq, type, pid, comm, summary); --json and --jsonl give the full
 * MonitorEvents (the same objects the JSON Lines sink writes); --csv the table's columns.
 */
import { UsageError } from '../../core/errors.js';
import { EVENT_TYPES, type EventType, type MonitorEvent } from '../../monitor/events.js';
import { loadPolicy } from '../../monitor/policy/load.js';
import type { Policy } from '../../monitor/policy/types.js';
import { EventStore, type EventQuery } from '../../monitor/sinks/store.js';
import { eventSummary } from '../../monitor/sinks/summary.js';
import { printable, terminalLine, wantsColour } from '../../monitor/sinks/terminal.js';
import type { Command, ParsedArgs } from '../command.js';
import { toJson, type Column, type Output } from '../render.js';
import { DURATION_UNITS_MS, stringOption } from './common.js';

const USAGE =
  '<store> [--since T] [--until T] [--type T,...] [--pid N] [--key K] [--watch W] [--limit N] [--follow] [--policy FILE]   (T: ISO time or 10m, 2h, 30s, 1d back from now; --follow: keep printing new events until Ctrl-C; --policy: the alerts FILE raises on those events instead)';

/** How often --follow looks for new rows. */
export const FOLLOW_INTERVAL_MS = 250;


/** An ISO 8601 time, or a duration back from `now` (`30s`, `10m`, `2h`, `1d`, `500ms`), as ms since the epoch. */
export function parseTimeBound(text: string, what: string, now = Date.now()): number {
  const t = text.trim();
  const d = /^([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)$/.exec(t);
  if (d) return now - Number(d[1]) * DURATION_UNITS_MS[d[2]!]!;
  if (/^[0-9]{4}-[0-9]{2}-[0-9]{2}/.test(t)) {
    const ms = Date.parse(t);
    if (Number.isFinite(ms)) return ms;
  }
  throw new UsageError(`${what} ${JSON.stringify(text)}: expected an ISO time (2026-12-01T10:00:00Z) or a duration back from now (30s, 10m, 2h, 1d)`);
}

/** Comma-separated (or repeated) event type names; an unknown one is a usage error naming the valid ones. */
export function parseEventTypes(values: readonly string[]): EventType[] {
  const names = values.flatMap((v) => v.split(',')).map((s) => s.trim()).filter((s) => s !== '');
  const valid = EVENT_TYPES as readonly string[];
  const unknown = names.filter((n) => !valid.includes(n));
  if (unknown.length) {
    throw new UsageError(`--type: unknown event type${unknown.length > 1 ? 's' : ''} ${unknown.map((u) => `'${u}'`).join(', ')}`, {
      hint: `valid types: ${EVENT_TYPES.join(', ')}`,
    });
  }
  if (!names.length) throw new UsageError('--type: no event type given', { hint: `valid types: ${EVENT_TYPES.join(', ')}` });
  return [...new Set(names)] as EventType[];
}

function intOption(args: ParsedArgs, key: string, min: number): number | undefined {
  const v = stringOption(args, key);
  if (v === undefined) return undefined;
  if (!/^[0-9]{1,10}$/.test(v) || Number(v) < min || Number(v) > Number.MAX_SAFE_INTEGER) {
    throw new UsageError(`--${key} ${JSON.stringify(v)}: expected a whole number${min > 0 ? ` of at least ${min}` : ''}`);
  }
  return Number(v);
}

function listOption(args: ParsedArgs, key: string): string[] | undefined {
  const v = args.values[key];
  if (v === undefined) return undefined;
  return (Array.isArray(v) ? v : [v]).map(String);
}

/** Builds the store query from the command line. */
export function queryFromArgs(args: ParsedArgs, now = Date.now()): EventQuery {
  const since = stringOption(args, 'since');
  const until = stringOption(args, 'until');
  const types = listOption(args, 'type');
  const pid = intOption(args, 'pid', 0);
  const limit = intOption(args, 'limit', 1);
  const key = stringOption(args, 'key');
  const watch = stringOption(args, 'watch');
  const q: EventQuery = {
    ...(since !== undefined ? { since: parseTimeBound(since, '--since', now) } : {}),
    ...(until !== undefined ? { until: parseTimeBound(until, '--until', now) } : {}),
    ...(types !== undefined ? { types: parseEventTypes(types) } : {}),
    ...(pid !== undefined ? { pid } : {}),
    ...(key !== undefined ? { key } : {}),
    ...(watch !== undefined ? { watch } : {}),
    ...(limit !== undefined ? { limit } : {}),
  };
  if (q.since !== undefined && q.until !== undefined && (q.since as number) > (q.until as number)) {
    throw new UsageError(`--since ${since} is after --until ${until}`);
  }
  return q;
}

/** Local date and time with ms, for the table. */
function localTime(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

const COLUMNS: readonly Column[] = [
  { key: 'time', kind: 'str' },
  { key: 'seq', kind: 'int' },
  { key: 'type', kind: 'str' },
  { key: 'pid', kind: 'int' },
  { key: 'comm', kind: 'str' },
  { key: 'summary', kind: 'str' },
];

function row(e: MonitorEvent, table: boolean): Record<string, unknown> {
  return {
    time: table ? localTime(e.time) : e.time,
    seq: e.seq,
    type: e.type,
    pid: e.process?.pid,
    comm: e.process?.comm === undefined ? undefined : table ? printable(e.process.comm) : e.process.comm,
    summary: table ? printable(eventSummary(e)) : eventSummary(e),
  };
}

/**
 * --policy: the alerts a policy raises on recorded events, each stamped with its cause's seq and time, so a
 * policy can be tried on what a monitor saw before it is deployed.
 */
export function replayPolicy(policy: Policy, events: readonly MonitorEvent[]): MonitorEvent[] {
  const out: MonitorEvent[] = [];
  for (const e of events) {
    for (const a of policy.evaluate(e)) out.push({ schema: e.schema, seq: e.seq, time: e.time, ...a, window: a.window ?? e.window });
  }
  return out;
}

/**
 * --follow: prints the matching events, then every new one as a monitor writes it, until SIGINT/SIGTERM
 * (or --limit events). Table format prints live terminal lines; --jsonl one JSON object per line.
 */
async function follow(store: EventStore, query: EventQuery, out: Output, transform: (e: MonitorEvent[]) => MonitorEvent[]): Promise<void> {
  const colour = out.format === 'table' && wantsColour(process.stdout);
  const print = (e: MonitorEvent) => out.text(out.format === 'jsonl' ? toJson(e) : terminalLine(e, colour), true);
  let stopped = false;
  let wake: (() => void) | undefined;
  const stop = () => {
    stopped = true;
    wake?.();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    let after = 0;
    let left = query.limit ?? Infinity;
    while (!stopped && left > 0) {
      const rows = store.queryRows({ ...query, afterRow: after, ...(Number.isFinite(left) ? { limit: left } : {}) });
      for (const r of rows) {
        for (const e of transform([r.event])) print(e);
        after = r.row;
      }
      left -= rows.length;
      if (left <= 0 || stopped) break;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, FOLLOW_INTERVAL_MS);
        wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      wake = undefined;
    }
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}

export const command: Command = {
  name: 'events',
  summary: 'events a monitor recorded in its store (--store), filtered by time, type, pid, key',
  usage: USAGE,
  options: {
    since: { type: 'string' },
    until: { type: 'string' },
    type: { type: 'string', multiple: true },
    pid: { type: 'string' },
    key: { type: 'string' },
    watch: { type: 'string' },
    limit: { type: 'string' },
    follow: { type: 'boolean', short: 'f' },
    policy: { type: 'string' },
  },
  async run(args, ctx) {
    const file = args.positionals[0];
    if (!file) throw new UsageError('missing <store>', { hint: `usage: vmsight events ${USAGE}` });
    if (args.positionals.length > 1) throw new UsageError(`unexpected argument '${args.positionals[1]}'`, { hint: `usage: vmsight events ${USAGE}` });
    const query = queryFromArgs(args);
    const out = ctx.out;
    const policyFile = stringOption(args, 'policy');
    const policy = policyFile === undefined ? undefined : loadPolicy(policyFile);
    const transform = (events: MonitorEvent[]) => (policy ? replayPolicy(policy, events) : events);
    if (args.values['follow'] === true) {
      if (out.format === 'json' || out.format === 'csv') throw new UsageError(`--follow prints lines as they come: use it with the table or --jsonl, not --${out.format}`);
      const store = EventStore.openReadOnly(file);
      try {
        await follow(store, query, out, transform);
      } finally {
        await store.close();
      }
      return 0;
    }
    const store = EventStore.openReadOnly(file);
    let events: MonitorEvent[];
    try {
      events = transform(store.query(query));
    } finally {
      await store.close();
    }
    if (out.format === 'json') out.text(toJson(events, 2), true);
    else if (out.format === 'jsonl') for (const e of events) out.text(toJson(e), true);
    else {
      out.rows(COLUMNS, events.map((e) => row(e, out.format === 'table')));
      if (out.format === 'table' && events.length === 0) out.text('(no events match)');
    }
    return 0;
  },
};
