import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FormatError, ProfileError } from '../../src/core/errors.js';
import {
  examineCopy,
  findVmcoreinfo,
  missingEssentials,
  outOfBandCopy,
  parseVmcoreinfo,
  requireVmcoreinfo,
} from '../../src/profile/vmcoreinfo.js';
import { testMemory } from '../arch/helpers/memory.js';
import { syntheticGuest, vmcoreinfoText, writeNote } from '../arch/helpers/synthetic-guest.js';
import { gpa } from '../../src/core/address.js';

const facts = {
  release: '6.1.0-56-amd64',
  kernelOffset: 0x1fe0_0000n,
  physBase: -450887680n,
  initTopPgt: 0xffff_ffff_a281_0000n,
  initUtsNs: 0xffff_ffff_a29f_b000n,
  stext: 0xffff_ffff_a0e0_0000n,
  l5: false,
  kallsyms: true,
};

describe('parseVmcoreinfo', () => {
  it('types every key', () => {
    const text = vmcoreinfoText({ ...facts, extraLines: ['CRASHTIME=1763800000', 'NUMBER(hexy)=0x10', 'NUMBER(neg)=-0x10', 'FOO-BAR=baz'] });
    const v = parseVmcoreinfo(text);
    assert.equal(v.raw, text);
    assert.equal(v.release, '6.1.0-56-amd64');
    assert.equal(v.buildId, 'eb4fbcd037e7253717950bf2b93bd5566f47c56f');
    assert.equal(v.pageSize, 4096);
    assert.equal(v.kernelOffset, 0x1fe0_0000n);
    assert.equal(v.physBase, -450887680n);
    assert.equal(v.l5Enabled, false);
    assert.equal(v.kernelImageSize, 1073741824n);
    assert.equal(v.crashTime, 1763800000);
    assert.equal(v.symbols.get('init_top_pgt'), 0xffff_ffff_a281_0000n);
    assert.equal(v.symbols.get('swapper_pg_dir'), 0xffff_ffff_a281_0000n);
    assert.equal(v.symbols.get('mem_section'), 0xffff_89ee_4ffd_7000n);
    assert.equal(v.sizes.get('page'), 64);
    assert.equal(v.offsets.get('uts_namespace.name'), 0);
    assert.equal(v.offsets.get('pglist_data.node_zones'), 0);
    assert.equal(v.lengths.get('zone.free_area'), 11);
    assert.equal(v.lengths.get('mem_section'), 4096);
    assert.equal(v.numbers.get('PAGE_BUDDY_MAPCOUNT_VALUE'), -129n);
    assert.equal(v.numbers.get('hexy'), 16n);
    assert.equal(v.numbers.get('neg'), -16n);
    assert.equal(v.keys.get('FOO-BAR'), 'baz');
    assert.equal(v.kallsyms?.names, facts.stext + 0x11bdac0n);
    assert.equal(v.kallsyms?.relativeBase, facts.stext + 0x11bdab0n);
    assert.equal(v.kallsyms?.addresses, undefined);
    assert.deepEqual(v.anomalies, []);
    assert.equal(v.truncated, false);
    assert.equal(v.keyCount, text.trim().split('\n').length);
    assert.deepEqual(missingEssentials(v), []);
  });

  it('reads pgtable_l5_enabled=1 and kernels without kallsyms keys', () => {
    const v = parseVmcoreinfo(vmcoreinfoText({ ...facts, l5: true, kallsyms: false }));
    assert.equal(v.l5Enabled, true);
    assert.equal(v.kallsyms, undefined);
  });

  it('keeps malformed lines as anomalies, not exceptions', () => {
    const v = parseVmcoreinfo('OSRELEASE=6.1\nSYMBOL(x)=zz\nSIZE(y)=-3\ngarbage\nPAGESIZE=4096\nPAGESIZE=4096\n\x01\n');
    assert.equal(v.release, '6.1');
    assert.equal(v.symbols.size, 0);
    assert.equal(v.sizes.size, 0);
    assert.equal(v.anomalies.length, 5);
    assert.match(v.anomalies.join('|'), /bad SYMBOL value.*bad SIZE value.*not KEY=VALUE.*duplicate key.*non-printable/);
  });

  it('flags a block cut short and drops its last line', () => {
    const v = parseVmcoreinfo('OSRELEASE=6.1\nPAGESIZE=4096\nSYMBOL(init_top_pgt)=ffffff');
    assert.equal(v.truncated, true);
    assert.equal(v.symbols.has('init_top_pgt'), false);
    assert.deepEqual(missingEssentials(v), ['SYMBOL(init_top_pgt) or SYMBOL(swapper_pg_dir)', 'KERNELOFFSET or NUMBER(phys_base)']);
  });

  it('refuses a block without a release (a format string)', () => {
    assert.throws(() => parseVmcoreinfo('OSRELEASE=%s\nBUILD-ID=%20phN\n'), FormatError);
    assert.throws(() => parseVmcoreinfo('PAGESIZE=4096\n'), FormatError);
    const c = examineCopy('OSRELEASE=%s\n', 'other', 'decoy');
    assert.equal(c.complete, false);
    assert.equal(c.info, undefined);
  });

  it('judges an out-of-band note text, ignoring its NUL padding', () => {
    const c = outOfBandCopy(vmcoreinfoText(facts) + '\0\0\0', 'ELF note');
    assert.equal(c.complete, true);
    assert.equal(c.kind, 'out-of-band');
  });
});

