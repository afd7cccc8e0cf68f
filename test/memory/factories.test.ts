import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FACTORIES, lazyFactory } from '../../src/memory/factories.js';
import type { SourceFactory, SourceTarget } from '../../src/memory/source-factory.js';
import * as catalog from '../../src/memory/sources/catalog.js';
import { FakeMemory } from './helpers/fake-memory.js';

const MODULES: Record<string, () => Promise<{ factory: SourceFactory }>> = {
  'qemu-shm': () => import('../../src/memory/sources/qemu-shm.js'),
  'qemu-process': () => import('../../src/memory/sources/qemu-process.js'),
  'gdb-stub': () => import('../../src/memory/sources/gdb-stub.js'),
  'monitor-read': () => import('../../src/memory/sources/monitor-read.js'),
  'halt-snapshot': () => import('../../src/memory/sources/halt-snapshot.js'),
  'live-snapshot': () => import('../../src/memory/sources/live-snapshot.js'),
  'elf-core': () => import('../../src/memory/sources/elf-core.js'),
  kdump: () => import('../../src/memory/sources/kdump.js'),
  lime: () => import('../../src/memory/sources/lime.js'),
  'raw-file': () => import('../../src/memory/sources/raw-file.js'),
};

/** Targets that name one thing each (none of them reachable: no probe may get past its first check). */
const TARGETS: readonly SourceTarget[] = [
  { spec: 'nothing', params: {} },
  { spec: 'file', file: '/nonexistent/vmsight-test.elf', params: {} },
  { spec: 'gdb', gdb: '127.0.0.1:1', params: {} },
  { spec: 'shm', shm: '/nonexistent/vmsight-test-shm', params: {} },
  { spec: 'pid', pid: 1, params: {} },
];

test('every technique module is listed once, described as its catalog entry says', async () => {
  assert.deepEqual(FACTORIES.map((f) => f.name).sort(), Object.keys(MODULES).sort());
  const entries = Object.values(catalog).filter((v): v is catalog.SourceInfo => typeof v === 'object' && v !== null && 'needs' in v);
  assert.equal(entries.length, FACTORIES.length);
  for (const lazy of FACTORIES) {
    const { factory } = await MODULES[lazy.name]!();
    assert.deepEqual({ name: factory.name, class: factory.class, summary: factory.summary }, { name: lazy.name, class: lazy.class, summary: lazy.summary }, lazy.name);
  }
});

test('a target that lacks what a technique needs gets the reason its own probe gives, without loading it', async () => {
  for (const lazy of FACTORIES) {
    const { factory } = await MODULES[lazy.name]!();
    const info = Object.values(catalog).find((v) => typeof v === 'object' && v !== null && 'needs' in v && v.name === lazy.name) as catalog.SourceInfo;
    for (const target of TARGETS) {
      const reason = info.needs(target);
      if (reason === undefined) continue;
      assert.deepEqual(await lazy.probe(target), await factory.probe(target), `${lazy.name} on ${target.spec}`);
      assert.deepEqual(await lazy.probe(target), { ok: false, rank: 0, reason });
    }
  }
});

test('a lazy technique loads its module once, on the first probe that may fit or on open', async () => {
  let loads = 0;
  const memory = new FakeMemory(4096);
  const real: SourceFactory = {
    ...catalog.described(catalog.RAW_FILE),
    probe: async () => ({ ok: true, rank: 1, reason: 'real probe' }),
    open: async () => memory,
  };
  const lazy = lazyFactory(catalog.RAW_FILE, async () => {
    loads++;
    return { factory: real };
  });
  assert.deepEqual(await lazy.probe({ spec: 'q', qmp: '/x', params: {} }), { ok: false, rank: 0, reason: 'no file given' });
  assert.equal(loads, 0, 'a target without a file does not load a file format');
  assert.equal((await lazy.probe({ spec: 'f', file: '/x', params: {} })).reason, 'real probe');
  assert.equal(await lazy.open({ spec: 'f', file: '/x', params: {} }), memory);
  assert.equal(loads, 1);
});

test('a module whose factory is not the one its catalog entry names is refused', async () => {
  const wrong = lazyFactory(catalog.LIME, async () => ({ factory: { ...catalog.described(catalog.RAW_FILE), probe: async () => ({ ok: true, rank: 1, reason: '' }), open: async () => new FakeMemory(4096) } }));
  await assert.rejects(wrong.probe({ spec: 'f', file: '/x', params: {} }), /the module of lime \(file\) holds the factory raw-file/);
});
