/**
 * The key facts of one event in a short line: what the terminal sink prints after the time and type, and
 * the `summary` column of `vmsight events`. Reads event fields defensively (data comes from watchers and
 * from stores written by other versions): a missing field is left out, never an error.
 *
 * Field names read (all optional): module-load/unload data.name, data.size; socket-* data.proto,
 * data.local (or localAddress), data.localPort, data.remote (or remoteAddress), data.remotePort, data.path;
 * syscall-hook data.table, data.index, before.symbol (the hooked entry), after.module / after.symbol /
 * after.address (where it points now); idt-change
 * data.vector; cred-change before/after {uid, euid, gid, egid, caps…}; alert data.rule, data.reason,
 * data.cause and severity; dropped data.count, data.sink; kernel-log data.text; process events argv.
 */
import type { EventValue, MonitorEvent } from '../events.js';

type Data = { readonly [k: string]: EventValue } | undefined;

function field(d: Data, ...names: string[]): EventValue | undefined {
  if (!d) return undefined;
  for (const n of names) {
    const v = d[n];
    if (v !== undefined && v !== null && v !== '') return v;
  }
  return undefined;
}

/** A value as short text: arrays joined, records as key=value. */
export function valueText(v: EventValue | undefined): string {
  if (v === undefined || v === null) return '-';
  if (Array.isArray(v)) return v.map((x) => valueText(x as EventValue)).join(',');
  if (typeof v === 'object') {
    return Object.entries(v as Record<string, EventValue>)
      .map(([k, x]) => `${k}=${valueText(x)}`)
      .join(' ');
  }
  return String(v);
}

function endpoint(addr: EventValue | undefined, port: EventValue | undefined): string | undefined {
  if (addr === undefined && port === undefined) return undefined;
  const a = addr === undefined ? '*' : String(addr);
  const host = a.includes(':') && !a.startsWith('[') ? `[${a}]` : a;
  return port === undefined ? host : `${host}:${String(port)}`;
}

function socketText(e: MonitorEvent): string {
  const d = e.data;
  const proto = field(d, 'proto', 'protocol');
  const local = endpoint(field(d, 'localAddress', 'local'), field(d, 'localPort', 'lport'));
  const remote = endpoint(field(d, 'remoteAddress', 'remote'), field(d, 'remotePort', 'rport'));
  const path = field(d, 'path');
  const parts = [proto === undefined ? undefined : String(proto), local, remote === undefined ? undefined : `-> ${remote}`];
  if (path !== undefined) parts.push(String(path));
  return parts.filter((p) => p !== undefined).join(' ');
}

/** before→after for the fields that changed (all of `after` when `before` is missing). */
export function changeText(before: Data, after: Data): string {
  const keys = new Set([...Object.keys(before ?? {}), ...Object.keys(after ?? {})]);
  const parts: string[] = [];
  for (const k of keys) {
    const b = before?.[k];
    const a = after?.[k];
    if (JSON.stringify(b) === JSON.stringify(a)) continue;
    parts.push(`${k} ${valueText(b)}→${valueText(a)}`);
  }
  return parts.join(', ');
}

function processArgv(e: MonitorEvent): string | undefined {
  const argv = e.process?.argv;
  if (!argv || argv.length === 0) return undefined;
  const text = argv.join(' ');
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
}

/** The type-specific facts of an event, in one line without time, type or process. */
export function eventSummary(e: MonitorEvent): string {
  const d = e.data;
  switch (e.type) {
    case 'module-load':
    case 'module-unload':
    case 'hidden-module': {
      const name = field(d, 'name', 'module');
      const size = field(d, 'size');
      return [name === undefined ? e.key : String(name), size === undefined ? undefined : `size ${String(size)}`]
        .filter((x) => x !== undefined)
        .join(' ');
    }
    case 'socket-listen':
    case 'socket-connect':
    case 'socket-close':
      return socketText(e);
    case 'syscall-hook': {
      const table = field(d, 'table');
      const index = field(d, 'index', 'nr');
      // The entry's own symbol (before the hook), and where it points now (a module, a symbol, an address).
      const sym = field(d, 'symbol', 'syscall', 'name') ?? field(e.before, 'symbol');
      const target = field(d, 'target') ?? field(e.after, 'module', 'symbol', 'address') ?? field(d, 'module', 'address');
      const where = [table, index].filter((x) => x !== undefined).map(String).join('#');
      return [sym === undefined ? undefined : String(sym), where ? `(${where})` : undefined, target === undefined ? undefined : `-> ${String(target)}`]
        .filter((x) => x !== undefined)
        .join(' ');
    }
    case 'idt-change': {
      const vector = field(d, 'vector', 'index');
      const change = changeText(e.before, e.after);
      return [vector === undefined ? undefined : `vector ${String(vector)}`, change || undefined].filter((x) => x !== undefined).join(' ');
    }
    case 'cred-change':
      return changeText(e.before, e.after);
    case 'process-exec': {
      const change = changeText(e.before, e.after);
      return change || processArgv(e) || '';
    }
    case 'process-start':
    case 'thread-start':
      return processArgv(e) ?? '';
    case 'alert': {
      const rule = field(d, 'rule');
      const reason = field(d, 'reason');
      const cause = field(d, 'cause');
      return [
        rule === undefined ? undefined : `[${String(rule)}]`,
        e.severity,
        reason === undefined ? undefined : String(reason),
        cause === undefined ? undefined : `(cause #${String(cause)})`,
      ]
        .filter((x) => x !== undefined)
        .join(' ');
    }
    case 'dropped': {
      const count = field(d, 'count');
      const sink = field(d, 'sink');
      return [count === undefined ? undefined : `${String(count)} events`, sink === undefined ? undefined : `by ${String(sink)}`]
        .filter((x) => x !== undefined)
        .join(' ');
    }
    case 'kernel-log': {
      const text = field(d, 'text', 'message');
      if (text === undefined) return '';
      const t = String(text);
      return t.length > 240 ? `${t.slice(0, 237)}...` : t;
    }
    default: {
      if (e.before || e.after) return changeText(e.before, e.after);
      if (!d) return e.key ?? '';
      const text = Object.entries(d)
        .map(([k, v]) => `${k}=${valueText(v)}`)
        .join(' ');
      return text.length > 160 ? `${text.slice(0, 157)}...` : text;
    }
  }
}

/** "pid/comm", or "" when the event is about no process. */
export function processText(e: MonitorEvent): string {
  const p = e.process;
  if (!p) return '';
  return p.comm === undefined ? String(p.pid) : `${p.pid}/${p.comm}`;
}
