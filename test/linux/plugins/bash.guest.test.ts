/**
 * bash against bash's own view: Debian's bash (this bookworm host's
 * /bin/bash and the libraries it links, copied into the guest's tmpfs) runs
 * with HISTTIMEFORMAT set and a known history, writes that history with
 * `history -w` (timestamps and commands, as bash itself has them), and
 * sleeps; the plugin recovers the same commands with the same times from
 * its heap.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import zlib from 'node:zlib';
import { runPlugin } from '../../../src/linux/plugin.js';
import bash from '../../../src/linux/plugins/bash.js';
import { labExec, labRun, labSpawn } from '../../../src/lab/exec.js';
import { attachForSuite } from '../../helpers/kernel.js';

// Lab exec changes a guest (files, the agent's heap): not the shared guests whose truth others compare with.
const g = attachForSuite({ kernel: '6.1', purpose: 'exec' });
const DIR = '/tmp/pa-bash';
const FILES: readonly [string, string][] = [
  ['/bin/bash', 'bash'],
  ['/lib/x86_64-linux-gnu/libtinfo.so.6', 'libtinfo.so.6'],
  ['/lib/x86_64-linux-gnu/libc.so.6', 'libc.so.6'],
  ['/lib64/ld-linux-x86-64.so.2', 'ld-linux-x86-64.so.2'],
];
const COMMANDS = ['echo pa-first', 'cat /etc/pa-second', 'ls -la /tmp/pa-third "with quotes"'];

test('bash history from the heap is the history bash writes', { timeout: 600_000 }, async (t) => {
  if (!FILES.every(([host]) => fs.existsSync(host))) return t.skip('the host has no Debian bash with its libraries');
  await labRun(g.guest, ['mkdir', '-p', DIR, '/lib64']);
  for (const [host, name] of FILES) {
    const r = await labExec(g.guest, ['sh', '-c', `gunzip -c > ${DIR}/${name} && chmod 755 ${DIR}/${name}`], { stdin: zlib.gzipSync(fs.readFileSync(host)), timeoutMs: 300_000 });
    assert.equal(r.exitCode, 0, r.stderr.toString());
  }
  await labRun(g.guest, ['ln', '-sf', `${DIR}/ld-linux-x86-64.so.2`, '/lib64/ld-linux-x86-64.so.2']);
  const script = [
    // Assigned inside bash, so its HISTTIMEFORMAT hook runs and new entries get "#<seconds>" stamps.
    'HISTTIMEFORMAT="%F %T "',
    'set -o history',
    ...COMMANDS.map((c) => `history -s ${JSON.stringify(c).replace(/\$/g, '\\$')}`),
    `history -w ${DIR}/written`,
    'sleep 600',
    'true',
  ].join('; ');
  const { pid } = await labSpawn(g.guest, ['sh', '-c', `export HISTFILE=/dev/null LD_LIBRARY_PATH=${DIR}; exec ${DIR}/bash --norc --noprofile -c '${script}'`]);
  try {
    let written = '';
    for (let i = 0; i < 100 && !written.includes(COMMANDS.at(-1)!); i++) {
      written = (await labExec(g.guest, ['cat', `${DIR}/written`])).stdout.toString();
      if (!written.includes(COMMANDS.at(-1)!)) await new Promise((r) => setTimeout(r, 200));
    }
    // bash's own view: "#<seconds>" then the command, per entry.
    const lines = written.split('\n').filter((l) => l.length);
    const truth: { time: bigint; command: string }[] = [];
    for (let i = 0; i + 1 < lines.length; i += 2) {
      assert.match(lines[i]!, /^#\d+$/);
      truth.push({ time: BigInt(lines[i]!.slice(1)), command: lines[i + 1]! });
    }
    assert.deepEqual(truth.map((x) => x.command), COMMANDS);
    assert.equal((await labRun(g.guest, ['cat', `/proc/${pid}/comm`])).trim(), 'bash');

    const r = runPlugin(bash, g.kernel);
    assert.deepEqual(r.anomalyCounts, {});
    const mine = r.rows.filter((x) => x.pid === pid);
    assert.deepEqual(mine.map((x) => ({ time: x.time, command: x.command })), truth);
    assert.ok(mine.every((x) => x.comm === 'bash'));
    assert.deepEqual(runPlugin(bash, g.kernel, { pid: [String(pid)] }).rows.map((x) => x.command), COMMANDS);
  } finally {
    await labExec(g.guest, ['kill', '-9', String(pid)]);
    await labExec(g.guest, ['rm', '-rf', DIR, '/lib64/ld-linux-x86-64.so.2']);
  }
});
