import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { acquireQmp } from '../../src/qemu/discover.js';
import { ownQmpSocket, sharedGuest, type SharedGuest } from '../helpers/guest.js';

let g: SharedGuest;
/** A QMP socket no other test process uses. */
let qmp: string;
before(async () => {
  g = await sharedGuest({ kernel: '6.1' });
  qmp = await ownQmpSocket(g.guest);
});

async function status(): Promise<string> {
  const lease = await acquireQmp(qmp);
  try {
    return (await lease.client.execute<{ status: string }>('query-status')).status;
  } finally {
    await lease.release();
  }
}

for (const ending of ['process.exit(0)', "throw new Error('crash while paused')"]) {
  test(`a process that pauses the guest and then ends with ${ending.split('(')[0]} leaves it running`, async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmsight-test-haltg-'));
    const open = fileURLToPath(new URL('../../src/memory/open.ts', import.meta.url));
    const resolver = fileURLToPath(new URL('../../src/lab/resolver.ts', import.meta.url));
    const script = path.join(dir, 'child.mts');
    fs.writeFileSync(
      script,
      `import { openSource } from ${JSON.stringify(open)};
       import { useLabGuests } from ${JSON.stringify(resolver)};
       useLabGuests(); // guest names resolve through the lab, as the CLI sets up
       const r = await openSource(${JSON.stringify(`${g.guest.name}?halting=1`)});
       if (r.chosen.class !== 'guest-halting') throw new Error('not halting');
       console.log('PAUSED');
       ${ending};`,
    );
    try {
      const tsx = fileURLToPath(new URL('../../node_modules/tsx/dist/cli.mjs', import.meta.url));
      const r = spawnSync(process.execPath, [tsx, script], { encoding: 'utf8', timeout: 120_000 });
      assert.match(r.stdout, /PAUSED/, r.stderr);
      assert.equal(await status(), 'running');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
}
