import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FaultError, ProfileError, ShortReadError } from '../../src/core/errors.js';
import { AnomalySink } from '../../src/linux/anomaly.js';
import type { Kernel } from '../../src/linux/kernel.js';
import { readObject } from '../../src/linux/tasks.js';
import { parseBtf } from '../../src/profile/btf.js';
import { Typed, type VirtualMemory } from '../../src/profile/typed.js';
import { TypeDb } from '../../src/profile/types.js';
import { kernelLikeBtf } from './helpers/btf-encoder.js';

/** Guest memory made of a few byte regions; counts reads. */
class FakeMemory implements VirtualMemory {
  reads = 0;
  private readonly regions: { va: bigint; bytes: Uint8Array }[] = [];
  map(va: bigint, size: number): DataView {
    const bytes = new Uint8Array(size);
    this.regions.push({ va, bytes });
    return new DataView(bytes.buffer);
  }
  read(va: bigint, len: number): Uint8Array {
    this.reads++;
    for (const r of this.regions) {
      const o = Number(va - r.va);
      if (va >= r.va && o + len <= r.bytes.length) return r.bytes.subarray(o, o + len);
    }
    throw new FaultError('virtual', va, 'not mapped');
  }
}

const TASK = 0xffff888001000000n;
const TASK2 = 0xffff888001000100n;
const MM = 0xffff888002000000n;

function setup() {
  const db = new TypeDb(parseBtf(kernelLikeBtf().bytes, { source: 'btf:fixture' }));
  const mem = new FakeMemory();
  const t = mem.map(TASK, 0x200);
  t.setInt32(0, -1, true); // state = TASK_DEAD
  t.setInt32(4, 1234, true); // pid
  t.setInt32(8, 1200, true); // tgid
  t.setUint8(12, 0b10110); // in_execve=0, in_iowait=1, flags3=0b101 (= -3 signed)
  t.setBigUint64(16, TASK2 + 16n, true); // tasks.next -> task2.tasks
  t.setBigUint64(24, TASK2 + 16n, true);
  t.setBigUint64(32, MM, true); // mm
  new Uint8Array(t.buffer).set(Buffer.from('vmi-canary\0junk'), 40); // comm
  t.setInt32(56, 120, true); // prio
  t.setInt32(60, 100, true); // static_prio
  t.setBigUint64(64, 987654321012345678n, true); // start_time
  // task2 at +0x100: mm NULL
  t.setInt32(0x100 + 4, 1, true);
  new Uint8Array(t.buffer).set(Buffer.from('init\0'), 0x100 + 40);
  const m = mem.map(MM, 24);
  m.setBigUint64(0, 0x7ffc00001000n, true);
  m.setBigUint64(8, 0x7ffc00001100n, true);
  m.setBigUint64(16, TASK, true);
  return { db, mem, typed: new Typed(db, mem) };
}

test('read() fetches the whole struct in one read; accessors do not read again', () => {
  const { mem, typed } = setup();
  const ref = typed.obj('task_struct', TASK);
  assert.equal(mem.reads, 0);
  const task = ref.read();
  assert.equal(mem.reads, 1);
  assert.equal(task.bytes.length, 80);
  assert.equal(task.u32('pid'), 1234);
  assert.equal(task.s32('tgid'), 1200);
  assert.equal(task.int('state'), -1n);
  assert.equal(task.enumName('state'), 'TASK_DEAD');
  assert.equal(task.bits('in_execve'), 0n);
  assert.equal(task.bits('in_iowait'), 1n);
  assert.equal(task.bits('flags3'), -3n); // signed 3-bit field 0b101
  assert.equal(task.str('comm'), 'vmi-canary');
  assert.equal(task.ptr('mm'), MM);
  assert.equal(task.u64('start_time'), 987654321012345678n);
  assert.equal(task.num('prio'), 120);
  assert.equal(task.s32('static_prio'), 100);
  assert.equal(task.u8('comm[1]'), 'm'.charCodeAt(0));
  assert.equal(task.member('tasks').ptr('next'), TASK2 + 16n);
  assert.equal(task.length('comm'), 16);
  assert.equal(task.elem('comm', 0).u8(), 'v'.charCodeAt(0));
  assert.equal(task.array('comm').length, 16);
  assert.equal(task.addrOf('tasks.prev'), TASK + 24n);
  assert.equal(task.has('prio_word'), true);
  assert.equal(task.has('mmap'), false);
  assert.equal(mem.reads, 1);
});

