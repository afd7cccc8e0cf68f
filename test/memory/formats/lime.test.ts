import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { FormatError } from '../../../src/core/errors.js';
import { BufferSource } from '../../../src/memory/formats/byte-source.js';
import { LIME_MAGIC, parseLime } from '../../../src/memory/formats/lime.js';
import { factory as limeFactory } from '../../../src/memory/sources/lime.js';
import { factory as rawFactory } from '../../../src/memory/sources/raw-file.js';
import type { GuestPhysAddr } from '../../../src/core/address.js';

function limeRange(start: number, data: Uint8Array, version = 1): Uint8Array {
  const out = new Uint8Array(32 + data.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, LIME_MAGIC, true);
  dv.setUint32(4, version, true);
  dv.setBigUint64(8, BigInt(start), true);
  dv.setBigUint64(16, BigInt(start + data.length - 1), true);
  out.set(data, 32);
  return out;
}

test('LiME: ranges with inclusive ends become segments after their headers', () => {
  const img = Buffer.concat([limeRange(0x1000, new Uint8Array(0x1000).fill(1)), limeRange(0x100000, new Uint8Array(0x2000).fill(2))]);
  const { segments } = parseLime(new BufferSource('m.lime', img));
  assert.deepEqual(
    segments.map((s) => [s.start, s.end, s.fileOffset]),
    [
      [0x1000, 0x2000, 32],
      [0x100000, 0x102000, 32 + 0x1000 + 32],
    ],
  );
  assert.equal(Buffer.from(img).toString('latin1', 0, 4), 'EMiL');
});

test('LiME: truncated, bad magic, bad version and inverted ranges are FormatErrors', () => {
  const good = limeRange(0, new Uint8Array(64).fill(3));
  const inverted = good.slice();
  new DataView(inverted.buffer).setBigUint64(16, 0n, true);
  new DataView(inverted.buffer).setBigUint64(8, 10n, true);
  const cases: Array<[Uint8Array, RegExp]> = [
    [good.subarray(0, 60), /extends beyond the end of the file/],
    [Buffer.concat([good, Buffer.from('garbage-garbage-garbage-garbage-')]), /bad LiME magic/],
    [limeRange(0, new Uint8Array(8), 2), /unsupported LiME version 2/],
    [inverted, /end .* < start/],
    [good.subarray(0, 20), /header #0 .*beyond the end/],
  ];
  for (const [bytes, re] of cases) {
    assert.throws(() => parseLime(new BufferSource('x.lime', bytes)), (e: unknown) => e instanceof FormatError && re.test(e.message));
  }
});

test('lime and raw-file sources read files with positioned reads', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmsight-lime-'));
  try {
    const lime = path.join(dir, 'm.lime');
    fs.writeFileSync(lime, limeRange(0x2000, Buffer.from('hello lime')));
    const t = { spec: lime, file: lime, params: {} };
    assert.equal((await limeFactory.probe(t)).ok, true);
    assert.equal((await rawFactory.probe(t)).ok, false);
    const mem = await limeFactory.open(t);
    const op = { addr: 0x2006, len: 4 } as { addr: GuestPhysAddr; len: number; dst?: Uint8Array };
    assert.deepEqual(mem.readv([op]), []);
    assert.equal(Buffer.from(op.dst!).toString(), 'lime');
    await mem.close();

    const tiny = path.join(dir, 'tiny.raw');
    fs.writeFileSync(tiny, Buffer.from('0123456789abcdef'));
    const tinyProbe = await rawFactory.probe({ spec: tiny, file: tiny, params: {} });
    assert.equal(tinyProbe.ok, false);
    assert.match(tinyProbe.reason, /not a memory image: 16 bytes/);

    const raw = path.join(dir, 'm.raw');
    const size = 1 << 20;
    const image = Buffer.alloc(size);
    image.write('abcdef', size - 6);
    fs.writeFileSync(raw, image);
    const rt = { spec: raw, file: raw, params: {} };
    const probe = await rawFactory.probe(rt);
    assert.equal(probe.ok, true);
    assert.ok(probe.rank < 2 && /raw/.test(probe.reason));
    const rmem = await rawFactory.open(rt);
    assert.deepEqual(rmem.ranges(), [{ start: 0, end: size, name: 'raw image' }]);
    const r = { addr: size - 6, len: 8 } as { addr: GuestPhysAddr; len: number; dst?: Uint8Array };
    const fails = rmem.readv([r]);
    assert.equal(Buffer.from(r.dst!.subarray(0, 6)).toString(), 'abcdef');
    assert.deepEqual(fails.map((f) => [f.addr, f.len]), [[size, 2]]);
    await rmem.close();
    await assert.rejects(rawFactory.open({ spec: 'x', file: path.join(dir, 'missing'), params: {} }), /no such file/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
