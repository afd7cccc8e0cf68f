/**
 * Bad input, end to end: the files, network and integrity plugins over a
 * live 6.1 guest whose kernel memory reads come back corrupted (a fixed,
 * address-seeded fraction of 8-byte words replaced by garbage, self-pointers
 * or huge values, the same on every read). Every plugin must finish in
 * bounded time; anything it cannot read is a named anomaly (a known kind and
 * the structure it was met in; a row value shown as unreadable comes with
 * one; at one word in 7 every plugin reports some) or a typed VmsightError,
 * never a RangeError/TypeError or a hang.
 */
import { everyPluginOptions } from '../../helpers/plugin-runs.js';
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { AddressSpace, VirtualReadOp } from '../../../src/arch/address-space.js';
import { VmsightError } from '../../../src/core/errors.js';
import { Kernel } from '../../../src/linux/kernel.js';
import type { AnomalyKind } from '../../../src/linux/anomaly.js';
import { isAbsent, runPlugin } from '../../../src/linux/plugin.js';
import { plugins } from '../../../src/linux/plugins/index.js';
import { attachForSuite } from '../../helpers/kernel.js';
import { gva } from '../../../src/core/address.js';

/** Deterministic per-address garbage for one in `every` words. */
function corruptWord(a: bigint, every: number, seed: number): bigint | undefined {
  let h = Number((a >> 3n) & 0xffff_ffffn) ^ seed;
  h = Math.imul(h ^ (h >>> 16), 0x45d9f3b);
  h = Math.imul(h ^ (h >>> 16), 0x45d9f3b);
  h = (h ^ (h >>> 16)) >>> 0;
  if (h % every !== 0) return undefined;
  switch (h % 5) {
    case 0:
      return a; // points at itself: cycles
    case 1:
      return 0xffff_ffff_ffff_fff0n; // huge / non-canonical-ish
    case 2:
      return BigInt(h) * 0x1_0001n; // small garbage, absurd lengths
    case 3:
      return 0xdead_0000_0000_0100n; // list poison
    default:
      return 0xffff_8880_0000_0000n + (BigInt(h) << 12n); // kernel-looking pointer into (mostly) nothing
  }
}

function corrupt(bytes: Uint8Array, va: bigint, every: number, seed: number): void {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const first = Number((8n - (va & 7n)) & 7n);
  for (let o = first; o + 8 <= bytes.length; o += 8) {
    const w = corruptWord(va + BigInt(o), every, seed);
    if (w !== undefined) dv.setBigUint64(o, w, true);
  }
}

/** 8-byte words read through the corrupted space since the counter was reset. */
const wordsRead = { n: 0 };

/** The kernel address space with corrupted reads (copies; never writes the guest). */
function corruptSpace(inner: AddressSpace, every: number, seed: number): AddressSpace {
  const read = (va: bigint, len: number): Uint8Array => {
    const b = Uint8Array.from(inner.read(gva(va), len));
    corrupt(b, va, every, seed);
    wordsRead.n += Math.ceil(len / 8);
    return b;
  };
  const view = (va: bigint, n: number) => {
    const b = read(va, n);
    return new DataView(b.buffer, b.byteOffset, n);
  };
  const wrapper = {
    read,
    // Objects decoded in place get the same corrupted copies.
    readInPlace: read,
    readv(ops: VirtualReadOp[]) {
      const failures = inner.readv(ops);
      for (const op of ops) {
        corrupt(op.dst!, op.va, every, seed);
        wordsRead.n += Math.ceil(op.len / 8);
      }
      return failures;
    },
    readInto(va: bigint, dst: Uint8Array) {
      dst.set(read(va, dst.length));
    },
    readU8: (va: bigint) => read(va, 1)[0]!,
    readU16: (va: bigint) => view(va, 2).getUint16(0, true),
    readU32: (va: bigint) => view(va, 4).getUint32(0, true),
    readU64: (va: bigint) => view(va, 8).getBigUint64(0, true),
    readPointer: (va: bigint) => view(va, 8).getBigUint64(0, true),
    readCString(va: bigint, max = 4096) {
      const b = read(va, Math.min(max, 4096 - Number(va & 0xfffn)));
      const end = b.indexOf(0);
      return Buffer.from(b.subarray(0, end < 0 ? b.length : end)).toString('utf8');
    },
  };
  return new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop in wrapper) return (wrapper as Record<string | symbol, unknown>)[prop];
      const v = Reflect.get(target, prop, receiver);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
}

