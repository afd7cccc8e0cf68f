/**
 * keyboard_notifiers against the guest's own view: the test rootkit loaded
 * with keylog=1 (and otherwise harmless parameters) registers one keyboard
 * notifier; the chain then holds exactly one more block, whose callback is
 * the address the guest's /proc/kallsyms gives vmi_keylog_notify, owned by
 * vmi_rootkit and flagged. After rmmod the chain is as before.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runPlugin } from '../../../src/linux/plugin.js';
import keyboardNotifiers from '../../../src/linux/plugins/keyboard_notifiers.js';
import { labExec, labRun } from '../../../src/lab/exec.js';
import { ROOTKIT, rootkitModule } from '../../../src/lab/rootkit/build.js';
import { attachForSuite } from '../../helpers/kernel.js';

// A guest of its own: it loads the test rootkit (keylog=1) into it.
const g = attachForSuite({ kernel: '6.1', purpose: 'keylog' });

test('a keyboard notifier registered by a module is found, resolved and flagged; gone after rmmod', { timeout: 900_000 }, async () => {
  const before = runPlugin(keyboardNotifiers, g.kernel);
  assert.deepEqual(before.anomalyCounts, {});
  assert.ok(before.rows.every((r) => !r.suspicious), 'a clean guest has no flagged keyboard notifier');
  const ko = await rootkitModule({ kernel: '6.1' });
  const load = await labExec(g.guest, ['sh', '-c', 'cat > /tmp/pa-kbd.ko && insmod /tmp/pa-kbd.ko hide_comm= hook_nr=-1 unlink=0 keylog=1; s=$?; rm -f /tmp/pa-kbd.ko; exit $s'], { stdin: ko, timeoutMs: 300_000 });
  assert.equal(load.exitCode, 0, load.stderr.toString());
  try {
    const sym = (await labRun(g.guest, ['grep', ' vmi_keylog_notify', '/proc/kallsyms'])).trim().split(/\s+/);
    assert.equal(sym[2], 'vmi_keylog_notify');
    const truthAddress = BigInt(`0x${sym[0]}`);
    assert.notEqual(truthAddress, 0n, 'the guest shows real kallsyms addresses to root');
    const after = runPlugin(keyboardNotifiers, g.kernel);
    assert.deepEqual(after.anomalyCounts, {});
    assert.equal(after.rows.length, before.rows.length + 1);
    const mine = after.rows.filter((r) => r.suspicious);
    assert.equal(mine.length, 1);
    assert.equal(mine[0]!.callback, truthAddress);
    assert.equal(mine[0]!.verdict, 'module');
    assert.equal(mine[0]!.module, ROOTKIT.module);
    assert.equal(mine[0]!.symbol, `vmi_keylog_notify [${ROOTKIT.module}]`); // module symbols carry their module, as in /proc/kallsyms
  } finally {
    await labRun(g.guest, ['rmmod', ROOTKIT.module]);
  }
  const gone = runPlugin(keyboardNotifiers, g.kernel);
  assert.deepEqual(gone.rows.map((r) => r.callback), before.rows.map((r) => r.callback));
});
