/**
 * kdump-compressed images taken by QEMU itself (`dump-guest-memory`, every kdump format this QEMU offers)
 * analyse exactly like an ELF dump taken in the same pause (issue 10, bug 15 and the kdump reader).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { attachKernel } from '../../../src/linux/attach.js';
import { runPlugin } from '../../../src/linux/plugin.js';
import lsmod from '../../../src/linux/plugins/lsmod.js';
import pslist from '../../../src/linux/plugins/pslist.js';
import { acquireQmp } from '../../../src/qemu/discover.js';
import { ownQmpSocket, sharedGuest, type SharedGuest } from '../../helpers/guest.js';

let g: SharedGuest;
let dir: string;
let formats: string[] = [];
before(async () => {
  g = await sharedGuest({ kernel: '6.1' });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmsight-kdump-guest-'));
  const lease = await acquireQmp(await ownQmpSocket(g.guest));
  const c = lease.client;
  try {
    const cap = await c.execute<{ formats: string[] }>('query-dump-guest-memory-capability');
    formats = cap.formats.filter((f) => f.startsWith('kdump-'));
    await c.execute('stop');
    try {
      // One pause, every dump: they all hold the same instant.
      await c.execute('dump-guest-memory', { paging: false, protocol: `file:${path.join(dir, 'guest.elf')}` }, 120_000);
      for (const f of formats) await c.execute('dump-guest-memory', { paging: false, protocol: `file:${path.join(dir, `guest.${f}`)}`, format: f }, 120_000);
    } finally {
      await c.execute('cont');
    }
  } finally {
    await lease.release();
  }
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('QEMU kdump images', { timeout: 300_000 }, () => {
  test('this QEMU offers kdump-zlib', () => assert.ok(formats.includes('kdump-zlib'), formats.join(' ')));

  test('each kdump format this QEMU writes gives the same pslist and lsmod rows as the ELF dump', async () => {
    const elf = await attachKernel(path.join(dir, 'guest.elf'), { cache: false });
    try {
      const want = { ps: runPlugin(pslist, elf).rows, mods: runPlugin(lsmod, elf).rows };
      assert.ok(want.ps.length > 10);
      for (const f of formats) {
        const k = await attachKernel(path.join(dir, `guest.${f}`), { cache: false });
        try {
          assert.equal(k.report.technique.factory, 'kdump', f);
          assert.equal(k.profile.release, g.truth.release);
          assert.deepEqual(runPlugin(pslist, k).rows, want.ps, f);
          assert.deepEqual(runPlugin(lsmod, k).rows, want.mods, f);
        } finally {
          await k.close();
        }
      }
    } finally {
      await elf.close();
    }
  });
});
