import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ProfileError } from '../../src/core/errors.js';
import { CACHE_FORMAT, profileKey, writeCachedProfile, type CachedProfile } from '../../src/profile/cache.js';
import { bootstrapKernelSpace, type KernelSpace } from '../../src/profile/kernel-space.js';
import { loadProfile, verifyCachedProfile } from '../../src/profile/profile.js';
import { SymbolTableBuilder, type SymbolTable } from '../../src/profile/symbols.js';
import { testMemory } from '../arch/helpers/memory.js';
import { syntheticGuest, type SyntheticGuest } from '../arch/helpers/synthetic-guest.js';
import { kernelLikeBtf } from './helpers/btf-encoder.js';

/** The guest's symbols at runtime addresses; `move` relocates one of them (a stale or foreign entry). */
function runtimeSymbols(g: SyntheticGuest, ks: KernelSpace, move: Record<string, bigint> = {}): SymbolTable {
  const at = (name: string, va: bigint) => move[name] ?? va;
  return new SymbolTableBuilder()
    .add('fixed_percpu_data', 0n, 'A')
    .add('_stext', at('_stext', g.textVa), 'T')
    .add('linux_banner', at('linux_banner', g.bannerVa), 'R')
    .add('init_uts_ns', at('init_uts_ns', g.utsVa), 'D')
    .add('init_top_pgt', at('init_top_pgt', ks.vmcoreinfo!.symbols.get('init_top_pgt')!), 'D')
    .build('kallsyms:synthetic');
}

function entry(g: SyntheticGuest, runtime: SymbolTable, overrides: Partial<CachedProfile['meta']> = {}): CachedProfile {
  const linkTime = runtime.shifted(-g.kernelOffset, runtime.source);
  const btf = kernelLikeBtf().bytes;
  return {
    meta: {
      format: CACHE_FORMAT,
      key: profileKey('eb4fbcd037e7253717950bf2b93bd5566f47c56f', ''),
      release: g.release,
      banner: g.banner,
      buildId: 'eb4fbcd037e7253717950bf2b93bd5566f47c56f',
      symbolsSource: runtime.source,
      typesSource: 'btf:synthetic',
      symbolCount: linkTime.count,
      btfBytes: btf.length,
      created: new Date(0).toISOString(),
      ...overrides,
    },
    symbols: linkTime,
    btf,
  };
}

async function lazyBootstrap(g: SyntheticGuest) {
  const mem = testMemory(g.ram, { mapped: true });
  return { mem, ks: await bootstrapKernelSpace(mem, { bannerScan: 'none', lazyHints: true }) };
}

