/**
 * Process start times as wall-clock dates (issue 10, "Readable output"), on 6.1, 5.10 and 6.12: the `started` column of pslist,
 * psaux, pstree and threads must equal what the guest itself computes, /proc/stat btime + /proc/PID/stat
 * field 22 / USER_HZ (100), within a second (btime is whole seconds, field 22 whole ticks); psaux keeps argv as an
 * array in JSON.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { labRun, labSpawn } from '../../src/lab/exec.js';
import { runPlugin } from '../../src/linux/plugin.js';
import pslist from '../../src/linux/plugins/pslist.js';
import psaux from '../../src/linux/plugins/psaux.js';
import pstree from '../../src/linux/plugins/pstree.js';
import threads from '../../src/linux/plugins/threads.js';
import { attachForSuite } from '../helpers/kernel.js';
import { runCli } from '../cli/helpers/spawn-cli.js';

/** `2026-12-01 22:50:01.123456 UTC` as seconds since the epoch. */
function parseStarted(s: unknown): number {
  assert.equal(typeof s, 'string', `started is a date, got ${JSON.stringify(s)}`);
  const m = /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d)\.(\d{6}) UTC$/.exec(s as string);
  assert.ok(m, `started ${s} has the form YYYY-MM-DD HH:MM:SS.ffffff UTC`);
  return Date.parse(`${m[1]}T${m[2]}Z`) / 1000 + Number(m[3]) / 1e6;
}

for (const kernel of ['6.1', '5.10', '6.12'] as const) {
  describe(`start times as wall-clock dates on ${kernel}`, { timeout: 600_000 }, () => {
    const g = attachForSuite({ kernel, purpose: 'exec' });
    let pid = 0;
    /** The guest's own start time of each pid, seconds since the epoch. */
    const truth = new Map<number, number>();

    before(async () => {
      ({ pid } = await labSpawn(g.guest, ['sleep', '600']));
      const out = await labRun(g.guest, ['sh', '-c', `grep '^btime ' /proc/stat; cat /proc/1/stat /proc/${pid}/stat`]);
      const [btimeLine, ...stats] = out.trim().split('\n');
      const btime = Number(btimeLine!.split(' ')[1]);
      const hz = 100; // USER_HZ, the x86 ABI's CLK_TCK (the guest's busybox has no getconf)
      assert.ok(btime > 1e9 && hz > 0, out);
      for (const line of stats) {
        const fields = line.slice(line.lastIndexOf(')') + 2).split(' '); // after "pid (comm) ": field 3 onwards
        truth.set(Number(line.split(' ')[0]), btime + Number(fields[22 - 3]) / hz);
      }
      assert.equal(truth.size, 2, out);
    });
    after(async () => {
      if (pid) await labRun(g.guest, ['kill', String(pid)]).catch(() => undefined);
    });

    test("pslist's started equals btime + start ticks / USER_HZ for pid 1 and a process started now", () => {
      const r = runPlugin(pslist, g.kernel, { pid: ['1', String(pid)] });
      assert.equal(r.rows.length, 2);
      for (const row of r.rows) {
        const expected = truth.get(row.pid)!;
        const ours = parseStarted(row.started);
        assert.ok(Math.abs(ours - expected) <= 1.01, `pid ${row.pid}: ${row.started} vs guest ${new Date(expected * 1000).toISOString()}`);
      }
      assert.ok(!r.anomalies.some((a) => a.where === 'tk_core.timekeeper'), JSON.stringify(r.anomalies));
    });

    test('psaux, pstree and threads show the same started date as pslist', () => {
      const opts = { pid: [String(pid)] };
      const want = runPlugin(pslist, g.kernel, opts).rows[0]!.started;
      assert.equal(runPlugin(psaux, g.kernel, opts).rows[0]?.started, want);
      assert.equal(runPlugin(pstree, g.kernel, opts).rows[0]?.started, want);
      assert.equal(runPlugin(threads, g.kernel, opts).rows[0]?.started, want);
    });

    test('the CLI table has start_ns and started; psaux --json keeps argv as an array', () => {
      const table = runCli(['pslist', g.guest.name, '--pid', String(pid)]);
      assert.equal(table.code, 0, table.stderr);
      const [head, line] = table.stdout.trim().split('\n');
      assert.match(head!, /\bstart_ns\s+started\b/);
      assert.match(line!, /\d\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6} UTC /);
      const json = runCli(['psaux', g.guest.name, '--pid', String(pid), '--json']);
      assert.equal(json.code, 0, json.stderr);
      const row = (JSON.parse(json.stdout) as { rows: { argv: unknown; args: string; started: string }[] }).rows[0]!;
      assert.deepEqual(row.argv, ['sleep', '600']);
      assert.equal(row.args, 'sleep 600');
      assert.ok(Math.abs(parseStarted(row.started) - truth.get(pid)!) <= 1.01);
    });
  });
}
