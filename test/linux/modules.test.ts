import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AnomalySink } from '../../src/linux/anomaly.js';
import { carveModules, carveModulesInBuffer, decodeModule, moduleOwning } from '../../src/linux/modules.js';
import { BareSpace, makeKernel } from './helpers/bare-kernel.js';
import { TypeBuilder } from './helpers/synthetic.js';

const MOD_AREA = 0xffff_ffff_c000_0000n;

/** struct module in the two layouts (R8): module_layout (core_layout/init_layout) or module_memory mem[]. */
function moduleTypes(variant: 'layout' | 'memory'): TypeBuilder {
  const b = new TypeBuilder();
  const { listHead } = b.listTypes();
  const state = b.enum_('module_state', { MODULE_STATE_LIVE: 0, MODULE_STATE_COMING: 1, MODULE_STATE_GOING: 2, MODULE_STATE_UNFORMED: 3 });
  const mod = b.declare('module');
  const mk = b.struct('module_kobject', 0x20, [['kobj', b.struct('kobject', 0x10, [['name', b.ptr(b.char), 0]]), 0], ['mod', b.ptr(mod), 0x10]]);
  const atomic = b.typedef('atomic_t', b.struct('', 4, [['counter', b.int_, 0]]));
  if (variant === 'layout') {
    const layout = b.struct('module_layout', 0x20, [['base', b.voidp, 0], ['size', b.uint, 8], ['text_size', b.uint, 12]]);
    b.define(mod, 0x100, [
      ['state', state, 0],
      ['list', listHead, 8],
      ['name', b.array(b.char, 56), 0x18],
      ['mkobj', mk, 0x50],
      ['core_layout', layout, 0x80],
      ['init_layout', layout, 0xa0],
      ['taints', b.ulong, 0xc0],
      ['refcnt', atomic, 0xc8],
    ]);
  } else {
    const mm = b.struct('module_memory', 0x10, [['base', b.voidp, 0], ['size', b.uint, 8]]);
    b.define(mod, 0x100, [
      ['state', state, 0],
      ['list', listHead, 8],
      ['name', b.array(b.char, 56), 0x18],
      ['mkobj', mk, 0x50],
      ['mem', b.array(mm, 7), 0x80],
      ['taints', b.ulong, 0xf0],
      ['refcnt', atomic, 0xf8],
    ]);
  }
  return b;
}

function writeModule(mem: BareSpace, at: bigint, name: string, variant: 'layout' | 'memory', backPointer = at): void {
  mem.map(at, 0x100);
  mem.w32(at, 0);
  mem.w64(at + 8n, at + 8n);
  mem.w64(at + 16n, at + 8n);
  mem.wstr(at + 0x18n, name);
  mem.w64(at + 0x60n, backPointer);
  if (variant === 'layout') {
    mem.w64(at + 0x80n, at - 0x2000n);
    mem.w32(at + 0x88n, 0x3000);
    mem.w64(at + 0xc0n, (1n << 12n) | (1n << 13n));
    mem.w32(at + 0xc8n, 1);
  } else {
    mem.w64(at + 0x80n, at - 0x2000n); // text
    mem.w32(at + 0x88n, 0x1000);
    mem.w64(at + 0x90n, at); // data
    mem.w32(at + 0x98n, 0x1000);
    mem.w64(at + 0xf0n, 1n << 12n);
    mem.w32(at + 0xf8n, 3);
  }
}

describe('struct module decoding by presence', () => {
  for (const variant of ['layout', 'memory'] as const) {
    test(`${variant}: base, size, ranges, refcount, taints`, () => {
      const mem = new BareSpace();
      const at = MOD_AREA + 0x5040n;
      writeModule(mem, at, 'vmi_rootkit', variant);
      const k = makeKernel(moduleTypes(variant), mem, [['_end', 0xffff_ffff_8400_0000n]]);
      const m = decodeModule(k.typed.obj('module', at).read());
      assert.equal(m.name, 'vmi_rootkit');
      assert.equal(m.state, 'Live');
      assert.equal(m.base, at - 0x2000n);
      assert.equal(m.size, variant === 'layout' ? 0x3000 : 0x2000);
      assert.equal(m.refcount, variant === 'layout' ? 0 : 2);
      assert.equal(m.taints, variant === 'layout' ? 'OE' : 'O');
      assert.ok(m.kobjectConsistent);
      assert.equal(moduleOwning([m], at - 0x1800n)?.name, 'vmi_rootkit');
      assert.equal(moduleOwning([m], at + 0x10000n), undefined);
    });
  }
});

describe('carving struct module candidates', () => {
  test('finds modules by their mkobj.mod back-pointer and rejects look-alikes', () => {
    const mem = new BareSpace();
    writeModule(mem, MOD_AREA + 0x1040n, 'dummy', 'layout');
    writeModule(mem, MOD_AREA + 0x1ff0n, 'crosses_page', 'layout'); // straddles a page boundary
    writeModule(mem, MOD_AREA + 0x3000n, 'bad\x01name', 'layout');
    writeModule(mem, MOD_AREA + 0x4000n, 'nopointer', 'layout', 0n);
    const k = makeKernel(moduleTypes('layout'), mem, [['_end', 0xffff_ffff_8400_0000n]]);
    const a = new AnomalySink();
    assert.deepEqual(carveModules(k, a).map((m) => m.name).sort(), ['crosses_page', 'dummy']);
    assert.equal(a.total, 0);
  });

  test('a buffer of garbage yields nothing, in bounded time', () => {
    const k = makeKernel(moduleTypes('memory'), new BareSpace(), []);
    const junk = new Uint8Array(1 << 20);
    for (let i = 0; i < junk.length; i++) junk[i] = (i * 2654435761) >>> 24;
    const t0 = performance.now();
    assert.deepEqual(carveModulesInBuffer(k, MOD_AREA, junk), []);
    assert.ok(performance.now() - t0 < 30_000); // a hang guard, not a speed goal (those are benchmarks)
  });
});
