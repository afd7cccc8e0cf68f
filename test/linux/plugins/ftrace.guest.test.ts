/**
 * ftrace against the guest's own view (6.1 and 6.12): on a clean guest no ops is
 * registered beyond what the guest's enabled_functions shows; enabling a
 * kprobe on do_sys_openat2 registers kprobe_ftrace_ops, and vmsight must
 * show it with the callback and trampoline tracefs prints (`tramp: ADDR
 * (…) ->kprobe_ftrace_handler`), in kernel text, not flagged; removing the
 * kprobe unregisters it.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { labExec, labRun, type LabGuest } from '../../../src/lab/index.js';
import { attachKernel, type AttachedKernel } from '../../../src/linux/attach.js';
import ftrace, { type FtraceRow } from '../../../src/linux/plugins/ftrace.js';
import { sharedGuest } from '../../helpers/guest.js';

const TRACING = '/sys/kernel/tracing';

for (const kernelSpec of ['6.1', '6.12']) {
describe(`ftrace on a ${kernelSpec} guest`, { timeout: 900_000 }, () => {
  let guest: LabGuest;
  let kernel: AttachedKernel;
  const probe = `vmi_kp_${crypto.randomBytes(3).toString('hex')}`;

  before(async () => {
    ({ guest } = await sharedGuest({ kernel: kernelSpec, tools: ['bpftool', 'nft'] }));
    kernel = await attachKernel(`shm:${guest.shmPath}`);
    await labRun(guest, ['sh', '-c', `grep -q ' ${TRACING} tracefs ' /proc/mounts || mount -t tracefs nodev ${TRACING}`]);
  }, { timeout: 600_000 });
  after(async () => {
    if (guest) await labExec(guest, ['sh', '-c', `echo 0 > ${TRACING}/events/kprobes/${probe}/enable; echo -:${probe} >> ${TRACING}/kprobe_events`]).catch(() => undefined);
    await kernel?.close();
  });

  const look = async (): Promise<FtraceRow[]> => {
    const pass = await kernel.pass();
    try {
      const r = pass.run(ftrace);
      assert.deepEqual(r.anomalyCounts, {}, 'no anomalies on a clean guest');
      return r.rows;
    } finally {
      pass.end();
    }
  };
  /** The trampolines and callbacks the guest's enabled_functions names. */
  const guestTramps = async (): Promise<string[]> => {
    const text = await labRun(guest, ['cat', `${TRACING}/enabled_functions`]);
    return [...new Set([...text.matchAll(/tramp: 0x([0-9a-f]+) \([^)]*\) ->([A-Za-z0-9_.]+)/g)].map((m) => `${m[1]} ${m[2]}`))].sort();
  };
  const mineTramps = (rows: readonly FtraceRow[]) =>
    rows.filter((r) => r.trampoline !== 0n && (r.flags.includes('ENABLED'))).map((r) => `${r.trampoline.toString(16)} ${String(r.symbol)}`).sort();

  let baseline: FtraceRow[] = [];
  test('a clean guest: the ops list agrees with enabled_functions, nothing flagged', async () => {
    baseline = await look();
    assert.deepEqual(mineTramps(baseline), await guestTramps());
    assert.deepEqual(baseline.filter((r) => r.suspicious), []);
  });

  test('a kprobe registers kprobe_ftrace_ops with the callback and trampoline the guest shows', async () => {
    await labRun(guest, ['sh', '-c', `echo 'p:${probe} do_sys_openat2' >> ${TRACING}/kprobe_events && echo 1 > ${TRACING}/events/kprobes/${probe}/enable`]);
    const rows = await look();
    const kp = rows.find((r) => r.ops_symbol === 'kprobe_ftrace_ops' || r.ops_symbol === 'kprobe_ipmodify_ops');
    assert.ok(kp, `kprobe ops listed (rows: ${rows.map((r) => String(r.ops_symbol)).join(', ')})`);
    assert.equal(kp.symbol, 'kprobe_ftrace_handler');
    assert.equal(kp.verdict, 'core-text');
    assert.equal(kp.suspicious, false);
    assert.ok(kp.flags.includes('ENABLED'));
    const theirs = await guestTramps();
    assert.ok(theirs.length > 0, 'the guest shows a trampoline for the probed function');
    assert.deepEqual(mineTramps(rows), theirs);
    const hadKprobes = baseline.some((r) => r.ops === kp.ops);
    assert.equal(rows.length, baseline.length + (hadKprobes ? 0 : 1), 'one ops more, unless kprobes were already on');
  });

  test('removing the kprobe unregisters its ops', async () => {
    await labRun(guest, ['sh', '-c', `echo 0 > ${TRACING}/events/kprobes/${probe}/enable && echo -:${probe} >> ${TRACING}/kprobe_events`]);
    const rows = await look();
    assert.deepEqual(rows.map((r) => r.ops), baseline.map((r) => r.ops));
    assert.deepEqual(mineTramps(rows), await guestTramps());
  });
});
}
