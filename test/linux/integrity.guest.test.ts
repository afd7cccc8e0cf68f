/**
 * check_syscall, check_idt and kallsyms on clean 5.10, 6.1 and 6.12 guests:
 * every entry resolves and none is flagged; kallsyms has exactly the
 * guest's core symbol count, and every module's symbols equal the guest's
 * own /proc/kallsyms lines tagged with that module.
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
    test('kallsyms: the guest core count, and every module\'s symbols equal /proc/kallsyms', () => {
      const r = runPlugin(kallsyms, g.kernel);
      const core = r.rows.filter((x) => x.module === '');
      assert.equal(core.length, g.truth.kallsyms.coreCount);
      // Every module's symbols equal the guest's own /proc/kallsyms lines tagged with that module.
      const tagged = g.truth.kallsyms.tagged;
      assert.ok(tagged, 'the guest printed its tagged /proc/kallsyms lines');
      const line = (x: { address: bigint; type: string; name: string }): string => `${x.address.toString(16).padStart(16, '0')} ${x.type} ${x.name}`;
      assert.ok(g.truth.modules.length >= 4, `${g.truth.modules.length} modules loaded`);
      for (const m of g.truth.modules) {
        const theirs = tagged.filter((x) => x.tag === m.name).map(line).sort();
        const mine = r.rows.filter((x) => x.module === m.name).map(line).sort();
        assert.ok(theirs.length > 0, `the guest lists symbols of ${m.name}`);
        assert.deepEqual(mine, theirs, `symbols of module ${m.name}`);
      }
      const listed = new Set(g.truth.modules.map((m) => m.name));
      assert.deepEqual(r.rows.filter((x) => x.module && !listed.has(x.module)).map((x) => x.module), [], 'no symbols of unlisted modules');
    });
  });
}
