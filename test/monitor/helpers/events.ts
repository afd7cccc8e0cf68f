/** Builds MonitorEvents for sink and policy tests, stamped the way the monitor stamps them. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EventStamper, type EventDraft, type EventSink, type EventType, type MonitorEvent } from '../../../src/monitor/events.js';

/** A stamper whose clock starts at `start` and advances `stepMs` per event. */
export function stamper(start = Date.parse('2026-12-01T10:00:00.000Z'), stepMs = 1000): { stamp(d: EventDraft): MonitorEvent } {
  let now = start;
  const s = new EventStamper(() => {
    const t = now;
    now += stepMs;
    return t;
  });
  return { stamp: (d) => s.stamp(d, { from: now - stepMs, to: now }) };
}

const TYPES: EventType[] = ['process-start', 'process-exit', 'module-load', 'socket-listen', 'cred-change', 'kernel-log'];

/** `n` varied events: several types, pids 100+i%7, keys, nested data. */
export function sampleEvents(n: number, start?: number): MonitorEvent[] {
  const st = stamper(start);
  const out: MonitorEvent[] = [];
  for (let i = 0; i < n; i++) {
    const type = TYPES[i % TYPES.length]!;
    out.push(
      st.stamp({
        type,
        watch: type.split('-')[0]!,
        key: `k${i % 13}`,
        process: { pid: 100 + (i % 7), comm: `proc${i % 7}`, argv: ['/bin/x', String(i)], uid: 1000 },
        data: { i, text: `event ${i} "quoted" ü`, nested: { list: [1, 'two', null, true] } },
        ...(type === 'cred-change' ? { before: { uid: 1000, euid: 1000 }, after: { uid: 0, euid: 0 } } : {}),
      }),
    );
  }
  return out;
}

/** A temp folder removed by `cleanup()`. */
export function tempDir(prefix = 'vmsight-test-monitor-'): { dir: string; cleanup(): void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  return { dir, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/** A sink that keeps every event, and lets a test wait for one. */
export class CollectingSink implements EventSink {
  readonly name = 'collect';
  readonly dropped = 0;
  readonly events: MonitorEvent[] = [];
  private waiters: { pred: (e: MonitorEvent) => boolean; resolve: (e: MonitorEvent) => void }[] = [];
  write(e: MonitorEvent): boolean {
    this.events.push(e);
    this.waiters = this.waiters.filter((w) => (w.pred(e) ? (w.resolve(e), false) : true));
    return true;
  }
  async flush(): Promise<void> {}
  async close(): Promise<void> {}
  /** The first event (already seen or to come) matching `pred`. */
  until(what: string, pred: (e: MonitorEvent) => boolean, timeoutMs = 60_000): Promise<MonitorEvent> {
    const seen = this.events.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no ${what} event within ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push({ pred, resolve: (e) => (clearTimeout(t), resolve(e)) });
    });
  }
  of(type: MonitorEvent['type']): MonitorEvent[] {
    return this.events.filter((e) => e.type === type);
  }
}
