/**
 * pagecache against the guest's own view: a file written in the guest's
 * tmpfs (/tmp) with random content and an odd size is listed with the
 * path, inode number, size and page count the guest reports (stat), and
 * --dump by path or by inode number writes exactly its bytes (as read back
 * with cat in the guest).
 */
import { after, describe as suite, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runPlugin } from '../../../src/linux/plugin.js';
import pagecache from '../../../src/linux/plugins/pagecache.js';
import { labExec, labRun } from '../../../src/lab/exec.js';
import { attachForSuite } from '../../helpers/kernel.js';

const SIZE = 123_457; // 30 full pages and a partial one
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmsight-pagecache-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

for (const kernel of ['6.1', '5.10', '6.12'] as const) {
  suite(`pagecache on ${kernel}`, () => {
    // Lab exec changes a guest (files, the agent's heap): not the shared guests whose truth others compare with.
    const g = attachForSuite({ kernel, purpose: 'exec' });
    const FILE = `/tmp/pa-pagecache-${kernel}.bin`;

    test('a tmpfs file is listed with its inode, size and pages, and dumps to its exact content', { timeout: 300_000 }, async () => {
      await labRun(g.guest, ['sh', '-c', `head -c ${SIZE} /dev/urandom > ${FILE}`]);
      try {
        const content = (await labExec(g.guest, ['cat', FILE])).stdout;
        assert.equal(content.length, SIZE);
        const [ino, size] = (await labRun(g.guest, ['stat', '-c', '%i %s', FILE])).trim().split(' ').map(BigInt);
        const r = runPlugin(pagecache, g.kernel);
        assert.deepEqual(r.anomalyCounts, {});
        const row = r.rows.find((x) => x.path === FILE);
        assert.ok(row, `${FILE} is listed`);
        assert.equal(row.fs, 'tmpfs');
        assert.equal(row.ino, ino);
        assert.equal(row.size, size);
        assert.equal(row.type, 'regular');
        assert.equal(row.pages, BigInt(Math.ceil(SIZE / 4096)));
        assert.ok(r.rows.length > 5 && r.rows.every((x) => x.pages > 0n));

        for (const spec of [FILE, String(ino)]) {
          const d = runPlugin(pagecache, g.kernel, { dump: spec, 'dump-dir': dir });
          assert.deepEqual(d.anomalyCounts, {});
          const mine = d.rows.filter((x) => x.fs === 'tmpfs' && x.ino === ino);
          assert.equal(mine.length, 1, `--dump ${spec} matches the file`);
          const bytes = fs.readFileSync(mine[0]!.dumped as string);
          assert.ok(Buffer.compare(bytes, content) === 0, `--dump ${spec}: the dumped bytes are the file's`);
          assert.equal(mine[0]!.sha256, crypto.createHash('sha256').update(content).digest('hex'));
        }
      } finally {
        await labRun(g.guest, ['rm', '-f', FILE]);
      }
    });

    test('--dump without --dump-dir is a usage error', () => {
      assert.throws(() => runPlugin(pagecache, g.kernel, { dump: FILE }), /--dump-dir/);
    });
  });
}
