import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProfileError } from '../../src/core/errors.js';
import { parseBtf } from '../../src/profile/btf.js';
import { ArrayTypeStore, TypeDb, intSpellings, splitPath } from '../../src/profile/types.js';
import { BtfEncoder, kernelLikeBtf } from './helpers/btf-encoder.js';
import { layoutText } from '../../src/cli/commands/type-layout.js';

function fixtureDb(): TypeDb {
  return new TypeDb(parseBtf(kernelLikeBtf().bytes, { source: 'btf:fixture' }));
}

test('splitPath parses members and indices', () => {
  assert.deepEqual(splitPath('a.b[2].c'), ['a', 'b', 2, 'c']);
  assert.deepEqual(splitPath('[3]'), [3]);
  assert.deepEqual(splitPath(''), []);
  assert.equal(splitPath('a..b'), undefined);
  assert.equal(splitPath('.a'), undefined);
  assert.equal(splitPath('a[x]'), undefined);
});

test('offsetOf goes through anonymous unions and structs, arrays and nested members', () => {
  const db = fixtureDb();
  assert.equal(db.offsetOf('task_struct', 'pid'), 4);
  assert.equal(db.offsetOf('task_struct', 'prio_word'), 56);
  assert.equal(db.offsetOf('task_struct', 'static_prio'), 60);
  assert.equal(db.offsetOf('task_struct', 'tasks.next'), 16);
  assert.equal(db.offsetOf('task_struct', 'comm[15]'), 55);
  assert.equal(db.tryField('task_struct', 'comm[16]'), undefined);
  assert.equal(db.field('task_struct', 'tgid').size, 4);
  assert.equal(db.typeName(db.field('task_struct', 'tgid').type), 'const pid_t');
  assert.equal(db.typeName(db.field('task_struct', 'mm').type), 'struct mm_struct *');
  assert.equal(db.declare(db.field('task_struct', 'comm').type, 'comm'), 'char comm[16]');
});

test('missing types and fields throw ProfileError naming type, field and source', () => {
  const db = fixtureDb();
  assert.throws(
    () => db.offsetOf('task_struct', 'mmap'),
    (e: unknown) => e instanceof ProfileError && e.type === 'task_struct' && e.field === 'mmap' && e.tried[0] === 'btf:fixture' && /no member 'mmap'/.test(e.message),
  );
  assert.throws(
    () => db.struct('vm_area_struct'),
    (e: unknown) => e instanceof ProfileError && e.type === 'struct vm_area_struct' && /btf:fixture/.test(e.message),
  );
  assert.throws(() => db.sizeOf('no_such_t'), ProfileError);
  assert.equal(db.hasMember('task_struct', 'tasks.prev'), true);
  assert.equal(db.hasMember('task_struct', 'tasks.prev.next'), false); // through a pointer: not a member path
});

test('sizeOf, parse and intSpellings', () => {
  const db = fixtureDb();
  assert.equal(db.sizeOf('struct list_head'), 16);
  assert.equal(db.sizeOf('unsigned long'), 8);
  assert.equal(db.sizeOf('unsigned long[4]'), 32);
  assert.equal(db.sizeOf('struct task_struct *[3]'), 24);
  assert.equal(db.typeName(db.parse('struct task_struct *[3]')), 'struct task_struct *[3]');
  assert.equal(db.parse('struct list_head *'), db.parse('list_head *'));
  assert.deepEqual(intSpellings('unsigned long'), ['long unsigned int', 'unsigned long int', 'unsigned long']);
  assert.deepEqual(intSpellings('struct x'), []);
});

test('enum names and enumerators', () => {
  const db = fixtureDb();
  assert.equal(db.enumName('task_state', 1), 'TASK_INTERRUPTIBLE');
  assert.equal(db.enumName('task_state', -1n), 'TASK_DEAD');
  assert.equal(db.enumName('task_state', 42), undefined);
  assert.equal(db.enumerator('task_state', 'TASK_DEAD'), -1n);
});

test('layout prints offsets, sizes, bitfields, holes and a summary', () => {
  const e = new BtfEncoder();
  const ch = e.int('char', 1, { char: true, signed: true });
  const lg = e.int('long int', 8, { signed: true });
  const ui = e.int('unsigned int', 4);
  e.struct('holey', 24, [
    { name: 'c', type: ch, bitOffset: 0 },
    { name: 'l', type: lg, bitOffset: 64 },
    { name: 'f', type: ui, bitOffset: 128, bitSize: 2 },
  ], true);
  const db = new TypeDb(parseBtf(e.build()));
  const text = layoutText(db, 'holey');
  assert.match(text, /^struct holey \{/);
  assert.match(text, /char c;\s+\/\*\s+0\s+1 \*\//);
  assert.match(text, /XXX 7 bytes hole/);
  assert.match(text, /long int l;\s+\/\*\s+8\s+8 \*\//);
  assert.match(text, /unsigned int f:2;\s+\/\*\s+16: 0\s+4 \*\//);
  assert.match(text, /size: 24, members: 3, holes: 1, sum holes: 7, padding: 7/);
  assert.match(layoutText(fixtureDb(), 'task_struct'), /union \{\n\t\tstruct \{\n\t\t\tint prio;/);
});

test('ISF-style store: ArrayTypeStore fills the same model', () => {
  const s = new ArrayTypeStore('isf:test');
  const int = s.add({ kind: 'int', name: 'int', size: 4, signed: true, char: false, bool: false, bits: 32, bitOffset: 0 });
  const pt = s.add({ kind: 'struct', name: 'pt', size: 8, members: [] });
  s.set(pt, { kind: 'struct', name: 'pt', size: 8, members: [{ name: 'x', type: int, bitOffset: 0, bitSize: 0 }, { name: 'y', type: int, bitOffset: 32, bitSize: 0 }] });
  const db = new TypeDb(s);
  assert.equal(db.offsetOf('pt', 'y'), 4);
  assert.equal(db.source, 'isf:test');
  assert.ok(db.pointerTo(pt) >= s.count);
  assert.equal(db.pointerTo(pt), db.pointerTo(pt));
  assert.equal(db.sizeOf(db.arrayOf(pt, 3)), 24);
});

test('hostile BTF: typedef cycles and self-nesting anonymous members stay bounded', () => {
  const e = new BtfEncoder();
  // typedef 1 -> 2 -> 1
  e.typedef('a', 2);
  e.typedef('b', 1);
  // struct 3 holds 200 anonymous members of its own type: exponential without memoisation.
  const members = Array.from({ length: 200 }, () => ({ name: '', type: 3, bitOffset: 0 }));
  e.struct('selfish', 8, members);
  const db = new TypeDb(parseBtf(e.build()));
  assert.throws(() => db.resolve(1), ProfileError);
  assert.throws(() => db.sizeOf(1), ProfileError);
  const t0 = performance.now();
  assert.equal(db.hasMember('selfish', 'nothing'), false);
  const text = layoutText(db, 'selfish');
  assert.ok(text.length < 5_000_000);
  assert.ok(performance.now() - t0 < 30_000); // a hang guard, not a speed goal (those are benchmarks)
});
