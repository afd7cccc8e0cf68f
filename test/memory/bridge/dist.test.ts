/**
 * The bridge worker must start from compiled JavaScript (dist/, plain node,
 * no tsx) as well as from TypeScript sources (the other bridge tests). This
 * runs only when `npm run build` has produced dist/.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const bridge = `${root}dist/src/memory/bridge/sync-bridge.js`;
const backend = `${root}dist/test/memory/bridge/helpers/fake-backend.js`;
const built = fs.existsSync(bridge) && fs.existsSync(backend) && fs.existsSync(`${root}dist/src/memory/bridge/worker.js`);

test('sync bridge from dist/ under plain node', { skip: built ? false : 'dist/ not built (npm run build)' }, () => {
  const code = `
    import { SyncBridge } from ${JSON.stringify(bridge)};
    import { pathToFileURL } from 'node:url';
    const b = await SyncBridge.start(pathToFileURL(${JSON.stringify(backend)}), { size: 256 }, { technique: 'fake', target: 'dist' });
    const op = { addr: 250, len: 10 };
    const f = b.readv([op]);
    console.log(JSON.stringify({ first: op.dst[0], failures: f.length }));
    await b.close();`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout.trim()), { first: 250, failures: 1 });
});
