/**
 * check_syscall, check_idt and kallsyms on clean 5.10, 6.1 and 6.12 guests:
 * every entry resolves and none is flagged; kallsyms has exactly the
 * guest's core symbol count and the listed modules' symbols.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import checkIdt from '../../src/linux/plugins/check_idt.js';
import checkSyscall from '../../src/linux/plugins/check_syscall.js';
import kallsyms from '../../src/linux/plugins/kallsyms.js';
import { isAbsent, runPlugin } from '../../src/linux/plugin.js';
import { attachForSuite, KERNEL_MATRIX } from '../helpers/kernel.js';

for (const { label: kernel, opts } of KERNEL_MATRIX) {
  describe(`kernel integrity on ${kernel}`, { timeout: 600_000 }, () => {
    const g = attachForSuite(opts);
    test('check_syscall: a full table, every entry a named symbol in kernel text, nothing flagged', () => {
      const r = runPlugin(checkSyscall, g.kernel, { all: true });
      const main = r.rows.filter((x) => x.table === 'sys_call_table');
      assert.ok(main.length >= 400 && main.length < 1024, `${main.length} entries`);
      assert.deepEqual(r.rows.filter((x) => x.suspicious), []);
      assert.ok(main.every((x) => !isAbsent(x.symbol) && !String(x.symbol).includes('+')), 'entries are function starts');
      assert.ok(main.some((x) => x.symbol === '__x64_sys_read' || x.symbol === '__x64_sys_read.cfi_jt'));
    });
    test('check_idt: present gates point into kernel text, nothing flagged', () => {
      const r = runPlugin(checkIdt, g.kernel);
      assert.equal(r.rows.length, 256);
      assert.deepEqual(r.rows.filter((x) => x.suspicious), []);
      assert.equal(r.rows[14]!.symbol, 'asm_exc_page_fault');
      assert.equal(r.rows[0]!.symbol, 'asm_exc_divide_error');
    });
    test('kallsyms: the guest core count, plus every listed module\'s symbols', () => {
      const r = runPlugin(kallsyms, g.kernel);
      const core = r.rows.filter((x) => x.module === '');
      assert.equal(core.length, g.truth.kallsyms.coreCount);
      const mods = new Set(r.rows.filter((x) => x.module).map((x) => x.module));
      for (const m of g.truth.modules) assert.ok(mods.has(m.name), m.name);
      assert.ok(r.rows.length - core.length <= g.truth.kallsyms.taggedCount);
    });
  });
}
