/**
 * What every walker relies on (walk/common.ts): the kernel-pointer test at its edges, the node limit and
 * the shared budget recording exactly one 'limit' anomaly, reads that fail or come back short becoming
 * 'fault' anomalies (and other errors passing through), and strict mode throwing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FaultError, ValidationError } from '../../../src/core/errors.js';
import { AnomalySink } from '../../../src/linux/anomaly.js';
import { isKernelPointer, WalkBudget, WalkContext } from '../../../src/linux/walk/common.js';
import { Typed } from '../../../src/profile/typed.js';
import { FakeMemory, KBASE, TypeBuilder, typedOver } from '../helpers/synthetic.js';

test('isKernelPointer: the kernel half from 0xff00…, 8-byte aligned, never the all-ones poison', () => {
  assert.equal(isKernelPointer(0xff00_0000_0000_0000n), true, 'the lowest 5-level kernel address');
  assert.equal(isKernelPointer(0xfeff_ffff_ffff_fff8n), false, 'just below the kernel half');
  assert.equal(isKernelPointer(0xffff_ffff_ffff_fff8n), true, 'the highest aligned address');
  assert.equal(isKernelPointer(0xffff_ffff_ffff_ffffn), false, 'all ones');
  assert.equal(isKernelPointer(KBASE + 4n), false, 'misaligned');
  assert.equal(isKernelPointer(0xdead_0000_0000_0100n), false, 'LIST_POISON1');
});

/** A Typed whose memory answers `read` with what `read` returns. */
function typedReading(read: (va: bigint, len: number) => Uint8Array): Typed {
  return new Typed(new TypeBuilder().db(), { read } as unknown as FakeMemory);
}

test('readWords and readBytes: a short read is a fault anomaly naming both lengths, a fault is one too', () => {
  const sink = new AnomalySink();
  const short = new WalkContext(typedReading(() => new Uint8Array(12)), 'test', { anomalies: sink });
  assert.equal(short.readWords(KBASE, 2, 'two words'), undefined);
  assert.equal(short.readBytes(KBASE, 16, 'sixteen bytes'), undefined);
  assert.deepEqual(
    sink.items.map((a) => [a.kind, a.address, a.detail]),
    [
      ['fault', KBASE, 'two words: short read of 12 of 16 bytes'],
      ['fault', KBASE, 'sixteen bytes: short read of 12 of 16 bytes'],
    ],
  );
  const exact = new WalkContext(typedReading(() => new Uint8Array(16)), 'test', { anomalies: sink });
  assert.equal(exact.readBytes(KBASE, 16, 'sixteen bytes')?.length, 16);
  assert.deepEqual(exact.readWords(KBASE, 2, 'two words'), [0n, 0n]);

  const faulting = new WalkContext(typedReading((va) => { throw new FaultError('virtual', va, 'gone'); }), 'test', { anomalies: sink });
  assert.equal(faulting.readWords(KBASE, 1, 'w'), undefined);
  assert.equal(faulting.readBytes(KBASE, 1, 'b'), undefined);
  assert.equal(sink.counts.fault, 4);
});

test('readWords and readBytes let errors other than faults through (bugs are not anomalies)', () => {
  const ctx = new WalkContext(typedReading(() => { throw new TypeError('bug'); }), 'test', { anomalies: new AnomalySink() });
  assert.throws(() => ctx.readWords(KBASE, 1, 'w'), TypeError);
  assert.throws(() => ctx.readBytes(KBASE, 1, 'b'), TypeError);
});

test('readWords decodes each little-endian word', () => {
  const mem = new FakeMemory();
  mem.map(KBASE, 24);
  mem.w64(KBASE, 1n);
  mem.w64(KBASE + 8n, 0xffff_8880_0000_1000n);
  mem.w64(KBASE + 16n, 3n);
  const ctx = new WalkContext(typedOver(new TypeBuilder().db(), mem), 'test', { anomalies: new AnomalySink() });
  assert.deepEqual(ctx.readWords(KBASE, 3, 'w'), [1n, 0xffff_8880_0000_1000n, 3n]);
});

test('an anomaly without an address carries none; strict mode throws ValidationError at address 0 for it', () => {
  const sink = new AnomalySink();
  const ctx = new WalkContext(typedReading(() => new Uint8Array(0)), 'test.where', { anomalies: sink });
  ctx.anomaly('invalid', undefined, 'no address');
  ctx.anomaly('invalid', KBASE, 'an address');
  assert.equal('address' in sink.items[0]!, false);
  assert.equal(sink.items[1]!.address, KBASE);
  assert.equal(sink.items[0]!.where, 'test.where');
  const strict = new WalkContext(typedReading(() => new Uint8Array(0)), 'strict.where');
  assert.throws(
    () => strict.anomaly('cycle', undefined, 'looped'),
    (e: unknown) => e instanceof ValidationError && e.address === 0n && e.structure === 'strict.where' && /cycle: looped/.test(e.message),
  );
  assert.throws(() => strict.anomaly('cycle', KBASE, 'looped'), (e: unknown) => e instanceof ValidationError && e.address === KBASE);
});

test('checkPointer: true for a kernel pointer, false with one bad-pointer anomaly otherwise', () => {
  const sink = new AnomalySink();
  const ctx = new WalkContext(typedReading(() => new Uint8Array(0)), 'test', { anomalies: sink });
  assert.equal(ctx.checkPointer(KBASE, 'next'), true);
  assert.equal(sink.total, 0);
  assert.equal(ctx.checkPointer(0x1000n, 'next'), false);
  assert.deepEqual(sink.items.map((a) => [a.kind, a.address]), [['bad-pointer', 0x1000n]]);
});

test('step: the limit stops the walk with one limit anomaly however often it is asked again', () => {
  const sink = new AnomalySink();
  const ctx = new WalkContext(typedReading(() => new Uint8Array(0)), 'test', { anomalies: sink, limit: 2 });
  assert.equal(ctx.step(KBASE), true);
  assert.equal(ctx.step(KBASE), true);
  assert.equal(ctx.limited, false);
  assert.equal(ctx.step(KBASE), false);
  assert.equal(ctx.step(KBASE), false);
  assert.equal(ctx.limited, true);
  assert.equal(ctx.visited, 2);
  assert.equal(sink.counts.limit, 1);
});

test('step: a shared budget, once spent, limits every walk over it, and only the first records the anomaly', () => {
  const sink = new AnomalySink();
  const budget = new WalkBudget(1);
  const first = new WalkContext(typedReading(() => new Uint8Array(0)), 'first', { anomalies: sink, budget });
  assert.equal(first.step(KBASE), true);
  assert.equal(first.step(KBASE), false);
  assert.equal(first.limited, true, 'the walk that ran out is limited');
  assert.deepEqual(sink.items.map((a) => [a.kind, a.where]), [['limit', 'first']], 'the anomaly names the walk that ran out');
  const second = new WalkContext(typedReading(() => new Uint8Array(0)), 'second', { anomalies: sink, budget });
  assert.equal(second.step(KBASE), false);
  assert.equal(second.limited, true, 'a later walk over the spent budget is limited too');
  assert.equal(sink.counts.limit, 1);
  assert.equal(budget.exhausted, true);
});
