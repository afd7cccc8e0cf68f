/**
 * The monitor's event model: a public, versioned interface. Every change of the watched kernel state becomes
 * one MonitorEvent; sinks (JSON Lines, the SQLite store, the terminal), policies, the trade-off study and
 * future consumers (fleet view, dashboard) read only this. Adding an event type or an optional field is a
 * minor change; renaming or removing one bumps EVENT_SCHEMA_VERSION.
 *
 * Times: `time` is the host's wall clock (ISO 8601, ms) when the event was made; `window` is the pass
 * window the change happened in: the previous pass's start (the last moment it was seen the old way) and
 * the current pass's start (the first moment it was seen the new way), both host milliseconds since the Unix
 * epoch. `guestTimeNs`, when present, is the guest's own CLOCK_MONOTONIC (ns since boot) read from its
 * timekeeping data at the pass that saw the change.
 */

export const EVENT_SCHEMA_VERSION = 1;

/** Every event type, in the order the README documents them. */
export const EVENT_TYPES = [
  'monitor-started', // the monitor attached (technique, kernel, watch set)
  'monitor-stopped', // the monitor ended (reason, totals)
  'process-start',
  'process-exit',
  'process-exec', // comm or argv changed under the same task
  'thread-start',
  'thread-exit',
  'unseen-starts', // tasks that started (and usually exited) between two passes, counted by the kernel's own counters
  'module-load',
  'module-unload',
  'socket-listen',
  'socket-connect',
  'socket-close',
  'file-open', // opt-in (--watch files)
  'file-close',
  'cred-change', // uid/gid or capabilities changed without an exec
  'syscall-hook', // a sys_call_table entry changed
  'idt-change', // an IDT gate changed
  'hidden-process', // a task in one kernel view and missing from another (psxview)
  'hidden-module', // a module outside the modules list (hidden_modules)
  'kernel-log', // a new printk record
  'guest-rebooted', // new banner, KASLR shift or boot: the monitor re-attached
  'guest-paused',
  'guest-resumed',
  'anomaly', // torn reads or corrupt structures met in a pass, aggregated per pass
  'dropped', // events a sink could not take, counted
  'alert', // a policy rule matched an event
] as const;

export type EventType = (typeof EVENT_TYPES)[number];

export type Severity = 'info' | 'low' | 'medium' | 'high' | 'critical';

/** JSON-safe values: numbers within 2^53, strings (addresses as 0x… hex), booleans, null, arrays, records. */
export type EventValue = string | number | boolean | null | readonly EventValue[] | { readonly [k: string]: EventValue };

/** The process an event is about (or the owner of the object it is about). */
export interface EventProcess {
  readonly pid: number;
  readonly tgid?: number;
  readonly ppid?: number;
  readonly comm?: string;
  readonly argv?: readonly string[];
  readonly uid?: number;
  readonly euid?: number;
  /** Inode number of the pid namespace (container identity). */
  readonly pidns?: number;
  /** The task_struct address, as 0x… hex. */
  readonly task?: string;
}

export interface MonitorEvent {
  readonly schema: typeof EVENT_SCHEMA_VERSION;
  /** Monotonically increasing within one monitor run, from 1. */
  readonly seq: number;
  readonly type: EventType;
  /** Host wall-clock time the event was made (ISO 8601). */
  readonly time: string;
  /** Pass window: previous and current pass start, host ms since the epoch. */
  readonly window: { readonly from: number; readonly to: number };
  /** Which watch produced it: 'processes', 'modules', 'sockets', …, or 'monitor'. */
  readonly watch: string;
  /** The object's identity across passes (the plugin row key), when the event is about an object. */
  readonly key?: string;
  readonly process?: EventProcess;
  /** Field values before and after, for changes. */
  readonly before?: { readonly [k: string]: EventValue };
  readonly after?: { readonly [k: string]: EventValue };
  /** Type-specific facts (module name and size, socket addresses, hooked symbol, log text, …). */
  readonly data?: { readonly [k: string]: EventValue };
  /** Guest CLOCK_MONOTONIC at the pass that saw the change, ns since boot. */
  readonly guestTimeNs?: number;
  readonly severity?: Severity;
}

/** What a producer fills in; the monitor adds schema, seq and time. */
export type EventDraft = Omit<MonitorEvent, 'schema' | 'seq' | 'time' | 'window'> & {
  readonly window?: MonitorEvent['window'];
};

/** Hands out sequence numbers and stamps drafts into events. */
export class EventStamper {
  private nextSeq = 1;

  constructor(private readonly now: () => number = Date.now) {}

  get lastSeq(): number {
    return this.nextSeq - 1;
  }

  stamp(draft: EventDraft, window: MonitorEvent['window']): MonitorEvent {
    return {
      schema: EVENT_SCHEMA_VERSION,
      seq: this.nextSeq++,
      time: new Date(this.now()).toISOString(),
      ...draft,
      window: draft.window ?? window,
    };
  }
}

/**
 * Where events go. `write` may be called at the monitor's rate; a sink that cannot keep up applies
 * back-pressure (its write returns false until `drain` resolves) or drops and counts (`dropped`), never
 * losing an event silently. `close` flushes; it is called once, also on Ctrl-C.
 */
export interface EventSink {
  readonly name: string;
  /** True when taken; false when the sink is full (the caller may await drain() or count a drop). */
  write(event: MonitorEvent): boolean;
  /** Resolves when a full sink can take events again. */
  drain?(): Promise<void>;
  /** Events this sink had to drop so far. */
  readonly dropped: number;
  flush(): Promise<void>;
  close(): Promise<void>;
}

/** Hex of a bigint address, the way events carry addresses. */
export function hexAddress(v: bigint): string {
  return `0x${v.toString(16)}`;
}
