/**
 * The test rootkit (src/lab/rootkit/vmi_rootkit.c) built against Debian's
 * linux-headers for the lab's 6.1 kernel and loaded in a 6.1 guest: psxview
 * flags the process it hides, check_syscall the sys_call_table entry it
 * hooks (attributed to vmi_rootkit), hidden_modules the module it unlinks.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { processByComm } from '../../../src/lab/index.js';
import { ensureRootkit, ROOTKIT, rootkitModuleFile } from '../../../src/lab/rootkit/build.js';
import checkSyscall from '../../../src/linux/plugins/check_syscall.js';
import hiddenModules from '../../../src/linux/plugins/hidden_modules.js';
import lsmod from '../../../src/linux/plugins/lsmod.js';
import psxview from '../../../src/linux/plugins/psxview.js';
import { runPlugin } from '../../../src/linux/plugin.js';
import { attachForSuite } from '../../helpers/kernel.js';

describe('test rootkit on 6.1', { timeout: 900_000 }, () => {
  const g = attachForSuite(async () => ({ kernel: '6.1', extraModules: [rootkitModuleFile(await ensureRootkit({ kernel: '6.1' }))] }), { timeoutMs: 900_000 });

  test('the guest says the rootkit did its three things', () => {
    assert.deepEqual(g.truth.warnings, []);
    // /proc/modules no longer lists it: it unlinked itself.
    assert.equal(g.truth.modules.find((m) => m.name === ROOTKIT.module), undefined);
    // ps reads /proc, which looks tasks up by pid: the hidden process still shows there.
    assert.ok(processByComm(g.truth, ROOTKIT.hideComm));
  });

  test('psxview flags the hidden process', () => {
    const hidden = processByComm(g.truth, ROOTKIT.hideComm)!;
    const r = runPlugin(psxview, g.kernel);
    const row = r.rows.find((x) => x.pid === hidden.pid);
    assert.ok(row, `pid ${hidden.pid} found by some view`);
    assert.equal(row.pslist, false);
    assert.equal(row.pidIdr, true);
    assert.equal(row.hidden, true);
    assert.deepEqual(r.rows.filter((x) => x.hidden).map((x) => x.pid), [hidden.pid]);
  });

  test('check_syscall flags the hooked entry, owned by vmi_rootkit', () => {
    const r = runPlugin(checkSyscall, g.kernel);
    const flagged = r.rows.filter((x) => x.suspicious);
    assert.deepEqual(flagged.map((x) => `${x.table}[${x.index}]`), [`sys_call_table[${ROOTKIT.hookNr}]`]);
    assert.equal(flagged[0]!.verdict, 'module');
    assert.equal(flagged[0]!.module, ROOTKIT.module);
    assert.equal(flagged[0]!.symbol, `hooked_entry [${ROOTKIT.module}]`);
    // Debian's 6.1.192 dispatches through x64_sys_call: the hook is visible but never called, and the row says so.
    assert.deepEqual([flagged[0]!.dispatcher, flagged[0]!.dispatched], ['x64_sys_call', false]);
    assert.equal(flagged[0]!.note, 'never called: x64_sys_call dispatches x64 system calls, not this table');
    assert.ok(r.rows.some((x) => x.table === 'x64_sys_call' && x.dispatched && !x.suspicious), 'the switch is checked and clean');
  });

  test('hidden_modules finds the unlinked module through sysfs and carving; lsmod does not list it', () => {
    const r = runPlugin(hiddenModules, g.kernel);
    assert.equal(r.rows.length, 1);
    const m = r.rows[0]!;
    assert.equal(m.name, ROOTKIT.module);
    assert.deepEqual([m.inList, m.inSysfs, m.carved, m.hidden], [false, true, true, true]);
    assert.equal(m.taints, 'OE');
    assert.equal(runPlugin(lsmod, g.kernel).rows.find((x) => x.name === ROOTKIT.module), undefined);
  });
});
