/**
 * tty_check against the guest's own view: the drivers walked are the ones
 * /proc/tty/drivers lists (driver name, device prefix, major, minor range),
 * every operation pointer of a clean guest resolves into kernel text or a
 * module, and the names are the ones the kernel itself uses (serial's write
 * is uart_write, the console's line discipline receives through n_tty).
 */
import { describe as suite, test } from 'node:test';
import assert from 'node:assert/strict';
import { AnomalySink } from '../../../src/linux/anomaly.js';
import { runPlugin } from '../../../src/linux/plugin.js';
import ttyCheck from '../../../src/linux/plugins/tty_check.js';
import { ttyDrivers } from '../../../src/linux/tty.js';
import { labRun } from '../../../src/lab/exec.js';
import { attachForSuite } from '../../helpers/kernel.js';

/** /proc/tty/drivers rows: name, /dev/prefix, major, first minor, last minor, type. */
function parseDrivers(text: string) {
  return text
    .split('\n')
    .map((l) => /^(.+?)\s+\/dev\/(\S+)\s+(\d+)\s+(\d+)(?:-(\d+))?\s+(\S+)/.exec(l))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ driver: m[1]!.trim(), dev: m[2]!, major: Number(m[3]), first: Number(m[4]), last: Number(m[5] ?? m[4]), type: m[6]! }));
}

for (const kernel of ['6.1', '5.10', '6.12'] as const) {
  suite(`tty_check on ${kernel}`, () => {
    // Lab exec runs in it: an exec guest, not a shared one whose truth others compare with.
    const g = attachForSuite({ kernel, purpose: 'exec' });

    test('the tty drivers are those of /proc/tty/drivers', async () => {
      // The first four lines are pseudo-drivers the proc file prints itself (/dev/tty, /dev/console, /dev/ptmx, /dev/vc/0).
      const truth = parseDrivers(await labRun(g.guest, ['cat', '/proc/tty/drivers'])).filter((d) => !d.type.startsWith('system'));
      assert.ok(truth.some((d) => d.driver === 'serial'), 'the guest has the serial driver');
      const a = new AnomalySink();
      const mine = [...ttyDrivers(g.kernel, a)];
      assert.deepEqual(a.counts, {});
      const asProc = mine.map((d) => ({ driver: d.driverName ?? 'unknown', dev: d.name, major: d.major, first: d.minorStart, last: d.minorStart + d.num - 1 }));
      assert.deepEqual(asProc, truth.map(({ type: _t, ...rest }) => rest));
    });

    test('every operation pointer resolves into kernel text or a module; none is flagged', () => {
      const r = runPlugin(ttyCheck, g.kernel);
      assert.deepEqual(r.anomalyCounts, {});
      assert.ok(r.rows.length > 20);
      const flagged = r.rows.filter((x) => x.suspicious || x.verdict !== 'core-text');
      assert.deepEqual(flagged.map((x) => `${x.driver}.${x.table}.${x.member}=${String(x.symbol)}`), []);
      assert.ok(r.rows.every((x) => typeof x.symbol === 'string'), 'every pointer names a symbol');
    });

    test('the names are the kernel\'s own: serial writes through uart_write, the console receives through n_tty', async () => {
      const r = runPlugin(ttyCheck, g.kernel);
      const serialWrite = r.rows.find((x) => x.driver === 'serial' && x.table === 'tty_operations' && x.member === 'write' && typeof x.tty === 'object');
      assert.equal(serialWrite?.symbol, 'uart_write');
      // ttyS0 is the console the lab prints on: it is open, with the n_tty line discipline.
      const recv = r.rows.find((x) => x.tty === 'ttyS0' && x.table === 'tty_ldisc_ops' && x.member === 'receive_buf');
      assert.ok(recv, 'ttyS0 has a line discipline');
      assert.match(String(recv.symbol), /^n_tty_receive_buf/);
      const ldisc = (await labRun(g.guest, ['cat', '/proc/tty/ldiscs'])).trim();
      assert.match(ldisc, /^n_tty\s+0/m);
    });
  });
}
