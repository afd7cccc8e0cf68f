/**
 * Pass blocks (src/arch/pass-blocks.ts) through the PhysReader that uses them: a source that asks for
 * blocks is read in aligned blocks inside a pass, and nothing kept is ever older than the current pass.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FaultError } from '../../src/core/errors.js';
import { PhysReader } from '../../src/arch/phys-reader.js';
import { PassBlocks } from '../../src/arch/pass-blocks.js';
import type { ReadOp } from '../../src/memory/types.js';
import { gpa } from '../../src/core/address.js';
import { testMemory, type TestMemory } from './helpers/memory.js';

const BLOCK = 32768;

/** 1 MiB of patterned RAM with a hole at [0x48000, 0x50000), read in 32 KiB blocks inside passes. */
function blockSource(options: { block?: number; mapped?: boolean } = {}): TestMemory {
  const bytes = new Uint8Array(1 << 20);
  for (let i = 0; i < bytes.length; i += 8) new DataView(bytes.buffer).setBigUint64(i, BigInt(i) * 3n + 1n, true);
  const mem = testMemory(bytes, {
    ranges: [
      { start: gpa(0), end: gpa(0x48000), name: 'low' },
      { start: gpa(0x50000), end: gpa(1 << 20), name: 'high' },
    ],
    ...(options.mapped ? { mapped: true } : {}),
  });
  (mem as { passBlockBytes?: number }).passBlockBytes = options.block ?? BLOCK;
  return mem;
}

const word = (m: TestMemory, pa: number): bigint => new DataView(m.bytes.buffer).getBigUint64(pa, true);
const poke = (m: TestMemory, pa: number, v: bigint): void => new DataView(m.bytes.buffer).setBigUint64(pa, v, true);