describe('profile cache entries are checked against the live kernel', () => {
  it('accepts a matching entry: this boot\'s KASLR shift applied, the banner read at linux_banner', async () => {
    const g = syntheticGuest();
    const { ks } = await lazyBootstrap(g);
    assert.equal(ks.banner, undefined, 'the bootstrap did not scan for the banner');
    const r = verifyCachedProfile(ks, entry(g, runtimeSymbols(g, ks)));
    assert.ok(typeof r !== 'string', String(r));
    assert.equal(r.symbols.address('linux_banner'), g.bannerVa);
    assert.equal(r.symbols.address('fixed_percpu_data'), 0n);
    assert.equal(r.banner?.text, g.banner);
    assert.equal(r.banner?.pa, g.bannerPa);
    assert.match(r.banner!.reason, /linux_banner \(cached symbols\)/);
  });

  it('refuses an entry for another release, another banner, or symbols that do not sit where this kernel has them', async () => {
    const g = syntheticGuest();
    const { ks } = await lazyBootstrap(g);
    const good = runtimeSymbols(g, ks);
    const cases: Array<[string, CachedProfile, RegExp]> = [
      ['release', entry(g, good, { release: '6.1.0-99-amd64' }), /is for 6\.1\.0-99-amd64/],
      ['banner', entry(g, good, { banner: `${g.banner} (rebuilt)` }), /was made for the banner/],
      ['linux_banner moved', entry(g, runtimeSymbols(g, ks, { linux_banner: g.bannerVa + 0x1000n })), /does not match this kernel \(.*linux_banner/],
      ['init_uts_ns moved', entry(g, runtimeSymbols(g, ks, { init_uts_ns: g.utsVa + 0x40n })), /init_uts_ns is at .*vmcoreinfo says/],
      ['init_top_pgt moved', entry(g, runtimeSymbols(g, ks, { init_top_pgt: 0xffffffff82000000n })), /init_top_pgt is at/],
    ];
    for (const [what, e, why] of cases) {
      const r = verifyCachedProfile(ks, e);
      assert.equal(typeof r, 'string', what);
      assert.match(r as string, why, what);
    }
  });

  it('loadProfile serves a verified entry from disk and reports the banner it read', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vmsight-profile-test-'));
    after(() => rmSync(dir, { recursive: true, force: true }));
    const g = syntheticGuest();
    const { mem, ks } = await lazyBootstrap(g);
    writeCachedProfile(dir, entry(g, runtimeSymbols(g, ks)));
    const loaded = loadProfile(mem, ks, { cache: dir });
    assert.equal(loaded.cacheHit, true);
    assert.match(loaded.steps[0]!.detail, /verified against the live kernel/);
    assert.equal(loaded.profile.banner, g.banner);
    assert.equal(loaded.banner?.pa, g.bannerPa);
    assert.match(loaded.profile.sources['banner']!, /linux_banner/);
    assert.equal(loaded.profile.symbols.address('init_uts_ns'), g.utsVa);
    assert.ok(loaded.profile.types.struct('task_struct'));
  });

  it('loadProfile reuses cached BTF record offsets (same layouts as indexing afresh)', async () => {
    const { parseBtf } = await import('../../src/profile/btf.js');
    const dir = mkdtempSync(join(tmpdir(), 'vmsight-profile-test-'));
    after(() => rmSync(dir, { recursive: true, force: true }));
    const g = syntheticGuest();
    const { mem, ks } = await lazyBootstrap(g);
    const e = entry(g, runtimeSymbols(g, ks));
    const fresh = parseBtf(e.btf);
    writeCachedProfile(dir, { ...e, btfOffsets: fresh.recordOffsets() });
    const loaded = loadProfile(mem, ks, { cache: dir });
    assert.equal(loaded.cacheHit, true);
    const store = loaded.profile.types.store as typeof fresh;
    assert.deepEqual([...store.recordOffsets()], [...fresh.recordOffsets()]);
    for (let id = 1; id < fresh.count; id++) assert.deepEqual(loaded.profile.types.get(id), fresh.get(id));
  });
});

describe('profile cache without a build-id', () => {
  it('scans for the banner first (it keys the entry), then serves the entry keyed by it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vmsight-profile-test-'));
    after(() => rmSync(dir, { recursive: true, force: true }));
    const g = syntheticGuest();
    const { mem, ks: withId } = await lazyBootstrap(g);
    const { buildId: _dropped, ...info } = withId.vmcoreinfo!;
    const ks: KernelSpace = { ...withId, vmcoreinfo: info as typeof withId.vmcoreinfo };
    const { buildId: _none, ...meta } = entry(g, runtimeSymbols(g, withId)).meta;
    writeCachedProfile(dir, { ...entry(g, runtimeSymbols(g, withId)), meta: { ...meta, key: profileKey(undefined, g.banner) } });
    const loaded = loadProfile(mem, ks, { cache: dir });
    assert.deepEqual(loaded.steps.map((s) => s.step), ['banner', 'cache']);
    assert.match(loaded.steps[0]!.detail, /no build-id/);
    assert.equal(loaded.cacheHit, true);
    assert.equal(loaded.profile.banner, g.banner);
  });
});

describe('a kernel without BTF', () => {
  it('says so, and that an ISF can be given with --profile', async () => {
    const g = syntheticGuest();
    const { mem, ks } = await lazyBootstrap(g);
    const dir = mkdtempSync(join(tmpdir(), 'vmsight-nobtf-'));
    try {
      // A System.map (link-time addresses) of a kernel built without CONFIG_DEBUG_INFO_BTF: no __start_BTF.
      const lines = [...runtimeSymbols(g, ks)]
        .filter((s) => s.type !== 'A')
        .map((s) => `${(s.address - g.kernelOffset).toString(16).padStart(16, '0')} ${s.type} ${s.name}`);
      const map = join(dir, 'System.map');
      writeFileSync(map, lines.join('\n') + '\n');
      assert.throws(
        () => loadProfile(mem, ks, { profileFile: map, cache: false }),
        (e: unknown) => e instanceof ProfileError && /has no BTF/.test(e.message) && /--profile/.test(e.oneLine()),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
