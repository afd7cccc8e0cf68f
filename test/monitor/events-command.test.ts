import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { command, FOLLOW_INTERVAL_MS, parseTimeBound } from '../../src/cli/commands/events.js';
import { findCommand } from '../../src/cli/main.js';
import { runCli } from '../cli/helpers/spawn-cli.js';
import { EVENT_TYPES, type MonitorEvent } from '../../src/monitor/events.js';
import { EventStore } from '../../src/monitor/sinks/store.js';
import { runCommand } from '../cli/helpers/run-command.js';
import { stamper, tempDir } from './helpers/events.js';

/** Runs the real CLI entry point, capturing what it prints. */
/**
 * The CLI as a user runs it, in a process of its own: capturing this process's stdout would also capture the
 * test runner's own reports, which it writes to stdout meanwhile.
 */
async function cli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const r = runCli(argv);
  return { code: r.code ?? -1, out: r.stdout, err: r.stderr };
}

describe('vmsight events', () => {
  const tmp = tempDir();
  const file = path.join(tmp.dir, 'events.db');
  // Events one minute apart ending 10 s ago, so `--since 5m` selects the last five.
  const start = Date.now() - 19 * 60_000 - 10_000;
  const st = stamper(start, 60_000);
  const events: MonitorEvent[] = [];
  before(async () => {
    for (let i = 0; i < 20; i++) {
      const type = i % 4 === 0 ? 'module-load' : i % 4 === 1 ? 'socket-listen' : i % 4 === 2 ? 'process-start' : 'alert';
      events.push(
        st.stamp({
          type,
          watch: type === 'alert' ? 'policy' : type.split('-')[0]!,
          key: `key-${i % 3}`,
          ...(type === 'module-load' ? { data: { name: `mod${i}`, size: 4096 } } : {}),
          ...(type === 'socket-listen' ? { process: { pid: 300 + (i % 2), comm: 'nc' }, data: { proto: 'tcp', localAddress: '0.0.0.0', localPort: 4000 + i } } : {}),
          ...(type === 'process-start' ? { process: { pid: 300 + (i % 2), comm: 'sh', argv: ['/bin/sh', '-c', `job ${i}`] } } : {}),
          ...(type === 'alert' ? { severity: 'high' as const, data: { rule: 'no-listen', reason: 'listener on a forbidden port', cause: i } } : {}),
        }),
      );
    }
    const store = EventStore.open(file);
    events.forEach((e) => store.write(e));
    await store.close();
  });
  after(() => tmp.cleanup());

  it('is registered', async () => {
    assert.equal(await findCommand('events'), command);
  });

  it('prints a table of every event by default', async () => {
    const r = await runCommand(command, [file]);
    assert.equal(r.code, 0, r.error);
    const lines = r.out.trimEnd().split('\n');
    assert.match(lines[0]!, /^time +seq +type +pid +comm +summary$/);
    assert.equal(lines.length, 21);
    assert.match(lines[1]!, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} +1 +module-load +- +- +mod0 size 4096$/);
    assert.match(lines[2]!, / 2 +socket-listen +301 +nc +tcp 0\.0\.0\.0:4001$/);
    assert.match(lines[4]!, / 4 +alert +- +- +\[no-listen\] high listener on a forbidden port \(cause #3\)$/);
  });

  it('gives full events with --json, equal to what was stored', async () => {
    const r = await runCommand(command, [file, '--json']);
    assert.equal(r.code, 0, r.error);
    assert.deepEqual(JSON.parse(r.out), events);
  });

  it('filters by type, pid, key, limit and time (ISO or a duration back from now)', async () => {
    const seqs = async (...argv: string[]) => {
      const r = await runCommand(command, [file, '--json', ...argv]);
      assert.equal(r.code, 0, r.error);
      return (JSON.parse(r.out) as MonitorEvent[]).map((e) => e.seq);
    };
    assert.deepEqual(await seqs('--type', 'module-load,alert'), events.filter((e) => e.type === 'module-load' || e.type === 'alert').map((e) => e.seq));
    assert.deepEqual(await seqs('--type', 'alert', '--type', 'module-load', '--limit', '3'), [1, 4, 5]);
    assert.deepEqual(await seqs('--pid', '301'), events.filter((e) => e.process?.pid === 301).map((e) => e.seq));
    assert.deepEqual(await seqs('--key', 'key-2'), events.filter((e) => e.key === 'key-2').map((e) => e.seq));
    assert.deepEqual(await seqs('--since', '5m'), [16, 17, 18, 19, 20]);
    assert.deepEqual(await seqs('--since', events[2]!.time, '--until', events[4]!.time), [3, 4, 5]);
    assert.deepEqual(await seqs('--watch', 'policy', '--limit', '1'), [4]);
    assert.deepEqual(await seqs('--pid', '999'), []);
  });

  it('writes CSV and JSON Lines through the CLI entry', async () => {
    const csv = await cli(['events', file, '--csv', '--type', 'socket-listen', '--limit', '2']);
    assert.equal(csv.code, 0, csv.err);
    assert.deepEqual(csv.out.trimEnd().split('\n'), [
      'time,seq,type,pid,comm,summary',
      `${events[1]!.time},2,socket-listen,301,nc,tcp 0.0.0.0:4001`,
      `${events[5]!.time},6,socket-listen,301,nc,tcp 0.0.0.0:4005`,
    ]);
    const jsonl = await cli(['events', file, '--jsonl']);
    assert.equal(jsonl.code, 0, jsonl.err);
    assert.deepEqual(jsonl.out.trimEnd().split('\n').map((l) => JSON.parse(l)), events);
  });

  it('rejects an unknown type, naming the valid ones (usage error)', async () => {
    const r = await cli(['events', file, '--type', 'process-start,procss-exit']);
    assert.equal(r.code, 2);
    assert.equal(r.err.split('\n').filter(Boolean).length, 1);
    assert.match(r.err, /--type: unknown event type 'procss-exit': valid types: monitor-started, /);
    for (const t of EVENT_TYPES) assert.ok(r.err.includes(t));
  });

  it('rejects bad times and numbers, and a missing or foreign store, with one line and the right exit code', async () => {
    const bad = await cli(['events', file, '--since', 'yesterday']);
    assert.equal(bad.code, 2);
    assert.match(bad.err, /--since "yesterday": expected an ISO time .* or a duration back from now/);
    assert.equal((await cli(['events', file, '--pid', '-1'])).code, 2);
    assert.equal((await cli(['events', file, '--limit', '0'])).code, 2);
    assert.equal((await cli(['events'])).code, 2);
    const missing = await cli(['events', path.join(tmp.dir, 'nope.db')]);
    assert.equal(missing.code, 3);
    assert.match(missing.err, /nope\.db: no such event store/);
    const foreign = path.join(tmp.dir, 'notes.txt');
    fs.writeFileSync(foreign, 'not a store at all, only text that is long enough to look like a header\n');
    const f = await cli(['events', foreign]);
    assert.equal(f.code, 4);
    assert.match(f.err, /notes\.txt: not a vmsight event store/);
  });

  it('--follow prints matching events, then new ones as a monitor writes them', async () => {
    const live = path.join(tmp.dir, 'live.db');
    const writer = EventStore.open(live, { batchMs: 10 });
    events.slice(0, 3).forEach((e) => writer.write(e));
    await writer.flush();
    // --limit ends the follow once that many events were printed
    const running = runCommand(command, [live, '--follow', '--type', 'module-load,socket-listen', '--limit', '4']);
    await new Promise((r) => setTimeout(r, 3 * FOLLOW_INTERVAL_MS));
    events.slice(3, 8).forEach((e) => writer.write(e));
    await writer.flush();
    const r = await running;
    assert.equal(r.code, 0, r.error);
    const lines = r.out.trimEnd().split('\n');
    assert.equal(lines.length, 4);
    assert.deepEqual(lines.map((l) => l.split(/ +/)[1]), ['module-load', 'socket-listen', 'module-load', 'socket-listen']);
    assert.match(lines[2]!, /^\d\d:\d\d:\d\d\.\d{3} module-load +mod4 size 4096$/);
    await writer.close();
  });

  it('--follow stops on SIGTERM, and refuses --json and --csv', async () => {
    const before = new Set(process.listeners('SIGTERM'));
    const running = runCommand(command, [file, '--follow', '--pid', '999']);
    await new Promise((r) => setTimeout(r, FOLLOW_INTERVAL_MS));
    const ours = process.listeners('SIGTERM').filter((l) => !before.has(l));
    assert.equal(ours.length, 1);
    (ours[0] as () => void)();
    const r = await running;
    assert.equal(r.code, 0, r.error);
    assert.equal(r.out, '');
    assert.deepEqual(process.listeners('SIGTERM').filter((l) => !before.has(l)), []);
    const json = await cli(['events', file, '--follow', '--json']);
    assert.equal(json.code, 2);
    assert.match(json.err, /--follow prints lines as they come/);
  });

  it('--policy shows the alerts a policy raises on the recorded events', async () => {
    const policy = path.join(tmp.dir, 'policy.yaml');
    fs.writeFileSync(policy, 'rules:\n  - name: no-high-ports\n    kind: forbidden-listeners\n    severity: critical\n    ports: ["4010-4019"]\n');
    const r = await runCommand(command, [file, '--policy', policy, '--json']);
    assert.equal(r.code, 0, r.error);
    const alerts = JSON.parse(r.out) as MonitorEvent[];
    const causes = events.filter((e) => e.type === 'socket-listen' && (e.data!['localPort'] as number) >= 4010);
    assert.deepEqual(alerts.map((a) => [a.type, a.seq, a.data!['cause'], a.data!['rule'], a.severity]), causes.map((c) => ['alert', c.seq, c.seq, 'no-high-ports', 'critical']));
    assert.deepEqual(alerts.map((a) => a.time), causes.map((c) => c.time));
    const table = await runCommand(command, [file, '--policy', policy, '--type', 'socket-listen', '--limit', '4']);
    assert.equal(table.code, 0, table.error);
    assert.match(table.out, / 14 +alert +301 +nc +\[no-high-ports\] critical forbidden listener on 0\.0\.0\.0:4013 by 301\/nc \(cause #14\)$/m);
    fs.writeFileSync(policy, 'rules:\n  - name: p\n    kind: forbidden-listeners\n    portz: [1]\n');
    const bad = await cli(['events', file, '--policy', policy]);
    assert.equal(bad.code, 2);
    assert.equal(bad.err, `vmsight: ${policy}:4:5: rule "p": unknown field 'portz' (expected name, kind, severity, description, ports, addresses, comm)\n`);
  });

  it('parses durations back from now and ISO times', () => {
    const now = Date.parse('2026-12-01T12:00:00Z');
    assert.equal(parseTimeBound('30s', '--since', now), now - 30_000);
    assert.equal(parseTimeBound('10m', '--since', now), now - 600_000);
    assert.equal(parseTimeBound('2h', '--since', now), now - 7_200_000);
    assert.equal(parseTimeBound('1d', '--since', now), now - 86_400_000);
    assert.equal(parseTimeBound('2026-12-01T11:00:00Z', '--since', now), now - 3_600_000);
    assert.throws(() => parseTimeBound('10 minutes', '--since', now), /expected an ISO time/);
  });
});