describe('pass blocks', () => {
  it('inside a pass, reads of one block cost one source read; every value is the guest\'s', () => {
    const m = blockSource();
    const r = new PhysReader(m);
    r.beginPass();
    const base = 0x18000;
    for (let off = 0; off < BLOCK; off += 8) assert.equal(r.u64(base + off), word(m, base + off));
    assert.equal(m.calls.readv, 1, 'the whole 32 KiB block came in one read');
    assert.deepEqual(Buffer.from(r.bytes(base + 100, 300)), Buffer.from(m.bytes.subarray(base + 100, base + 400)));
    // A read across two blocks: the second block is fetched, the bytes are copied from both.
    const across = r.bytes(base + BLOCK - 16, 64);
    assert.deepEqual(Buffer.from(across), Buffer.from(m.bytes.subarray(base + BLOCK - 16, base + BLOCK + 48)));
    assert.equal(m.calls.readv, 2);
    assert.ok(r.passBlocks!.stats.hits > 4000);
    r.endPass();
  });

  it('a new pass sees what the guest wrote since: no block outlives its pass, nor its source generation', () => {
    const m = blockSource();
    const r = new PhysReader(m);
    const pa = 0x20008;
    r.beginPass();
    const before = r.u64(pa);
    poke(m, pa, 0xfeedn);
    assert.equal(r.u64(pa), before, 'within the pass the block read at its start stands');
    r.endPass();
    assert.equal(r.u64(pa), 0xfeedn, 'outside passes every read goes to the source');
    poke(m, pa, 0xbeefn);
    r.beginPass();
    assert.equal(r.u64(pa), 0xbeefn, 'the next pass starts with no block');
    poke(m, pa, 0xcafen);
    r.beginPass();
    assert.equal(r.u64(pa), 0xcafen, 'a nested pass start reads afresh too');
    poke(m, pa, 0xf00dn);
    m.bump();
    assert.equal(r.u64(pa), 0xf00dn, 'a new source generation drops the blocks');
    poke(m, pa, 0xd00dn);
    r.dropPassBlocks();
    assert.equal(r.u64(pa), 0xd00dn, 'a validation retry drops them too');
    r.endPass();
  });

  it('a second look (forget) fetches the block again: a walk re-reading a link it caught changing sees the guest now', () => {
    const m = blockSource();
    const r = new PhysReader(m);
    r.beginPass();
    const pa = 0x28010;
    const first = r.u64(pa);
    poke(m, pa, 0xabcn);
    assert.equal(r.u64(pa), first, 'kept');
    r.passBlocks!.forget(pa, 16);
    assert.equal(r.u64(pa), 0xabcn, 'looked at again');
    assert.equal(r.u64(pa + 8), word(m, pa + 8), 'the refetched block serves the rest of the pass');
    r.endPass();
  });

  it('a view kept from an earlier pass shows the same guest address, never another block\'s bytes', () => {
    const m = blockSource();
    const r = new PhysReader(m);
    r.beginPass();
    const view = r.bytes(0x30000, 64);
    const other = r.bytes(0x70000, 64);
    const otherBefore = Buffer.from(other);
    r.endPass();
    poke(m, 0x30000, 0x1111n);
    poke(m, 0x70000, 0x2222n);
    r.beginPass();
    // The first fetch of this pass reads again what the last pass read, into the same buffers.
    assert.equal(r.u64(0x30000), 0x1111n);
    assert.equal(r.passBlocks!.stats.fetches, 1, 'one batched read brought the last pass\'s blocks');
    assert.deepEqual(Buffer.from(view), Buffer.from(m.bytes.subarray(0x30000, 0x30040)), 'the old view shows the address it showed, fresh');
    r.endPass();
    // Passes reading other blocks never write into those buffers: the view keeps bytes of its own address.
    poke(m, 0x70000, 0x3333n);
    r.beginPass();
    r.endPass();
    r.beginPass();
    for (let pa = 0x90000; pa < 0x90000 + 10 * BLOCK; pa += BLOCK) r.u64(pa);
    r.endPass();
    assert.notDeepEqual(Buffer.from(other), otherBefore, 'refreshed with the first pass that read it again');
    assert.equal(Buffer.from(other).readBigUInt64LE(0), 0x2222n, 'and left alone by passes that did not');
  });

  it('holes: a block is cut at the end of its RAM range, reads into the hole fail as the source says', () => {
    const m = blockSource();
    const r = new PhysReader(m);
    r.beginPass();
    // 0x40000..0x48000 is RAM, 0x48000..0x50000 a hole: the block holding 0x44000 is cut at 0x48000.
    assert.equal(r.u64(0x47ff8), word(m, 0x47ff8));
    const calls = m.calls.readv;
    assert.equal(r.u64(0x40000), word(m, 0x40000), 'same (cut) block');
    assert.equal(m.calls.readv, calls);
    assert.throws(() => r.u64(0x48000), (e: unknown) => e instanceof FaultError && e.address === 0x48000n);
    const op: ReadOp = { addr: gpa(0x47ff0), len: 32 };
    const direct: ReadOp = { addr: gpa(0x47ff0), len: 32 };
    assert.deepEqual(r.readv([op]), m.readv([direct]), 'the failure ranges are the source\'s own');
    assert.deepEqual(Buffer.from(op.dst!), Buffer.from(direct.dst!));
    assert.equal(op.dst![20], 0, 'hole bytes are zero');
    r.endPass();
  });

  it('bulk reads (more than four blocks) and bad ops go to the source as they are', () => {
    const m = blockSource();
    const r = new PhysReader(m);
    r.beginPass();
    const big: ReadOp = { addr: gpa(0x60000), len: 5 * BLOCK };
    assert.deepEqual(r.readv([big]), []);
    assert.deepEqual(Buffer.from(big.dst!), Buffer.from(m.bytes.subarray(0x60000, 0x60000 + 5 * BLOCK)));
    assert.equal(r.passBlocks!.stats.blocks, 0, 'nothing kept');
    assert.equal(r.passBlocks!.stats.direct, 1);
    const bad = r.readv([{ addr: gpa(-8), len: 8 }]);
    assert.equal(bad.length, 1, 'the source reports the bad address');
    r.endPass();
  });

  it('stays within its bound: past it, every block is dropped and reading goes on correctly', () => {
    const m = blockSource();
    const blocks = new PassBlocks(m, BLOCK, 4 * BLOCK);
    for (let i = 0; i < 12; i++) {
      const pa = 0x50000 + i * BLOCK + 8;
      const op: ReadOp = { addr: gpa(pa), len: 8 };
      assert.deepEqual(blocks.readv([op]), []);
      assert.equal(new DataView(op.dst!.buffer, op.dst!.byteOffset).getBigUint64(0, true), word(m, pa));
    }
    assert.ok(blocks.stats.overflows >= 2);
  });

  it('only sources that ask for blocks, and never a mapped one, are read in blocks', () => {
    const plain = blockSource();
    (plain as { passBlockBytes?: number }).passBlockBytes = undefined;
    const r = new PhysReader(plain);
    r.beginPass();
    assert.equal(r.passBlocks, undefined);
    r.u64(0x1000);
    r.u64(0x1008);
    assert.equal(plain.calls.readv, 2, 'read as asked');
    const odd = blockSource({ block: 3000 });
    const r2 = new PhysReader(odd);
    r2.beginPass();
    assert.equal(r2.passBlocks, undefined, 'a size that is no power of two from 4 KiB to 256 KiB is ignored');
    const mapped = blockSource({ mapped: true });
    const r3 = new PhysReader(mapped);
    r3.beginPass();
    assert.equal(r3.passBlocks, undefined);
    assert.equal(r3.u64(0x1000), word(mapped, 0x1000));
    assert.equal(mapped.calls.readv, 0, 'zero-copy views as always');
  });
});
