/**
 * kdump-compressed images in every page compression makedumpfile writes, from one pause of a lab guest,
 * analyse exactly like the ELF dump QEMU took in that pause (issue 10, kdump LZO and zstd). Debian's
 * makedumpfile 1.7.2 refuses QEMU's ELF dumps ("get_elf_info: Can't get the number of PT_LOAD") and is
 * built without zstd, and this QEMU has neither LZO nor snappy, so the test writes the images itself from
 * the ELF's pages with the format builder (independent of the reader) and the reference compressors:
 * zlib (Node), LZO1X-1 (liblzo2, as makedumpfile -l) and zstd (libzstd, as makedumpfile -z).
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
import { parseKdump } from '../../../src/memory/formats/kdump.js';
import { FileSource } from '../../../src/memory/formats/byte-source.js';
import { openSource } from '../../../src/memory/open.js';
import type { ReadOp } from '../../../src/memory/types.js';
import { gpa } from '../../../src/core/address.js';
import { acquireQmp } from '../../../src/qemu/discover.js';
import { ownQmpSocket, sharedGuest, type SharedGuest } from '../../helpers/guest.js';
import { buildKdump, type KdumpPage } from '../formats/helpers/kdump-builder.js';

let g: SharedGuest;
let dir: string;
const images: Record<string, string> = {};

const ENCODINGS = ['zlib', 'lzo', 'zstd'] as const;

/** kdump images of the ELF dump's RAM, every page compressed (as makedumpfile -c/-l/-z -d 0 write them). */
async function kdumpImagesOf(elf: string): Promise<void> {
  const opened = await openSource(elf, { technique: 'file' });
  try {
    const mem = opened.memory;
    const vmcoreinfo = (await mem.hints?.())?.vmcoreinfo;
    const pages: KdumpPage[] = [];
    let maxPfn = 0;
    for (const r of mem.ranges()) {
      for (let pa: number = r.start; pa < r.end; pa += 4096) {
        const op: ReadOp = { addr: gpa(pa), len: 4096 };
        mem.readv([op]);
        pages.push({ pfn: pa / 4096, data: op.dst!, encoding: 'raw' });
        maxPfn = Math.max(maxPfn, pa / 4096 + 1);
      }
    }
    for (const encoding of ENCODINGS) {
      images[encoding] = path.join(dir, `guest.${encoding}.kdump`);
      const encoded = pages.map((p) => ({ ...p, encoding }));
      fs.writeFileSync(images[encoding], buildKdump({ maxMapnr: maxPfn, pages: encoded, ...(vmcoreinfo ? { vmcoreinfo } : {}), release: g.truth.release }));
    }
  } finally {
    await opened.memory.close();
  }
}

before(async () => {
  g = await sharedGuest({ kernel: '6.1' });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmsight-kdumpc-'));
  const elf = path.join(dir, 'guest.elf');
  const lease = await acquireQmp(await ownQmpSocket(g.guest));
  try {
    await lease.client.execute('stop');
    try {
      await lease.client.execute('dump-guest-memory', { paging: false, protocol: `file:${elf}` }, 120_000);
    } finally {
      await lease.client.execute('cont');
    }
  } finally {
    await lease.release();
  }
  images['elf'] = elf;
  await kdumpImagesOf(elf);
});
after(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('kdump page compressions on a 6.1 guest', { timeout: 600_000 }, () => {
  test('the images hold the compressions they are named after', () => {
    for (const name of ENCODINGS) {
      const src = FileSource.open(images[name]!);
      try {
        assert.deepEqual([...parseKdump(src).compressions], [name], name);
      } finally {
        src.close();
      }
    }
  });

  test('pslist and lsmod of every image equal those of the ELF dump', async () => {
    const elf = await attachKernel(images['elf']!, { cache: false });
    try {
      const want = { ps: runPlugin(pslist, elf).rows, mods: runPlugin(lsmod, elf).rows };
      assert.ok(want.ps.length > 10 && want.mods.length >= 4);
      for (const name of ENCODINGS) {
        const k = await attachKernel(images[name]!, { cache: false });
        try {
          assert.equal(k.report.technique.factory, 'kdump', name);
          assert.equal(k.profile.release, g.truth.release, name);
          assert.deepEqual(runPlugin(pslist, k).rows, want.ps, `pslist from ${name}`);
          assert.deepEqual(runPlugin(lsmod, k).rows, want.mods, `lsmod from ${name}`);
        } finally {
          await k.close();
        }
      }
    } finally {
      await elf.close();
    }
  });
});
