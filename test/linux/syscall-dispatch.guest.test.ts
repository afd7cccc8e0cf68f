/**
 * check_syscall on current kernels (issue 10): which mechanism dispatches each ABI, decided from the entry
 * code, against the guest's own /proc/kallsyms; on switch kernels (6.1's backport, 6.12) every branch
 * target of the switch is a handler in core text and the x64 switch reaches exactly the handlers the table
 * holds; on 5.10 (Debian's 5.10.262 has no switch) do_syscall_64 loads from sys_call_table itself.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { labRun } from '../../src/lab/exec.js';
import { isAbsent, runPlugin } from '../../src/linux/plugin.js';
import checkSyscall from '../../src/linux/plugins/check_syscall.js';
import { syscallDispatch } from '../../src/linux/syscall-dispatch.js';
import { attachForSuite } from '../helpers/kernel.js';

const HANDLER = /^__(x64|ia32|x32)_(compat_)?sys_[a-z0-9_]+$/;

for (const kernel of ['6.1', '5.10', '6.12'] as const) {
  describe(`system call dispatch on ${kernel}`, { timeout: 600_000 }, () => {
    // Lab exec runs in it: an exec guest, not a shared one whose truth others compare with.
    const g = attachForSuite({ kernel, purpose: 'exec' });

    test("the dispatcher of each ABI is the guest's own symbol, and do_syscall_64's code names it", async () => {
      const out = await labRun(g.guest, ['sh', '-c', "grep -E ' ((x64|ia32|x32)_sys_call|(ia32_|x32_)?sys_call_table|do_syscall_64)$' /proc/kallsyms"]);
      const theirs = new Map(out.trim().split('\n').map((l) => l.split(' ')).map(([a, , n]) => [n!, BigInt(`0x${a}`)]));
      assert.ok(theirs.has('sys_call_table') && theirs.has('do_syscall_64'), out);
      const d = syscallDispatch(g.kernel);
      const x64 = d.find((x) => x.abi === 'x64')!;
      const expected = theirs.has('x64_sys_call') ? 'x64_sys_call' : 'sys_call_table';
      assert.equal(x64.dispatcher, expected);
      assert.equal(x64.address, theirs.get(expected), 'at the address the guest gives');
      assert.equal(x64.basis, 'code', 'decided from do_syscall_64 itself');
      assert.equal(x64.entry, 'do_syscall_64');
      assert.ok(x64.site! >= theirs.get('do_syscall_64')! && x64.site! < theirs.get('do_syscall_64')! + 4096n);
      if (kernel !== '5.10') assert.equal(x64.kind, 'switch', `${kernel} dispatches through x64_sys_call`);
      for (const x of d) assert.ok(theirs.has(x.dispatcher), `${x.abi}: ${x.dispatcher} is a guest symbol`);
    });

    test('nothing flagged; switch targets are core-text handlers and equal the table entries; tables say whether they dispatch', () => {
      const r = runPlugin(checkSyscall, g.kernel, { all: true });
      assert.deepEqual(r.rows.filter((x) => x.suspicious), []);
      assert.deepEqual(r.anomalies.filter((a) => /sys_call/.test(a.where)), []);
      const table = r.rows.filter((x) => x.table === 'sys_call_table');
      const switchRows = r.rows.filter((x) => x.table === 'x64_sys_call');
      assert.ok(table.length >= 400);
      if (switchRows.length) {
        assert.ok(table.every((x) => !x.dispatched && x.dispatcher === 'x64_sys_call'));
        assert.ok(switchRows.every((x) => x.dispatched && x.verdict === 'core-text' && !isAbsent(x.symbol) && HANDLER.test(String(x.symbol))), 'every target a handler');
        assert.deepEqual(new Set(switchRows.map((x) => x.symbol)), new Set(table.map((x) => x.symbol)), 'the switch reaches exactly the table handlers');
        assert.match(switchRows[0]!.evidence, /^do_syscall_64 calls x64_sys_call at 0x/);
      } else {
        assert.ok(table.every((x) => x.dispatched && x.dispatcher === 'sys_call_table'));
        assert.match(table[0]!.evidence, /^do_syscall_64 loads from sys_call_table at 0x/);
      }
      const ia32 = r.rows.filter((x) => x.abi === 'ia32');
      assert.ok(ia32.length >= 300, `${ia32.length} ia32 rows (table or switch)`);
    });
  });
}