describe('findVmcoreinfo', () => {
  for (const mapped of [true, false]) {
    it(`finds both copies, rejects the decoys and prefers the ELF note (${mapped ? 'mapped' : 'copying'})`, () => {
      const g = syntheticGuest({ truncatedDataCopy: false });
      const s = findVmcoreinfo(testMemory(g.ram, { mapped }));
      assert.equal(s.strategy, 'aligned');
      assert.equal(s.chosen?.pa, g.noteTextPa);
      assert.equal(s.chosen?.kind, 'elf-note');
      assert.equal(s.chosen?.info?.release, g.release);
      assert.deepEqual(s.copies.filter((c) => c.complete).map((c) => c.pa), [g.noteTextPa, g.dataPa]);
      assert.match(s.reason, /2 complete copies agree/);
      assert.equal(s.scannedBytes, g.ram.length);
      const full = findVmcoreinfo(testMemory(g.ram, { mapped }), { strategy: 'full' });
      assert.equal(full.chosen?.pa, g.noteTextPa);
      const decoy = full.copies.find((c) => !c.complete);
      assert.ok(decoy, 'the format string is seen by a full scan');
      assert.match(full.reason, /1 look-alike\(s\) rejected/);
    });
  }

  it('prefers the complete copy over a truncated one', () => {
    const g = syntheticGuest({ truncatedDataCopy: true });
    const s = findVmcoreinfo(testMemory(g.ram));
    assert.equal(s.chosen?.pa, g.noteTextPa);
    const cut = s.copies.find((c) => c.pa === g.dataPa)!;
    assert.equal(cut.complete, false);
    assert.match(cut.problems.join(';'), /missing/);
  });

  it('says when complete copies disagree', () => {
    const g = syntheticGuest({ staleCopy: true });
    const s = findVmcoreinfo(testMemory(g.ram, { mapped: true }));
    assert.equal(s.copies.filter((c) => c.complete).length, 3);
    assert.match(s.reason, /DISAGREE.*5\.10\.0-32-amd64/);
  });

  it('stops at the first copy the caller accepts, in scan order, and says so', () => {
    const g = syntheticGuest({ staleCopy: true });
    for (const mapped of [true, false]) {
      const offered: (number | undefined)[] = [];
      const s = findVmcoreinfo(testMemory(g.ram, { mapped }), {
        accept: (c) => {
          offered.push(c.pa);
          return c.info?.release === g.release;
        },
      });
      assert.deepEqual(offered, [g.stalePa, g.noteTextPa], 'the stale copy comes first and is refused');
      assert.equal(s.chosen?.pa, g.noteTextPa);
      assert.equal(s.stoppedEarly, true);
      assert.ok(s.scannedBytes < g.ram.length);
      assert.match(s.reason, /scan stopped at the first confirmed copy/);
    }
    const none = findVmcoreinfo(testMemory(g.ram), { accept: () => false });
    assert.equal(none.chosen, undefined);
    assert.equal(none.strategy, 'full', 'nothing accepted: every byte was searched too');
  });

  it('falls back to a full scan for an unaligned copy, also across read chunks', () => {
    const ram = new Uint8Array(3 << 20);
    const text = vmcoreinfoText(facts);
    const at = (1 << 20) - 5; // straddles the first 1 MiB chunk boundary
    ram.set(Buffer.from(text + '\0', 'latin1'), at);
    for (const mapped of [true, false]) {
      const s = findVmcoreinfo(testMemory(ram, { mapped }));
      assert.equal(s.strategy, 'full');
      assert.equal(s.chosen?.pa, at);
      assert.equal(s.chosen?.kind, 'other');
    }
  });

  it('recognises the note header only when it is one', () => {
    const ram = new Uint8Array(1 << 20);
    const textPa = writeNote(ram, 0x4000, vmcoreinfoText(facts));
    ram[0x4000 + 12] = 'X'.charCodeAt(0); // name no longer "VMCOREINFO"
    const s = findVmcoreinfo(testMemory(ram, { mapped: true }));
    assert.equal(s.chosen?.pa, textPa);
    assert.equal(s.chosen?.kind, 'other');
  });

  it('skips holes and reports none found with a ProfileError', () => {
    const ram = new Uint8Array(2 << 20);
    const mem = testMemory(ram, { ranges: [{ start: gpa(0), end: gpa(0xa0000) }, { start: gpa(0x100000), end: gpa(2 << 20) }] });
    const s = findVmcoreinfo(mem);
    assert.equal(s.chosen, undefined);
    assert.equal(s.strategy, 'full');
    assert.throws(() => requireVmcoreinfo(s, 'test'), (e: unknown) => e instanceof ProfileError && /no OSRELEASE= block found/.test(e.message));
  });

  it('stays bounded on memory full of the needle', () => {
    const ram = new Uint8Array(1 << 20);
    const needle = Buffer.from('OSRELEASE=');
    for (let i = 0; i + needle.length <= ram.length; i += needle.length) ram.set(needle, i);
    const t0 = performance.now();
    const s = findVmcoreinfo(testMemory(ram, { mapped: true }), { strategy: 'full' });
    assert.ok(s.copies.length <= 256);
    assert.ok(performance.now() - t0 < 5000);
  });
});

describe('vmcoreinfo fuzz', () => {
  it('random mutations of a real-shaped block parse or refuse with FormatError', () => {
    let s = 99;
    const r = () => ((s = (s * 1664525 + 1013904223) >>> 0) / 4294967296);
    const base = Buffer.from(vmcoreinfoText(facts), 'latin1');
    for (let i = 0; i < 500; i++) {
      const b = Buffer.from(base);
      const edits = 1 + Math.floor(r() * 20);
      for (let k = 0; k < edits; k++) b[Math.floor(r() * b.length)] = Math.floor(r() * 256);
      const cut = r() < 0.3 ? b.subarray(0, Math.floor(r() * b.length)) : b;
      try {
        const v = parseVmcoreinfo(cut.toString('latin1'));
        assert.equal(typeof v.release, 'string');
        missingEssentials(v);
      } catch (e) {
        assert.ok(e instanceof FormatError, String(e));
      }
      const c = examineCopy(cut.toString('latin1'), 'other', 'fuzz');
      assert.equal(typeof c.complete, 'boolean');
    }
  });
});
