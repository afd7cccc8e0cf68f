/**
 * iomem against the guest's own /proc/iomem (printed by the lab at boot, as
 * root) and /proc/ioports (read now through the exec channel): the same
 * ranges, names and nesting, in the same order.
 */
import { describe as suite, test } from 'node:test';
import assert from 'node:assert/strict';
import { runPlugin } from '../../../src/linux/plugin.js';
import iomem, { type IomemRow } from '../../../src/linux/plugins/iomem.js';
import { labRun } from '../../../src/lab/exec.js';
import { parseIomem } from '../../../src/lab/procfs.js';
import { attachForSuite } from '../../helpers/kernel.js';

/** /proc/iomem indents at most MAX_IORES_LEVEL (5) levels (kernel/resource.c r_show). */
const PROC_MAX_DEPTH = 5;

const asProc = (rows: readonly IomemRow[]) =>
  rows.map((r) => ({ start: r.start, end: r.end, name: typeof r.name === 'string' ? r.name : '<BAD>', depth: Math.min(r.depth, PROC_MAX_DEPTH) }));

for (const kernel of ['6.1', '5.10', '6.12'] as const) {
  suite(`iomem on ${kernel}`, () => {
    // Lab exec runs in it: an exec guest, not a shared one whose truth others compare with.
    const g = attachForSuite({ kernel, purpose: 'exec' });

    test('the iomem_resource tree is /proc/iomem: every range, name and depth, in order', () => {
      const r = runPlugin(iomem, g.kernel);
      assert.deepEqual(r.anomalyCounts, {});
      assert.ok(g.truth.iomem.length > 10, 'the guest printed its /proc/iomem');
      assert.deepEqual(asProc(r.rows), g.truth.iomem);
      assert.ok(r.rows.some((x) => x.name === 'Kernel code' && x.depth === 1));
    });

    test('--ioports is /proc/ioports', async () => {
      const truth = parseIomem((await labRun(g.guest, ['cat', '/proc/ioports'])).split('\n'));
      assert.ok(truth.length > 5, 'the guest has I/O port ranges');
      const r = runPlugin(iomem, g.kernel, { ioports: true });
      assert.deepEqual(r.anomalyCounts, {});
      assert.deepEqual(asProc(r.rows), truth);
    });
  });
}
