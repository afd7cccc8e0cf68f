/**
 * Live read keeps blocks for a pass (PhysicalMemory.passBlockBytes): on a real guest, a pass must still
 * see the guest as it is when the pass starts. A process execs (its comm changes inside the same
 * task_struct, the same block) between two runPlugin calls that refresh nothing: the second must show
 * the new comm, and agree with the guest's own /proc. Acts inside the guest: a guest of that purpose.
 */
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { labExec, labRun, labSpawn } from '../../src/lab/exec.js';
import type { LabGuest } from '../../src/lab/index.js';
import { attachKernel } from '../../src/linux/attach.js';
import { runPlugin } from '../../src/linux/plugin.js';
import pslist from '../../src/linux/plugins/pslist.js';
import { sharedGuest, withQmpSocket } from '../helpers/guest.js';

const HELPER = '/bin/vmi-helper';
let g: LabGuest;
before(async () => {
  ({ guest: g } = await sharedGuest({ kernel: '6.1', purpose: 'exec' }));
});

async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('live read in pass blocks: an exec between two runPlugin calls (no refresh) is seen by the second', async () => {
  await withQmpSocket(g, async (socket) => {
    const kernel = await attachKernel(`qmp:${socket}`, { technique: 'live-read', cache: false });
    const { pid } = await labSpawn(g, [HELPER, 'execafter', '2500', '/bin/sleep', '30']);
    try {
      assert.equal(kernel.memory.technique.name, 'qemu-process');
      assert.ok(kernel.memory.passBlockBytes! >= 4096, 'live read asks for pass blocks');
      const phys = kernel.space.translator.tables.phys;
      const generation = kernel.memory.generation;
      const commOf = (): string | undefined => runPlugin(pslist, kernel).rows.find((r) => r.pid === pid)?.comm;
      await waitFor('vmi-execafter in pslist', () => (commOf() === 'vmi-execafter' ? true : undefined));
      // Inside a pass the blocks serve most reads: few source reads for the whole task list.
      const pass = kernel.startPass();
      const rows = pass.run(pslist).rows;
      const stats = { ...phys.passBlocks!.stats };
      pass.end();
      assert.ok(stats.hits > stats.fetches, `${stats.hits} reads served from ${stats.fetches} block fetches`);
      assert.ok(stats.fetches < rows.length, `${stats.fetches} fetches for ${rows.length} processes`);
      assert.equal(phys.passBlocks, undefined, 'no pass open: nothing kept');
      // The exec renames the task in place; every runPlugin (a pass of its own) must see it once it happened.
      await waitFor('the exec in the guest', async () => ((await labRun(g, ['cat', `/proc/${pid}/comm`])).trim() === 'sleep' ? true : undefined));
      assert.equal(commOf(), 'sleep', 'the first pass after the exec shows the new comm');
      assert.equal(kernel.memory.generation, generation, 'no refresh happened: freshness comes from the pass');
    } finally {
      await labExec(g, ['kill', '-9', String(pid)]).catch(() => undefined);
      await kernel.close();
    }
  });
});
