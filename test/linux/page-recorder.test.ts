/**
 * What a validated run's recorder copies and when: on mapped memory each word
 * as the run first reads it (so a change to a word before its read is no
 * torn read, and the page around the words read is not copied); elsewhere
 * the whole page at its first read. Guest memory here is a plain byte array
 * the test changes between reads, as a running guest would.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AddressSpace } from '../../src/arch/address-space.js';
import { PhysReader } from '../../src/arch/phys-reader.js';
import { gpa } from '../../src/core/address.js';
import { PageRecorder } from '../../src/linux/page-recorder.js';
import { testMemory } from '../arch/helpers/memory.js';

const PAGE_PA = 0x3000;
/** Only `used` translates; these tests read physical memory directly. */
const noSpace = {} as AddressSpace;

function setup(mapped: boolean) {
  const ram = new Uint8Array(0x10000);
  const phys = new PhysReader(testMemory(ram, { mapped }));
  const fresh = new PhysReader(testMemory(ram, { mapped }));
  const rec = new PageRecorder(phys, noSpace);
  phys.recorder = rec;
  const w64 = (pa: number, v: bigint): void => new DataView(ram.buffer).setBigUint64(pa, v, true);
  return { ram, phys, fresh, rec, w64 };
}

describe('PageRecorder', () => {
  it('mapped memory: a word changed before the run reads it is what the run read, no torn read', () => {
    const { phys, fresh, rec, w64 } = setup(true);
    assert.equal(phys.u64(PAGE_PA), 0n);
    // Another word of the same page changes after the page's first read, before its own.
    w64(PAGE_PA + 0x100, 7n);
    assert.equal(phys.u64(PAGE_PA + 0x100), 7n);
    assert.equal(rec.changed(fresh), 0);
    assert.equal(rec.unchanged(fresh), true);
  });

  it('mapped memory: a word changed after the run read it is caught, where it is', () => {
    const { phys, fresh, rec, w64 } = setup(true);
    phys.u64(PAGE_PA);
    phys.u64(PAGE_PA + 0x100);
    w64(PAGE_PA + 0x100, 9n);
    assert.equal(rec.changed(fresh), 1);
    assert.deepEqual(rec.changedAt, [PAGE_PA + 0x100]);
    assert.equal(rec.unchanged(fresh), false);
  });

  it('mapped memory: words of a watched page the run never read are neither copied nor compared', () => {
    const { ram, phys, fresh, rec, w64 } = setup(true);
    ram.fill(0xaa, PAGE_PA, PAGE_PA + 4096);
    phys.u64(PAGE_PA + 0x800);
    for (let off = 0; off < 4096; off += 8) if (off !== 0x800) w64(PAGE_PA + off, BigInt(off));
    assert.equal(rec.changed(fresh), 0);
    assert.equal(rec.pages.size, 1);
  });

  it('mapped memory: an object fetched in one read is copied as it was fetched, its decoded words compared', () => {
    const { phys, fresh, rec, w64 } = setup(true);
    // A 64-byte object at the end of one page and the start of the next, read as one fetch.
    const at = PAGE_PA + 4096 - 32;
    w64(at, 1n);
    w64(at + 40, 2n);
    rec.fetching(() => {
      phys.readv([{ addr: gpa(at), len: 32 }, { addr: gpa(at + 32), len: 32 }]);
    });
    // The guest changes both words after the fetch; the run then marks the words it decoded as links (touch outside a fetch).
    w64(at, 5n);
    w64(at + 40, 6n);
    rec.touch(at, 8);
    rec.touch(at + 40, 8);
    assert.equal(rec.changed(fresh), 2, 'both pages: the words decoded differ from what the fetch read');
  });

  it('an object decoded in place is copied word by word as decoded; one fetched as a copy, as fetched', () => {
    for (const inPlace of [true, false]) {
      const { phys, fresh, rec, w64 } = setup(true);
      const at = PAGE_PA + 0x200;
      rec.fetching(() => rec.touch(at, 64, inPlace));
      // The guest changes a field after the fetch, before the run decodes it.
      w64(at + 16, 4n);
      rec.touch(at + 16, 8);
      // In place, the run decoded 4 (what memory holds now); from a copy it decoded the 0 fetched.
      assert.equal(rec.changed(fresh), inPlace ? 0 : 1, inPlace ? 'in place' : 'copy');
    }
  });

  it('memory read by copies: the whole page is copied at its first read (a later change before a word is read counts)', () => {
    const { phys, fresh, rec, w64 } = setup(false);
    phys.u64(PAGE_PA);
    w64(PAGE_PA + 0x100, 7n);
    assert.equal(phys.u64(PAGE_PA + 0x100), 7n);
    assert.equal(rec.changed(fresh), 1);
  });

  it('storage handed on is clean: a second recorder starts with nothing copied or watched', () => {
    const { phys, fresh, rec, w64 } = setup(true);
    phys.u64(PAGE_PA);
    rec.changed(fresh);
    rec.release();
    const next = new PageRecorder(phys, noSpace);
    phys.recorder = next;
    w64(PAGE_PA, 3n);
    assert.equal(phys.u64(PAGE_PA), 3n);
    assert.equal(next.changed(fresh), 0);
  });
});
