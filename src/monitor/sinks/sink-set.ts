/**
 * Fans each event out to several sinks. One sink that throws or fills up does not stop the others: its
 * failures count as its drops. `dropReport()` gives the drops per sink since the last call, for the monitor
 * to turn into `dropped` events; `close()` closes every sink and reports the ones that failed instead of
 * throwing.
 */
import type { EventSink, MonitorEvent } from '../events.js';

export interface SinkDrops {
  readonly sink: string;
  readonly count: number;
}

export interface SinkFailure {
  readonly sink: string;
  readonly error: Error;
}

interface Entry {
  readonly sink: EventSink;
  /** Writes that threw (the sink itself did not count them). */
  thrown: number;
  /** Drops already handed out by dropReport(). */
  reported: number;
  lastError?: Error;
}

function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}

export class SinkSet {
  private readonly entries: Entry[];
  private closed = false;

  constructor(sinks: readonly EventSink[]) {
    this.entries = sinks.map((sink) => ({ sink, thrown: 0, reported: 0 }));
  }

  get sinks(): readonly EventSink[] {
    return this.entries.map((e) => e.sink);
  }

  /** True when every sink took the event without asking to slow down; false: await drain(). */
  write(event: MonitorEvent): boolean {
    let ok = true;
    for (const e of this.entries) {
      try {
        if (!e.sink.write(event)) ok = false;
      } catch (err) {
        e.thrown++;
        e.lastError = asError(err);
        ok = false;
      }
    }
    return ok;
  }

  /** Resolves when every sink can take events again. */
  async drain(): Promise<void> {
    await Promise.all(this.entries.map((e) => (e.sink.drain ? e.sink.drain().catch(() => undefined) : undefined)));
  }

  /** Drops of one sink since the set was made (its own count plus writes that threw). */
  droppedBy(sink: EventSink): number {
    const e = this.entries.find((x) => x.sink === sink);
    return e ? e.sink.dropped + e.thrown : 0;
  }

  /** Total drops over all sinks. */
  get dropped(): number {
    return this.entries.reduce((n, e) => n + e.sink.dropped + e.thrown, 0);
  }

  /** True when some sink dropped since the last dropReport() (the per-tick question, without allocating). */
  hasDrops(): boolean {
    for (const e of this.entries) if (e.sink.dropped + e.thrown > e.reported) return true;
    return false;
  }

  /** Drops per sink since the last call (only sinks that dropped). */
  dropReport(): SinkDrops[] {
    const out: SinkDrops[] = [];
    for (const e of this.entries) {
      const total = e.sink.dropped + e.thrown;
      if (total > e.reported) out.push({ sink: e.sink.name, count: total - e.reported });
      e.reported = total;
    }
    return out;
  }

  /** Flushes every sink; returns the ones that failed. */
  async flush(): Promise<SinkFailure[]> {
    return this.each((s) => s.flush());
  }

  /** Closes every sink once (flushing them); never throws: returns the sinks that failed. */
  async close(): Promise<SinkFailure[]> {
    if (this.closed) return [];
    this.closed = true;
    return this.each((s) => s.close());
  }

  private async each(op: (s: EventSink) => Promise<void>): Promise<SinkFailure[]> {
    const results = await Promise.allSettled(
      this.entries.map(async (e) => {
        await op(e.sink);
      }),
    );
    const failures: SinkFailure[] = [];
    results.forEach((r, i) => {
      if (r.status === 'rejected') failures.push({ sink: this.entries[i]!.sink.name, error: asError(r.reason) });
    });
    return failures;
  }
}
