import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { FormatError, ProfileError, SourceError } from '../../src/core/errors.js';
import { kaslrShift, loadSystemMap, looksLikeSystemMap, parseSystemMap } from '../../src/profile/system-map.js';

const MAP = [
  '0000000000000000 A fixed_percpu_data',
  '0000000000001000 A cpu_debug_store',
  'ffffffff81000000 T _text',
  'ffffffff81000000 T startup_64',
  'ffffffff81000100 t cleanup',
  'ffffffff82a1aa40 D init_task',
  'ffffffff82a10000 D init_top_pgt',
  '',
].join('\n');

describe('System.map', () => {
  it('parses addr type name lines', () => {
    const m = parseSystemMap(MAP, { source: 'map' });
    assert.equal(m.table.count, 7);
    assert.equal(m.skipped, 0);
    assert.equal(m.table.address('init_task'), 0xffffffff82a1aa40n);
    assert.equal(m.table.get('cleanup')?.type, 't');
    assert.equal(m.table.source, 'System.map:map');
  });

  it('applies a KASLR shift to kernel-image addresses only', () => {
    const shift = 0x24a00000n;
    const m = parseSystemMap(MAP, { shift });
    assert.equal(m.table.address('_text'), 0xffffffffa5a00000n);
    assert.equal(m.table.address('init_task'), 0xffffffff82a1aa40n + shift);
    assert.equal(m.table.address('cpu_debug_store'), 0x1000n, 'per-cpu offsets do not move');
    assert.match(m.table.source, /KASLR shift 0x24a00000/);
  });

  it('derives the shift from the runtime _text', () => {
    const m = parseSystemMap(MAP);
    assert.equal(kaslrShift(m.table, 0xffffffffa5a00000n), 0x24a00000n);
    const noText = parseSystemMap('ffffffff81000100 t cleanup\n');
    assert.throws(() => kaslrShift(noText.table, 0n), ProfileError);
  });

  it('reads /proc/kallsyms copies with module tags, and counts other lines', () => {
    const m = parseSystemMap(`${MAP}ffffffffc0002000 t dummy_init\t[dummy]\nnot a symbol line\n`);
    assert.equal(m.table.get('dummy_init')?.module, 'dummy');
    assert.equal(m.skipped, 1);
    assert.match(m.anomalies[0]!, /line 9/);
  });

  it("recognizes Debian's stub and says where the real map is", () => {
    const stub = 'ffffffffffffffff B The real System.map is in the linux-image-<version>-dbg package\n';
    assert.equal(looksLikeSystemMap(stub), false);
    assert.throws(() => parseSystemMap(stub), (e: unknown) => e instanceof FormatError && /-dbg/.test(e.oneLine()));
  });

  it('refuses text with no symbol lines', () => {
    assert.throws(() => parseSystemMap('hello\nworld\n'), FormatError);
    assert.equal(looksLikeSystemMap('{"base_types": {}}'), false);
    assert.equal(looksLikeSystemMap(MAP), true);
  });

  it('loads a file and reports a missing one as a source error', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vmsight-sysmap-'));
    try {
      const p = join(dir, 'System.map');
      writeFileSync(p, MAP);
      assert.equal(loadSystemMap(p).table.count, 7);
      assert.throws(() => loadSystemMap(join(dir, 'missing')), SourceError);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