test('following pointers: obj(), deref() and containerOf()', () => {
  const { mem, typed } = setup();
  const task = typed.obj('task_struct', TASK).read();
  const mm = task.obj('mm')!;
  assert.equal(mm.typeName, 'struct mm_struct');
  assert.equal(mm.read().u64('arg_start'), 0x7ffc00001000n);
  const before = mem.reads;
  assert.equal(task.deref('mm.arg_end')!.u64(), 0x7ffc00001100n);
  assert.equal(mem.reads, before + 1); // the pointer came from the snapshot; one read for the field
  assert.equal(task.deref('mm.owner')!.ptr(), TASK);
  const next = typed.containerOf(task.member('tasks').ptr('next'), 'task_struct', 'tasks');
  assert.equal(next.address, TASK2);
  const t2 = next.read();
  assert.equal(t2.str('comm'), 'init');
  assert.equal(t2.obj('mm'), null);
  assert.equal(t2.deref('mm.arg_start'), null);
  // A reference without a read: addresses and single fields.
  assert.equal(next.addrOf('comm'), TASK2 + 40n);
  assert.equal(next.field('pid').u32(), 1);
  assert.equal(next.member('tasks').typeName, 'struct list_head');
  // `void *` cast through obj(path, as)
  assert.equal(task.obj('stack', 'struct mm_struct'), null);
});

test('wrong widths, bitfields as words and missing fields are ProfileErrors with coordinates', () => {
  const { typed } = setup();
  const task = typed.obj('task_struct', TASK).read();
  assert.throws(() => task.u64('pid'), (e: unknown) => e instanceof ProfileError && e.field === 'pid' && /4 bytes/.test(e.message));
  assert.throws(() => task.u32('in_execve'), /bitfield; use bits/);
  assert.throws(() => task.ptr('pid'), /not a pointer/);
  assert.throws(() => task.str('pid'), /not a char array/);
  assert.throws(() => task.u32('mmap'), (e: unknown) => e instanceof ProfileError && e.type === 'task_struct' && e.field === 'mmap' && e.tried[0] === 'btf:fixture');
  assert.throws(() => typed.obj('no_such_struct', TASK), ProfileError);
  assert.throws(() => task.enumName('pid'), /not an enum/);
  assert.throws(() => task.deref('in_execve'), /bitfield/);
});

test('faults propagate as FaultError; has() checks presence', () => {
  const { typed } = setup();
  assert.throws(() => typed.obj('task_struct', 0xdead0000n).read(), FaultError);
  assert.equal(typed.has('mm_struct', 'arg_start'), true);
  assert.equal(typed.has('mm_struct', 'mm_mt'), false);
  assert.equal(typed.has('mm_struct'), true);
  assert.equal(typed.has('maple_tree'), false);
});

test('a read that returns fewer bytes than the object is a ShortReadError (a FaultError), and readObject records it as a fault', () => {
  const { db, mem } = setup();
  // A source that gives only the first 16 bytes of anything (e.g. the end of a dump cut short).
  const short: VirtualMemory = { read: (va, len) => mem.read(va, Math.min(len, 16)) };
  const typed = new Typed(db, short);
  const size = typed.obj('task_struct', TASK).size;
  assert.ok(size > 16);
  assert.throws(
    () => typed.obj('task_struct', TASK).read(),
    (e: unknown) => e instanceof ShortReadError && e instanceof FaultError && !(e instanceof ProfileError) && e.address === TASK && e.firstMissing === TASK + 16n && e.wanted === size && e.got === 16,
  );
  const anomalies = new AnomalySink();
  const k = { typed } as unknown as Kernel; // readObject reads through kernel.typed only
  assert.equal(readObject(k, 'task_struct', TASK, anomalies, 'test.task'), undefined);
  assert.deepEqual(anomalies.items.map((a) => [a.kind, a.where, a.address]), [['fault', 'test.task', TASK]]);
  assert.match(anomalies.items[0]!.detail ?? '', /^virtual address 0xffff888001000000: short read of struct task_struct: 16 of \d+ bytes$/);
});

test('copy snapshots do not change when memory does', () => {
  const { mem, typed } = setup();
  const live = typed.obj('task_struct', TASK).read();
  const snap = typed.obj('task_struct', TASK).read({ copy: true });
  new DataView(mem.read(TASK, 8).buffer).setInt32(4, 999, true);
  assert.equal(live.u32('pid'), 999);
  assert.equal(snap.u32('pid'), 1234);
});
