/**
 * Memory and user-memory plugins against the guest's own view on every lab
 * kernel: maps of each scenario process equal /proc/<pid>/maps line for
 * line; argv and environ equal /proc/<pid>/cmdline and environ; elfs finds
 * the mapped executable and the vDSO; malfind finds exactly the guest's
 * writable+executable and file-less executable mappings.
 */
import { describe as suite, test } from 'node:test';
import assert from 'node:assert/strict';
import { isAbsent, runPlugin } from '../../../src/linux/plugin.js';
import maps from '../../../src/linux/plugins/maps.js';
import psaux from '../../../src/linux/plugins/psaux.js';
import envars from '../../../src/linux/plugins/envars.js';
import elfs from '../../../src/linux/plugins/elfs.js';
import malfind from '../../../src/linux/plugins/malfind.js';
import { SCENARIO, SCENARIO_ARGS, SCENARIO_ENV } from '../../../src/lab/index.js';
import { attachForSuite, KERNEL_MATRIX } from '../../helpers/kernel.js';

for (const { label, opts } of KERNEL_MATRIX) {
  suite(`guest ${label}`, () => {
    const g = attachForSuite(opts);

    test('maps of every scenario process equal /proc/<pid>/maps', () => {
      assert.ok(g.truth.details.size >= 5, 'the guest reported its scenario processes');
      for (const [pid, d] of g.truth.details) {
        const r = runPlugin(maps, g.kernel, { pid: [String(pid)] });
        assert.deepEqual(r.anomalyCounts, {}, `anomalies for ${pid}`);
        const mine = r.rows.map((x) => ({ start: x.start, end: x.end, perms: x.perms, offset: x.offset, dev: x.dev, inode: x.inode, path: x.path }));
        const theirs = d.maps.map((x) => ({ start: x.start, end: x.end, perms: x.perms, offset: x.offset, dev: x.dev, inode: x.inode, path: x.path }));
        assert.deepEqual(mine, theirs, `maps of pid ${pid}`);
      }
    });

    test('psaux argv equals every user process cmdline; envars equals environ', () => {
      const r = runPlugin(psaux, g.kernel);
      const byPid = new Map(r.rows.map((x) => [x.pid, x]));
      for (const p of g.truth.processes) {
        const m = byPid.get(p.pid);
        if (!m) continue; // exited (checked by pslist's test)
        if (p.kthread) assert.ok(isAbsent(m.argv), `${p.pid} is a kernel thread`);
        else assert.deepEqual(m.argv, p.cmdline, `argv of ${p.pid}`);
      }
      const args = r.rows.find((x) => x.comm === SCENARIO.args);
      assert.deepEqual(args?.argv, [...SCENARIO_ARGS]);
      for (const [pid, d] of g.truth.details) {
        const env = runPlugin(envars, g.kernel, { pid: [String(pid)] });
        assert.deepEqual(env.rows.map((x) => `${x.key}=${x.value}`), d.environ, `environ of ${pid}`);
      }
      const argsPid = g.truth.processes.find((p) => p.comm === SCENARIO.args)!.pid;
      const env = runPlugin(envars, g.kernel, { pid: [String(argsPid)] });
      assert.deepEqual(env.rows.map((x) => `${x.key}=${x.value}`), [...SCENARIO_ENV]);
    });

    test('elfs finds the executable image and the vDSO of every scenario process', () => {
      const r = runPlugin(elfs, g.kernel);
      for (const [pid, d] of g.truth.details) {
        const mine = r.rows.filter((x) => x.pid === pid);
        const exe = d.maps.find((m) => m.offset === 0n && m.path.startsWith('/'));
        assert.ok(exe, `pid ${pid} maps an executable`);
        assert.ok(mine.some((x) => x.start === exe.start && x.path === exe.path && x.bits === 64), `ELF at ${exe.path} of ${pid}`);
        const vdso = d.maps.find((m) => m.path === '[vdso]');
        if (vdso) assert.ok(mine.some((x) => x.start === vdso.start && x.elfType === 'DYN'), `vDSO of ${pid}`);
        for (const x of mine) assert.ok(d.maps.some((m) => m.start === x.start), 'every ELF row is a mapping the guest has');
      }
    });

    test('malfind reports exactly the guest mappings that are W+X or executable without a file', () => {
      const r = runPlugin(malfind, g.kernel);
      for (const [pid, d] of g.truth.details) {
        const expected = d.maps
          .filter((m) => m.perms[2] === 'x' && (m.perms[1] === 'w' || (m.inode === 0 && !['[vdso]', '[vsyscall]', '[vvar]'].includes(m.path))))
          .map((m) => m.start);
        assert.deepEqual(r.rows.filter((x) => x.pid === pid).map((x) => x.start), expected, `malfind of ${pid}`);
      }
      const files = g.truth.processes.find((p) => p.comm === SCENARIO.files)!;
      assert.ok(r.rows.some((x) => x.pid === files.pid && x.perms === 'rwxp'), 'the scenario RWX region is found');
    });
  });
}
