/** kmsg against the guest's `dmesg | tail` on 5.10, 6.1, 6.12 and 6.1 with 5-level paging: every line found, in order, with the same timestamp. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import kmsg from '../../src/linux/plugins/kmsg.js';
import { formatDmesg } from '../../src/linux/printk.js';
import { runPlugin } from '../../src/linux/plugin.js';
import { attachForSuite, KERNEL_MATRIX } from '../helpers/kernel.js';

for (const { label: kernel, opts } of KERNEL_MATRIX) {
  describe(`kernel log on ${kernel}`, { timeout: 600_000 }, () => {
    const g = attachForSuite(opts);
    test('the recent dmesg lines appear as a contiguous run of our records', () => {
      const r = runPlugin(kmsg, g.kernel);
      assert.equal(r.anomalies.length, 0);
      const lines = r.rows.flatMap((x) => formatDmesg({ tsNsec: BigInt(Math.round(x.time * 1e6)) * 1000n, text: x.text }));
      const truth = g.truth.dmesg.map((d) => d.raw);
      assert.ok(truth.length >= 10);
      const start = lines.indexOf(truth[0]!);
      assert.ok(start >= 0, `first dmesg line ${truth[0]} not found`);
      assert.deepEqual(lines.slice(start, start + truth.length), truth);
      const seqs = r.rows.map((x) => x.seq);
      for (let i = 1; i < seqs.length; i++) assert.ok(seqs[i]! > seqs[i - 1]!, 'sequence numbers increase');
    });
  });
}
