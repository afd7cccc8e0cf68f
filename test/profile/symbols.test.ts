import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { ProfileError } from '../../src/core/errors.js';
import { SymbolTable, SymbolTableBuilder, globToRegExp, toRegExp } from '../../src/profile/symbols.js';

function sample(): SymbolTable {
  return new SymbolTableBuilder()
    .add('fixed_percpu_data', 0n, 'A')
    .add('startup_64', 0xffffffff81000000n, 'T')
    .add('_text', 0xffffffff81000000n, 'T')
    .add('cleanup', 0xffffffff81000100n, 't')
    .add('do_one_initcall', 0xffffffff81000200n, 'T')
    .add('cleanup', 0xffffffff81000300n, 't')
    .add('cleanup', 0xffffffff81000400n, 'T')
    .add('init_task', 0xffffffff82000000n, 'D')
    .add('_end', 0xffffffff83000000n, 'B')
    .build('test');
}

describe('SymbolTable', () => {
  it('looks names up, preferring a global symbol among same-named statics', () => {
    const t = sample();
    assert.equal(t.count, 9);
    assert.equal(t.address('init_task'), 0xffffffff82000000n);
    assert.equal(t.get('cleanup')?.address, 0xffffffff81000400n);
    assert.deepEqual(
      t.all('cleanup').map((s) => s.type),
      ['t', 't', 'T'],
    );
    assert.deepEqual(t.indicesOf('cleanup'), [3, 5, 6]);
    assert.equal(t.has('nope'), false);
    assert.equal(t.tryAddress('nope'), undefined);
  });

  it('address() throws a ProfileError naming the symbol and the source', () => {
    const t = sample();
    assert.throws(
      () => t.address('no_such_symbol'),
      (e: unknown) => e instanceof ProfileError && e.symbol === 'no_such_symbol' && e.tried.includes('test') && /no_such_symbol/.test(e.message),
    );
  });

  it('nameOf finds the containing symbol, prefers globals at equal addresses, and stays in range', () => {
    const t = sample();
    assert.deepEqual(
      (({ name, offset }) => ({ name, offset }))(t.nameOf(0xffffffff81000010n)!),
      { name: 'startup_64', offset: 0x10n },
    );
    assert.equal(t.nameOf(0xffffffff81000300n)?.name, 'cleanup');
    assert.equal(t.nameOf(0xffffffff82000008n)?.name, 'init_task');
    assert.equal(t.nameOf(0xffffffff82000008n, 4n), undefined);
    assert.equal(t.nameOf(0xffffffff83000001n), undefined);
    assert.equal(t.nameOf(5n)?.name, 'fixed_percpu_data');
    assert.equal(t.describe(0xffffffff81000204n), 'do_one_initcall+0x4');
    assert.equal(t.describe(0xffffffff82000000n), 'init_task');
  });

  it('nameOf agrees with a plain search for addresses on both sides of every 32-bit boundary', () => {
    const addrs = [0n, 0xfffffff0n, 0x1_0000_0000n, 0x1_0000_0010n, 0x2_ffff_ffffn, 0xffff_8880_0000_0000n, 0xffffffff81000000n, 0xffffffffc0000000n];
    const b = new SymbolTableBuilder();
    addrs.forEach((a, i) => b.add(`s${i}`, a, 'T'));
    const t = b.build('halves');
    const probes = addrs.flatMap((a) => [a, a + 1n, a + 0xfn, a > 0n ? a - 1n : 0n]).concat([0x1_0000_0000n - 1n, 0xffff_ffff_ffff_ffffn]);
    for (const va of probes) {
      let want: number | undefined;
      addrs.forEach((a, i) => {
        if (a <= va) want = i;
      });
      const last = addrs[addrs.length - 1]!;
      assert.equal(t.nameOf(va)?.name, va > last ? undefined : want === undefined ? undefined : `s${want}`, `0x${va.toString(16)}`);
    }
  });

  it('sorts unsorted input for address order but keeps table order for entries()', () => {
    const t = new SymbolTableBuilder().add('c', 30n, 'T').add('a', 10n, 'T').add('b', 20n, 't').add('a2', 10n, 'T').build('u');
    assert.deepEqual(
      [...t.entries()].map((s) => s.name),
      ['c', 'a', 'b', 'a2'],
    );
    assert.deepEqual(
      [...t].map((s) => s.name),
      ['a', 'a2', 'b', 'c'],
    );
    assert.equal(t.nameOf(25n)?.name, 'b');
    assert.equal(t.nameOf(10n)?.name, 'a');
  });

  it('searches by glob, /regex/ and RegExp', () => {
    const t = sample();
    assert.deepEqual(
      t.search('init_*').map((s) => s.name),
      ['init_task'],
    );
    assert.deepEqual(
      t.search('*_t[ae]*').map((s) => s.name),
      ['_text', 'init_task'],
    );
    assert.equal(t.search('clean?p').length, 3);
    assert.equal(t.search('/^_(text|end)$/').length, 2);
    assert.equal(t.search(/INIT/i).length, 2);
    assert.equal(t.search('[!_]*').length, 7);
    assert.throws(() => toRegExp('/(/'), ProfileError);
    assert.equal(globToRegExp('a.b').test('axb'), false);
  });

  it('shifted() moves kernel-image addresses only, and undoes itself', () => {
    const t = sample().shifted(0x1000n);
    assert.equal(t.address('init_task'), 0xffffffff82001000n);
    assert.equal(t.address('fixed_percpu_data'), 0n, 'per-cpu offsets are not relocated by KASLR');
    assert.match(t.source, /shifted by 0x1000/);
    assert.equal(t.nameOf(0xffffffff81001010n)?.name, 'startup_64');
    const back = t.shifted(-0x1000n, 'back');
    assert.deepEqual([...back.entries()], [...sample().entries()]);
    const mod = new SymbolTableBuilder().add('m', 0xffffffffc0001000n, 't', 'dummy').build('m').shifted(0x200000n);
    assert.equal(mod.address('m'), 0xffffffffc0001000n, 'module addresses are not part of the image');
  });

  it('keeps module names', () => {
    const t = new SymbolTableBuilder().add('core_fn', 0xffffffff81000000n, 'T').add('mod_fn', 0xffffffffc0001000n, 't', 'dummy').build('m');
    assert.equal(t.get('mod_fn')?.module, 'dummy');
    assert.equal(t.get('core_fn')?.module, undefined);
    assert.equal(t.moduleAt(1), 'dummy');
  });

  it('refuses columns of different lengths', () => {
    assert.throws(
      () => new SymbolTable({ names: 'ab', nameStarts: Uint32Array.of(0, 1, 2), addresses: new BigUint64Array(1), types: new Uint8Array(2) }, 'bad'),
      ProfileError,
    );
  });

  it('holds 170k symbols in well under 20 MB and answers quickly', () => {
    const b = new SymbolTableBuilder();
    const n = 170_000;
    for (let i = 0; i < n; i++) b.add(`sym_${(i * 7919) % n}_${i % 97 === 0 ? 'dup' : i}`, 0xffffffff81000000n + BigInt(i * 16), i % 3 ? 't' : 'T');
    const t = b.build('big');
    const t0 = performance.now();
    assert.equal(t.address(`sym_${(1234 * 7919) % n}_1234`), 0xffffffff81000000n + BigInt(1234 * 16));
    const firstLookup = performance.now() - t0;
    assert.equal(t.nameOf(0xffffffff81000000n + BigInt(5000 * 16 + 3))?.offset, 3n);
    assert.ok(t.byteSize() < 20 << 20, `${t.byteSize()} bytes`);
    assert.ok(firstLookup < 2000, `first lookup ${firstLookup} ms`);
    assert.equal(t.all('sym_0_dup').length, 1);
  });
});

