import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AnomalySink } from '../../src/linux/anomaly.js';
import { cachedPages } from '../../src/linux/pagecache.js';
import { BareSpace, makeKernel } from './helpers/bare-kernel.js';
import { KBASE, TypeBuilder } from './helpers/synthetic.js';
import { writeXaNode, xarrayTypes } from './helpers/xarray.js';

const VMEMMAP = 0xffff_ea00_0000_0000n;
const DIRECT = 0xffff_8880_0000_0000n;
const VMEMMAP_SYM = 0xffff_ffff_8200_0000n;
const AS = KBASE + 0x10_0000n;
const NODE = KBASE + 0x20_0000n;
const page = (pfn: bigint) => VMEMMAP + pfn * 64n;

function kernel() {
  const b = new TypeBuilder();
  xarrayTypes(b);
  b.struct('page', 64, [['flags', b.ulong, 0]]);
  b.struct('address_space', 32, [['i_pages', b.store.lookup('xarray')[0]!, 0], ['nrpages', b.ulong, 24]]);
  const mem = new BareSpace();
  mem.directMapBase = DIRECT;
  mem.w64(VMEMMAP_SYM, VMEMMAP);
  const fill = (pfn: bigint, byte: number) => mem.write(DIRECT + pfn * 4096n, new Uint8Array(4096).fill(byte));
  fill(5n, 0xa5);
  fill(9n, 0x99);
  const slots = new Map<number, bigint>([
    [0, page(5n)],
    [1, (1234n << 1n) | 1n], // a value (swap/shadow) entry: not in memory
    [2, page(6n) + 8n], // not a struct page boundary
    [3, page(7n)], // a page whose frame is not readable
    [4, page(9n)],
    [6, page(9n)], // beyond the file's last page
  ]);
  mem.w64(AS + 8n, writeXaNode(mem, NODE, 0, 0, 0n, slots));
  return makeKernel(b, mem, [['vmemmap_base', VMEMMAP_SYM, 'D']]);
}

describe('page cache pages', () => {
  test('cached pages in file order through vmemmap and the direct map; value entries skipped, bad ones reported, bounded by the file size', () => {
    const a = new AnomalySink();
    const got = [...cachedPages(kernel(), AS, a, 5n)];
    assert.deepEqual(got.map((p) => [p.index, p.bytes[0], p.bytes.length]), [
      [0n, 0xa5, 4096],
      [4n, 0x99, 4096],
    ]);
    assert.equal(a.counts['bad-pointer'], 1);
    assert.equal(a.counts.fault, 1);
  });
});
