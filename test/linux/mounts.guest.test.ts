/** mountinfo against the guest's /proc/1/mountinfo on 5.10, 6.1, 6.12 and 6.1 with 5-level paging (list, and rbtree where the kernel has it). */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import mountinfo from '../../src/linux/plugins/mountinfo.js';
import { runPlugin } from '../../src/linux/plugin.js';
import { attachForSuite, KERNEL_MATRIX } from '../helpers/kernel.js';

for (const { label: kernel, opts } of KERNEL_MATRIX) {
  describe(`mounts on ${kernel}`, { timeout: 600_000 }, () => {
    const g = attachForSuite(opts);
    test('same mounts with the same ids, devices, roots, mount points, options, types and sources', () => {
      const r = runPlugin(mountinfo, g.kernel);
      assert.equal(r.anomalies.length, 0, JSON.stringify(r.anomalies.slice(0, 3)));
      const ours = r.rows.map((m) => [m.id, m.parentId, m.dev, m.root, m.mountPoint, m.options, m.fsType, m.source].join(' '));
      const truth = g.truth.mounts.map((m) => [m.id, m.parentId, `${m.major}:${m.minor}`, m.root, m.mountPoint, m.options, m.fsType, m.source].join(' '));
      assert.ok(truth.length >= 5);
      assert.deepEqual(ours.sort(), truth.sort());
    });
  });
}
