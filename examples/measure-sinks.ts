/**
 * Measures the sinks' throughput on this machine: events per second into the SQLite store (default batch
 * settings, a producer that honours back-pressure), into a JSON Lines file, and query speed.
 *   node --import tsx examples/measure-sinks.ts [EVENTS]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EventStamper, EventStore, JsonlSink, type EventSink, type MonitorEvent } from '../src/index.js';

const n = Number(process.argv[2] ?? 200_000);
const stamper = new EventStamper();
const events: MonitorEvent[] = [];
for (let i = 0; i < n; i++) {
  events.push(
    stamper.stamp(
      {
        type: i % 3 === 0 ? 'process-start' : i % 3 === 1 ? 'socket-listen' : 'module-load',
        watch: 'bench',
        key: `${100 + (i % 500)}:ffff88800${(i % 4096).toString(16)}`,
        process: { pid: 100 + (i % 500), comm: `proc${i % 50}`, argv: ['/usr/bin/thing', '--flag', String(i)], uid: 1000 },
        data: { localAddress: '0.0.0.0', localPort: i % 65536, name: `mod${i % 80}`, size: 16384 },
      },
      { from: 0, to: 1 },
    ),
  );
}

async function pump(sink: EventSink): Promise<number> {
  const t0 = performance.now();
  for (const e of events) if (!sink.write(e)) await sink.drain?.();
  await sink.close();
  return performance.now() - t0;
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmsight-measure-'));
try {
  const storeFile = path.join(dir, 'events.db');
  const storeMs = await pump(EventStore.open(storeFile));
  const jsonlMs = await pump(JsonlSink.open(path.join(dir, 'events.jsonl')));
  const ro = EventStore.openReadOnly(storeFile);
  let t0 = performance.now();
  const byPid = ro.query({ pid: 123 });
  const pidMs = performance.now() - t0;
  t0 = performance.now();
  const all = ro.query({ types: ['socket-listen'] });
  const typeMs = performance.now() - t0;
  await ro.close();
  const rate = (ms: number) => Math.round(n / (ms / 1000)).toLocaleString('en');
  console.log(`events: ${n}, ${Math.round(JSON.stringify(events[0]).length)} bytes of JSON each`);
  console.log(`store:  ${storeMs.toFixed(0)} ms, ${rate(storeMs)} events/s, ${(fs.statSync(storeFile).size / 1048576).toFixed(1)} MiB`);
  console.log(`jsonl:  ${jsonlMs.toFixed(0)} ms, ${rate(jsonlMs)} events/s`);
  console.log(`query pid=123: ${byPid.length} events in ${pidMs.toFixed(1)} ms; type=socket-listen: ${all.length} events in ${typeMs.toFixed(0)} ms`);
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
