import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { FormatError } from '../../../src/core/errors.js';
import { BufferSource } from '../../../src/memory/formats/byte-source.js';
import { FlatImageSource, KdumpMemory, parseKdump } from '../../../src/memory/formats/kdump.js';
import { openSource } from '../../../src/memory/open.js';
import { buildKdump, flatten, type KdumpPage } from './helpers/kdump-builder.js';
import type { GuestPhysAddr } from '../../../src/core/address.js';

const pageOf = (seed: number) => Uint8Array.from({ length: 4096 }, (_, i) => (i * 7 + seed) & 0xff);
const pages: KdumpPage[] = [
  { pfn: 0, data: pageOf(1), encoding: 'raw' },
  { pfn: 1, data: pageOf(2), encoding: 'zlib' },
  { pfn: 2, data: new Uint8Array(4096), encoding: 'zlib' },
  { pfn: 5, data: pageOf(3), encoding: 'snappy' },
  { pfn: 6, data: pageOf(4), encoding: 'zlib' },
  { pfn: 40, data: pageOf(5), encoding: 'lzo' },
];
const spec = { maxMapnr: 64, pages, excluded: [7], vmcoreinfo: 'OSRELEASE=6.1.0-test\nPAGESIZE=4096\n' };

function read(mem: KdumpMemory, addr: number, len: number) {
  const op = { addr, len } as { addr: GuestPhysAddr; len: number; dst?: Uint8Array };
  const failures = mem.readv([op]);
  return { bytes: op.dst!, failures };
}

for (const flat of [false, true]) {
  describe(`kdump-compressed image${flat ? ' (flattened)' : ''}`, () => {
    const bytes = flat ? flatten(buildKdump(spec)) : buildKdump(spec);
    const src = flat ? new FlatImageSource(new BufferSource('k.dump', bytes)) : new BufferSource('k.dump', bytes);
    const image = parseKdump(src);
    const mem = new KdumpMemory('k.dump', src, image);

    test('header, VMCOREINFO and the dumped ranges', async () => {
      assert.equal(image.header.release, '6.1.0-test');
      assert.equal(image.header.blockSize, 4096);
      assert.equal(image.header.maxMapnr, 64);
      assert.equal(image.header.dumpLevel, 31);
      assert.equal((await mem.hints()).vmcoreinfo, spec.vmcoreinfo);
      assert.deepEqual(mem.ranges().map((r) => [r.start, r.end]), [[0, 0x3000], [0x5000, 0x7000], [0x28000, 0x29000]]);
      assert.deepEqual([...image.compressions].sort(), ['lzo', 'snappy', 'zlib']);
      assert.equal(mem.warnings.length, 1);
      assert.match(mem.warnings[0]!, /LZO pages are not supported/);
    });

    test('raw, zlib and snappy pages read back, across page boundaries', () => {
      const all = read(mem, 0, 0x3000);
      assert.deepEqual(all.failures, []);
      assert.deepEqual(all.bytes.subarray(0, 4096), pageOf(1));
      assert.deepEqual(all.bytes.subarray(4096, 8192), pageOf(2));
      assert.ok(all.bytes.subarray(8192).every((b) => b === 0));
      const cross = read(mem, 0x5ff0, 0x20);
      assert.deepEqual(cross.failures, []);
      assert.deepEqual([...cross.bytes], [...pageOf(3).subarray(4096 - 16), ...pageOf(4).subarray(0, 16)]);
      assert.deepEqual(read(mem, 0x1010, 4).bytes, pageOf(2).subarray(16, 20), 'a cached page');
    });

    test('holes, excluded pages and unsupported compressions fail with their reasons, zero-filled', () => {
      const r = read(mem, 0x3000, 0x5000);
      assert.deepEqual(r.failures.map((f) => [f.addr, f.len]), [[0x3000, 0x2000], [0x7000, 0x1000]]);
      assert.match(r.failures[0]!.reason, /not backed/);
      assert.match(r.failures[1]!.reason, /excluded from the dump \(makedumpfile dump level 31\)/);
      assert.ok(r.bytes.subarray(0, 0x2000).every((b) => b === 0));
      assert.match(read(mem, 0x28000, 8).failures[0]!.reason, /LZO pages are not supported/);
    });
  });
}

describe('hostile kdump images', () => {
  test('a corrupt compressed page is a failed read, not a crash', () => {
    const bytes = buildKdump({ maxMapnr: 8, pages: [{ pfn: 1, data: pageOf(9), encoding: 'zlib' }] });
    const image = parseKdump(new BufferSource('bad', bytes));
    // Garble the compressed data (it follows the descriptor at the end of the file).
    bytes.fill(0x5a, bytes.length - 40);
    const mem = new KdumpMemory('bad', new BufferSource('bad', bytes), image);
    const r = read(mem, 0x1000, 16);
    assert.equal(r.failures.length, 1);
    assert.match(r.failures[0]!.reason, /zlib page/);
  });

  test('a descriptor pointing outside the file, and a truncated image', () => {
    const bytes = buildKdump({ maxMapnr: 8, pages: [{ pfn: 0, data: pageOf(1), encoding: 'raw' }, { pfn: 1, data: pageOf(2), encoding: 'raw' }] });
    const descAt = 4096 * 4; // header, sub-header, two bitmap blocks
    new DataView(bytes.buffer).setBigInt64(descAt, BigInt(bytes.length * 4), true);
    const cut = bytes.subarray(0, bytes.length - 100);
    const mem = new KdumpMemory('cut', new BufferSource('cut', cut), parseKdump(new BufferSource('cut', cut)));
    assert.match(read(mem, 0, 8).failures[0]!.reason, /ends early|corrupt/);
    assert.match(read(mem, 0x1ff0, 16).failures[0]!.reason, /ends early/);
  });

  test('absurd headers are FormatErrors', () => {
    const good = buildKdump({ maxMapnr: 8, pages: [] });
    const cases: [string, (v: DataView) => void, RegExp][] = [
      ['block size', (v) => v.setInt32(428, 1000, true), /block size 1000/],
      ['bitmaps too small', (v) => v.setUint32(4096 + 96, 1 << 30, true), /do not cover/],
      ['frame count', (v) => v.setBigUint64(4096 + 96, 1n << 50n, true), /absurd max_mapnr_64/],
    ];
    for (const [what, poke, re] of cases) {
      const b = good.slice();
      poke(new DataView(b.buffer));
      assert.throws(() => parseKdump(new BufferSource('x', b)), (e: unknown) => e instanceof FormatError && re.test(e.message), what);
    }
    assert.throws(() => parseKdump(new BufferSource('x', new Uint8Array(600))), /no KDUMP signature/);
  });
});

test('openSource picks the kdump reader for both layouts; raw-file declines them', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmsight-kdump-'));
  try {
    for (const [name, bytes] of [['plain.kdump', buildKdump(spec)], ['flat.kdump', flatten(buildKdump(spec))]] as const) {
      const f = path.join(dir, name);
      fs.writeFileSync(f, bytes);
      const warnings: string[] = [];
      const opened = await openSource(f, { warn: (w) => warnings.push(w) });
      try {
        assert.equal(opened.chosen.factory, 'kdump');
        assert.ok(opened.candidates.some((c) => c.factory === 'raw-file' && !c.ok));
        assert.equal(warnings.length, 1);
      } finally {
        await opened.memory.close();
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
