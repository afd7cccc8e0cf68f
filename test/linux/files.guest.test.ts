/**
 * lsof against /proc/PID/fd and fdinfo of every scenario process on 5.10, 6.1
 * and 6.12: same fds, same targets (paths, socket:[ino]), same flags and
 * positions, and no extra fd.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import lsof from '../../src/linux/plugins/lsof.js';
import { runPlugin } from '../../src/linux/plugin.js';
import { attachForSuite, KERNEL_MATRIX } from '../helpers/kernel.js';

for (const { label: kernel, opts } of KERNEL_MATRIX) {
  describe(`open files on ${kernel}`, { timeout: 600_000 }, () => {
    const g = attachForSuite(opts);

    test('every fd of every scenario process, with path, flags and position', () => {
      const r = runPlugin(lsof, g.kernel);
      assert.equal(r.anomalies.length, 0, JSON.stringify(r.anomalies.slice(0, 3)));
      assert.ok(g.truth.details.size >= 5);
      for (const [pid, d] of g.truth.details) {
        const ours = r.rows.filter((x) => x.pid === pid).map((x) => `${x.fd} ${x.path} ${x.pos} ${x.flags}`);
        const truth = d.fds.map((f) => `${f.fd} ${f.target} ${f.pos ?? 0} ${f.flags ?? ''}`);
        assert.deepEqual(ours, truth, `pid ${pid}`);
      }
    });

    test('kinds: the data file is regular, sockets are sockets, /dev/null a char device 1:3', () => {
      const r = runPlugin(lsof, g.kernel);
      const data = r.rows.find((x) => x.path === '/tmp/vmi-data.txt');
      assert.equal(data?.kind, 'regular');
      assert.ok(r.rows.filter((x) => x.path.startsWith('socket:[')).every((x) => x.kind === 'socket'));
      const devnull = r.rows.find((x) => x.path === '/dev/null');
      assert.equal(devnull?.kind, 'char');
      assert.equal(devnull?.device, '1:3');
    });
  });
}
