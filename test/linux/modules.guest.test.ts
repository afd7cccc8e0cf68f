/** lsmod and hidden_modules against the guest's /proc/modules on 5.10, 6.1, 6.12 and 6.1 with 5-level paging. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import hiddenModules from '../../src/linux/plugins/hidden_modules.js';
import lsmod from '../../src/linux/plugins/lsmod.js';
import { runPlugin } from '../../src/linux/plugin.js';
import { attachForSuite, KERNEL_MATRIX } from '../helpers/kernel.js';

for (const { label: kernel, opts } of KERNEL_MATRIX) {
  describe(`modules on ${kernel}`, { timeout: 600_000 }, () => {
    const g = attachForSuite(opts);
    test('lsmod equals /proc/modules (name, size, refcount, users, state, address, taints)', () => {
      const r = runPlugin(lsmod, g.kernel);
      assert.equal(r.anomalies.length, 0);
      const ours = r.rows.map((m) => [m.name, m.size, m.refcount, m.users.join(','), m.state, m.base.toString(16), m.taints].join(' '));
      const truth = g.truth.modules.map((m) => [m.name, m.size, m.refcount, m.deps.join(','), m.state, m.address.toString(16), m.taint].join(' '));
      assert.ok(truth.length >= 2);
      assert.deepEqual(ours, truth); // same order too: both walk the list from its head
    });
    test('hidden_modules finds nothing on a clean guest, and every view agrees', () => {
      const r = runPlugin(hiddenModules, g.kernel, { all: true });
      assert.equal(r.rows.filter((x) => x.hidden).length, 0);
      for (const m of g.truth.modules) {
        const row = r.rows.find((x) => x.name === m.name);
        assert.ok(row?.inList && row.inSysfs && row.carved, `${m.name}: ${JSON.stringify(row, (_k, v) => (typeof v === 'bigint' ? String(v) : v))}`);
      }
    });
  });
}