const ANOMALY_KINDS: readonly AnomalyKind[] = ['cycle', 'broken-link', 'fault', 'bad-pointer', 'limit', 'invalid', 'truncated'];

/** True when any value of a row (or of an array in it) is an 'unreadable' absent value. */
function hasUnreadable(row: object): boolean {
  return Object.values(row).some((v) => (Array.isArray(v) ? v.some((x) => isAbsent(x) && x.absent === 'unreadable') : isAbsent(v) && v.absent === 'unreadable'));
}

describe('kernel plugins over corrupted memory (6.1)', { timeout: 900_000 }, () => {
  const g = attachForSuite({ kernel: '6.1' });

  for (const every of [7, 61, 997]) {
    for (const seed of [1, 2]) {
      test(`one word in ${every} corrupted, seed ${seed}: every plugin ends, bounded, and names what it could not read`, () => {
        const k = new Kernel(g.kernel.memory, corruptSpace(g.kernel.space, every, seed), g.kernel.profile);
        const silent: string[] = [];
        let total = 0;
        for (const plugin of plugins) {
          const t0 = performance.now();
          wordsRead.n = 0;
          let r: ReturnType<typeof runPlugin> | undefined;
          try {
            r = runPlugin(plugin, k, everyPluginOptions(plugin));
          } catch (e) {
            if (process.env['VMSIGHT_TEST_VERBOSE']) process.stderr.write(`${every}/${seed} ${plugin.name}: threw ${(e as Error).message.slice(0, 100)}\n`);
            assert.ok(e instanceof VmsightError, `${plugin.name} threw ${(e as Error)?.constructor?.name}: ${(e as Error).message}\n${(e as Error).stack}`);
            total++;
          }
          if (r) {
            const counted = Object.values(r.anomalyCounts).reduce((a, b) => a + (b ?? 0), 0);
            if (process.env['VMSIGHT_TEST_VERBOSE']) process.stderr.write(`${every}/${seed} ${plugin.name}: ${r.rows.length} rows ${JSON.stringify(r.anomalyCounts)}\n`);
            // Every anomaly is named: a known kind, the structure it was met in; the counts cover the items.
            for (const a of r.anomalies) {
              assert.ok(ANOMALY_KINDS.includes(a.kind), `${plugin.name}: anomaly kind ${a.kind}`);
              assert.ok(typeof a.where === 'string' && a.where.length > 0, `${plugin.name}: anomaly without a place: ${JSON.stringify(a, (_k, v) => (typeof v === 'bigint' ? String(v) : v))}`);
              assert.ok(a.address === undefined || typeof a.address === 'bigint');
            }
            assert.ok(counted >= r.anomalies.length, `${plugin.name}: counts ${counted} cover ${r.anomalies.length} anomalies`);
            for (const kind of Object.keys(r.anomalyCounts)) assert.ok(ANOMALY_KINDS.includes(kind as AnomalyKind), `${plugin.name}: counted kind ${kind}`);
            // A value shown as unreadable has its anomaly: nothing unreadable goes unreported.
            const unreadable = r.rows.filter((row) => hasUnreadable(row as object));
            if (unreadable.length) assert.ok(counted > 0, `${plugin.name}: rows with unreadable values and no anomaly: ${JSON.stringify(unreadable[0], (_k, v) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v))}`);
            // A plugin that read only a few words (an empty eBPF id table, an empty notifier chain) may
            // have met no corrupted word that matters; past 256 words read, (6/7)^256 says it met many.
            if (counted === 0 && wordsRead.n >= 256) silent.push(`${plugin.name} (${r.rows.length} rows, ${wordsRead.n} words read)`);
            total += counted;
          }
          const ms = performance.now() - t0;
          assert.ok(ms < 20_000, `${plugin.name} took ${ms.toFixed(0)} ms`);
        }
        // The corruption is noticed: at one word in 7, every plugin that walks kernel memory meets it.
        if (every === 7) assert.deepEqual(silent, [], `plugins that met heavy corruption without one anomaly: ${silent.join(', ')}`);
        assert.ok(total > 0, 'the corruption was noticed somewhere');
      });
    }
  }
});
