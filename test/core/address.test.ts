/**
 * Branded guest addresses. The `@ts-expect-error` lines are the compile-time half of this test: `tsc` (which
 * checks test/) fails if any of them compiles, i.e. if a physical address, a plain number or a plain bigint
 * could be passed where the other space's address is expected. The runtime half checks that the brands cost
 * nothing (identity) and that the conversions between the spaces return the right addresses.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AddressSpace, type VirtualReadOp } from '../../src/arch/address-space.js';
import { PAGING_4_LEVEL } from '../../src/arch/x86-64/paging.js';
import type { ReadOp } from '../../src/memory/types.js';
import { SymbolTableBuilder } from '../../src/profile/symbols.js';
import { testMemory } from '../arch/helpers/memory.js';
import { PageTableBuilder } from '../arch/helpers/page-tables.js';
import { type GuestPhysAddr, type GuestVirtAddr, gpa, gva } from '../../src/core/address.js';

const DIRECT = 0xffff_8880_0000_0000n;
const TEXT = 0xffff_ffff_8100_0000n;

function setup() {
  const ram = new Uint8Array(4 << 20);
  const b = new PageTableBuilder(ram, 4, 0x10000);
  b.map(TEXT, 0x200000, 4096);
  ram.set([0xde, 0xad, 0xbe, 0xef], 0x200010);
  const space = new AddressSpace(testMemory(ram), b.top, PAGING_4_LEVEL, { name: 'brands', directMapBase: DIRECT });
  const symbols = new SymbolTableBuilder().add('_stext', TEXT, 'T').build('test');
  return { ram, space, symbols };
}

/** Never called: only the type checker reads it. Every marked line must fail to compile. */
function mixUps(space: AddressSpace, pa: GuestPhysAddr, va: GuestVirtAddr, rawBig: bigint, rawNum: number): void {
  // @ts-expect-error a guest-physical address is not a guest-virtual one
  space.translate(pa);
  // @ts-expect-error a plain bigint (a physical base, a raw u64) must be marked virtual first
  space.translate(rawBig);
  // @ts-expect-error the result of a translation is physical
  space.tryTranslate(space.physical(va));
  // @ts-expect-error the direct map takes a physical address
  space.physToDirect(va);
  // @ts-expect-error a plain number is not known to be physical
  space.physToDirect(rawNum);
  // @ts-expect-error the direct map's inverse takes a virtual address
  space.directToPhys(pa);
  // @ts-expect-error a virtual read takes a virtual address, not a bigint of unknown space
  space.read(rawBig, 8);
  // @ts-expect-error nor a physical one
  space.readInto(pa, new Uint8Array(8));
  // @ts-expect-error a virtual read op is marked virtual too
  const vop: VirtualReadOp = { va: rawBig, len: 8 };
  // @ts-expect-error a physical read op takes a physical address, not a virtual one
  const op: ReadOp = { addr: va, len: 8 };
  // @ts-expect-error nor an unmarked number
  const op2: ReadOp = { addr: rawNum, len: 8 };
  // @ts-expect-error what translation returns cannot be stored as a virtual address
  const back: GuestVirtAddr = space.physical(va);
  // @ts-expect-error nor a symbol address as a physical one
  const sym: GuestPhysAddr = setup().symbols.address('_stext');
  void [vop, op, op2, back, sym];
}

describe('branded guest addresses', () => {
  it('are the identity at run time', () => {
    assert.equal(gpa(0x1234), 0x1234);
    assert.equal(typeof gpa(1), 'number');
    assert.equal(gva(0xffff_ffff_8100_0000n), 0xffff_ffff_8100_0000n);
    assert.equal(typeof gva(1n), 'bigint');
    assert.equal(typeof mixUps, 'function');
  });

  it('flow from symbol lookup through translation to a physical read without conversions', () => {
    const { space, symbols } = setup();
    const va: GuestVirtAddr = symbols.address('_stext');
    const pa: GuestPhysAddr = space.physical(gva(va + 0x10n));
    assert.equal(pa, 0x200010);
    const op: ReadOp = { addr: pa, len: 4 };
    assert.deepEqual(space.mem.readv([op]), []);
    assert.deepEqual([...op.dst!], [0xde, 0xad, 0xbe, 0xef]);
    const vop: VirtualReadOp = { va: gva(va + 0x10n), len: 4 };
    assert.deepEqual(space.readv([vop]), []);
    assert.deepEqual([...vop.dst!], [0xde, 0xad, 0xbe, 0xef]);
  });

  it('turn into each other through the direct map', () => {
    const { space } = setup();
    const va: GuestVirtAddr = space.physToDirect(gpa(0x200010));
    assert.equal(va, DIRECT + 0x200010n);
    const pa: GuestPhysAddr = space.directToPhys(va);
    assert.equal(pa, 0x200010);
    assert.throws(() => space.directToPhys(gva(DIRECT - 1n)), /not in the direct map/);
  });
});