describe('SymbolTable: KASLR shift and a reused name index', () => {
  it('shiftAddresses moves only kernel-image addresses, with carries, and equals BigInt arithmetic', async () => {
    const { shiftAddresses, KERNEL_IMAGE_MAP } = await import('../../src/profile/symbols.js');
    const src = BigUint64Array.of(
      0n, // absolute / per-cpu: stays
      0x2a000n,
      0xffffffff80000000n, // first image address
      0xffffffff81000000n,
      0xffffffffbfffffffn, // last image address
      0xffffffffc0000000n, // modules: stay
      0xffff888000000000n, // direct map: stays
      0xffffffff8fffffffn,
    );
    for (const delta of [0n, 0x2e400000n, -0x2e400000n, 0x3fe00000n, 0x7fffffffn, -0x80000001n]) {
      const got = shiftAddresses(src, delta);
      const [lo, hi] = KERNEL_IMAGE_MAP;
      for (let i = 0; i < src.length; i++) {
        const a = src[i]!;
        const want = a >= lo && a < hi ? BigInt.asUintN(64, a + delta) : a;
        assert.equal(got[i], want, `delta ${delta} element ${i}`);
      }
    }
    // A range outside the fast path takes the BigInt path with the same semantics.
    assert.deepEqual([...shiftAddresses(BigUint64Array.of(5n, 15n), 10n, [10n, 20n])], [5n, 25n]);
  });

  it('a shifted table keeps names, duplicates and lookups, and shares the name index', () => {
    const t = sample();
    const before = t.nameIndex();
    const s = t.shifted(0x2e400000n);
    assert.equal(s.nameIndex().slots, before.slots, 'the index is reused, not rebuilt');
    assert.equal(s.address('init_task'), 0xffffffff82000000n + 0x2e400000n);
    assert.equal(s.address('fixed_percpu_data'), 0n);
    assert.deepEqual(s.indicesOf('cleanup'), [3, 5, 6]);
    assert.equal(s.nameOf(0xffffffff81000210n + 0x2e400000n)?.name, 'do_one_initcall');
  });

  it('adopts a given index of the right shape; with a damaged one every lookup ends and answers only symbols of the asked name', () => {
    const t = sample();
    const cols = t.columns();
    const good = t.nameIndex();
    const n = t.count;
    // Wrong shape: refused, the table builds its own.
    const odd = { slots: new Uint32Array(3), sameName: new Uint32Array(n) };
    const u = new SymbolTable(cols, 'odd index', odd);
    assert.notEqual(u.nameIndex().slots, odd.slots);
    assert.deepEqual(u.indicesOf('cleanup'), [3, 5, 6]);
    // Right shape but damaged: no empty slot (a probe that never ends), a chain that loops back, indices out of range.
    const full = new Uint32Array(good.slots.length).fill(0);
    const loop = Uint32Array.from(good.sameName);
    loop[5] = 3;
    const outOfRange = new Uint32Array(good.slots.length).fill(0x7fffffff);
    for (const bad of [{ slots: full, sameName: good.sameName }, { slots: good.slots, sameName: loop }, { slots: outOfRange, sameName: good.sameName }]) {
      const d = new SymbolTable(cols, 'damaged index', bad);
      assert.equal(d.nameIndex().slots, bad.slots, 'adopted without a scan');
      for (const name of ['cleanup', 'init_task', '_text', 'nope']) {
        for (const i of d.indicesOf(name)) assert.equal(d.nameAt(i), name);
        const a = d.get(name);
        if (a !== undefined) assert.equal(a.name, name);
      }
    }
    // Well-shaped but lying: a slot pointing at another name and a chain linking different names. Misses at worst.
    const liar = { slots: new Uint32Array(good.slots.length).fill(0xffffffff), sameName: new Uint32Array(n).fill(0xffffffff) };
    liar.slots[0] = 7;
    liar.sameName[3] = 7; // cleanup → init_task
    const l = new SymbolTable(cols, 'liar', liar);
    assert.equal(l.tryAddress('startup_64'), undefined, 'a miss, not a wrong answer');
    for (const name of ['cleanup', 'init_task', '_text']) {
      for (const i of l.indicesOf(name)) assert.equal(l.nameAt(i), name);
    }
  });

  it('uses the decoder-provided name hashes (equal to nameHashes() of the same names)', async () => {
    const { hashBytes } = await import('../../src/profile/symbols.js');
    const t = sample();
    const c = t.columns();
    const bytes = Buffer.from(c.names, 'latin1');
    const hashes = t.nameHashes();
    for (let i = 0; i < t.count; i++) assert.equal(hashes[i], hashBytes(bytes, c.nameStarts[i]!, c.nameStarts[i + 1]!));
    const withHashes = new SymbolTable({ ...c, hashes }, 'with hashes');
    assert.deepEqual(withHashes.indicesOf('cleanup'), [3, 5, 6]);
  });
});
