import { strict as assert } from 'node:assert';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  CACHE_FORMAT,
  decodeSymbols,
  encodeSymbols,
  profileKey,
  readCachedProfile,
  recentVmcoreinfo,
  rememberVmcoreinfo,
  writeCachedProfile,
  type CachedProfile,
} from '../../src/profile/cache.js';
import { SymbolTableBuilder, type SymbolTable } from '../../src/profile/symbols.js';

const SHIFT = 0x2e400000n;

function runtimeTable(): SymbolTable {
  return new SymbolTableBuilder()
    .add('fixed_percpu_data', 0n, 'A')
    .add('_text', 0xffffffff81000000n + SHIFT, 'T')
    .add('cleanup', 0xffffffff81000100n + SHIFT, 't')
    .add('cleanup', 0xffffffff81000300n + SHIFT, 'T')
    .add('linux_banner', 0xffffffff82000000n + SHIFT, 'R')
    .add('init_task', 0xffffffff82c00000n + SHIFT, 'D')
    .build('kallsyms:test');
}

function entryFor(table: SymbolTable, key: string): CachedProfile {
  const linkTime = table.shifted(-SHIFT, table.source);
  const btf = Uint8Array.of(0x9f, 0xeb, 1, 0, 1, 2, 3);
  return {
    meta: {
      format: CACHE_FORMAT,
      key,
      release: '6.1.0-56-amd64',
      banner: 'Linux version 6.1.0-56-amd64 (test) #1 SMP',
      symbolsSource: table.source,
      typesSource: 'btf:test',
      symbolCount: linkTime.count,
      btfBytes: btf.length,
      created: new Date(0).toISOString(),
    },
    symbols: linkTime,
    btf,
  };
}

describe('profile cache (format 2)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vmsight-cache-test-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('round-trips symbols at link-time addresses: names, duplicates, types and the name index; a new KASLR shift applies on read', () => {
    const table = runtimeTable();
    const key = profileKey('eb4fbcd037e7253717950bf2b93bd5566f47c56f', '');
    writeCachedProfile(dir, entryFor(table, key));
    const got = readCachedProfile(dir, key);
    assert.ok(got);
    assert.equal(got.meta.release, '6.1.0-56-amd64');
    assert.deepEqual([...got.btf], [0x9f, 0xeb, 1, 0, 1, 2, 3]);
    assert.equal(got.symbols.address('_text'), 0xffffffff81000000n, 'stored unshifted');
    // Another boot, another shift: the cached table shifts with it and still finds every symbol.
    const other = 0x1c000000n;
    const now = got.symbols.shifted(other);
    assert.equal(now.address('init_task'), 0xffffffff82c00000n + other);
    assert.equal(now.address('fixed_percpu_data'), 0n);
    assert.deepEqual(now.indicesOf('cleanup'), [2, 3]);
    assert.equal(now.get('cleanup')?.type, 'T');
    for (let i = 0; i < table.count; i++) {
      assert.equal(now.nameAt(i), table.nameAt(i));
      assert.equal(now.typeAt(i), table.typeAt(i));
    }
  });

  it('decodes what it encodes, even from an unaligned buffer', () => {
    const table = runtimeTable();
    const bytes = encodeSymbols(table);
    const unaligned = Buffer.alloc(bytes.length + 3).subarray(3);
    bytes.copy(unaligned);
    const back = decodeSymbols(unaligned, 'copy', table.count);
    assert.equal(back.address('linux_banner'), table.address('linux_banner'));
    assert.deepEqual(back.indicesOf('cleanup'), [2, 3]);
  });

  it('removes an entry of an older format, a truncated one, or one whose counts disagree', () => {
    const table = runtimeTable();
    const cases: Array<[string, (base: string) => void]> = [
      ['old format', (base) => {
        const meta = JSON.parse(readFileSync(join(base, 'meta.json'), 'utf8'));
        writeFileSync(join(base, 'meta.json'), JSON.stringify({ ...meta, format: 1 }));
      }],
      ['truncated symbols', (base) => writeFileSync(join(base, 'symbols.bin'), readFileSync(join(base, 'symbols.bin')).subarray(0, 100))],
      ['bad magic', (base) => {
        const b = readFileSync(join(base, 'symbols.bin'));
        b[0] = 0x41;
        writeFileSync(join(base, 'symbols.bin'), b);
      }],
      ['a flipped bit in the name index', (base) => {
        const b = readFileSync(join(base, 'symbols.bin'));
        b[32 + 8 * table.count + 4 * (table.count + 1) + 4 * table.count + 1] ^= 0x10; // inside sameName
        writeFileSync(join(base, 'symbols.bin'), b);
      }],
      ['count mismatch', (base) => {
        const meta = JSON.parse(readFileSync(join(base, 'meta.json'), 'utf8'));
        writeFileSync(join(base, 'meta.json'), JSON.stringify({ ...meta, symbolCount: meta.symbolCount + 1 }));
      }],
    ];
    for (const [what, damage] of cases) {
      const key = profileKey(undefined, `banner for ${what}`);
      writeCachedProfile(dir, entryFor(table, key));
      damage(join(dir, key));
      assert.equal(readCachedProfile(dir, key), undefined, what);
      assert.equal(existsSync(join(dir, key)), false, `${what}: the broken entry is removed`);
    }
  });

  it('keeps BTF record offsets only while both checksums hold', () => {
    const table = runtimeTable();
    const key = profileKey(undefined, 'btf offsets');
    const offsets = Uint32Array.of(24, 36, 60);
    writeCachedProfile(dir, { ...entryFor(table, key), btfOffsets: offsets });
    assert.deepEqual([...(readCachedProfile(dir, key)?.btfOffsets ?? [])], [24, 36, 60]);
    // A damaged offsets file, or a BTF blob changed under it: the offsets are dropped, the entry stays.
    const base = join(dir, key);
    const o = readFileSync(join(base, 'btf-offsets.bin'));
    o[o.length - 1] ^= 1;
    writeFileSync(join(base, 'btf-offsets.bin'), o);
    const a = readCachedProfile(dir, key);
    assert.ok(a);
    assert.equal(a.btfOffsets, undefined);
    writeCachedProfile(dir, { ...entryFor(table, key), btfOffsets: offsets });
    const btf = readFileSync(join(base, 'vmlinux.btf'));
    btf[6] ^= 1;
    writeFileSync(join(base, 'vmlinux.btf'), btf);
    assert.equal(readCachedProfile(dir, key)?.btfOffsets, undefined);
  });

  it('remembers where vmcoreinfo was, newest first, bounded, and ignores a garbled list', () => {
    const d = mkdtempSync(join(tmpdir(), 'vmsight-recent-'));
    try {
      assert.deepEqual(recentVmcoreinfo(d), []);
      rememberVmcoreinfo(d, 0x18e2018);
      rememberVmcoreinfo(d, 0x2000018);
      rememberVmcoreinfo(d, 0x18e2018);
      assert.deepEqual(recentVmcoreinfo(d), [0x18e2018, 0x2000018]);
      for (let i = 0; i < 20; i++) rememberVmcoreinfo(d, 0x1000 * (i + 1));
      assert.equal(recentVmcoreinfo(d).length, 8);
      writeFileSync(join(d, 'vmcoreinfo-at.json'), '{"pas":[-1, "x", 1.5, 4096]}');
      assert.deepEqual(recentVmcoreinfo(d), [4096]);
      writeFileSync(join(d, 'vmcoreinfo-at.json'), 'not json');
      assert.deepEqual(recentVmcoreinfo(d), []);
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });
});
