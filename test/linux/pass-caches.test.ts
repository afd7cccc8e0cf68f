/** The kept validated runs stay within their bounds: count and pages in all, oldest forgotten first. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PassCaches, type KeptRun } from '../../src/linux/pass-caches.js';
import { AnomalySink } from '../../src/linux/anomaly.js';
import type { PageRecorder } from '../../src/linux/page-recorder.js';
import type { Plugin } from '../../src/linux/plugin.js';

const plugin = { name: 'p' } as unknown as Plugin<any, any>;

/** A run that read `pages` pages; `released` says whether its storage was handed on. */
function keptRun(pages: number): KeptRun & { released: () => boolean } {
  let released = false;
  const recorder = { pages: { size: pages }, release: () => void (released = true) } as unknown as PageRecorder;
  return { recorder, rows: [], sink: new AnomalySink(), released: () => released };
}

describe('PassCaches kept runs', () => {
  it('keeps up to 64 runs, forgetting the oldest and releasing its storage', () => {
    const c = new PassCaches();
    const runs = Array.from({ length: 70 }, () => keptRun(1));
    runs.forEach((r, i) => c.keepRun(plugin, String(i), r));
    assert.equal(c.keptRuns, 64);
    assert.equal(c.keptRun(plugin, '0'), undefined);
    assert.deepEqual(runs.slice(0, 7).map((r) => r.released()), [true, true, true, true, true, true, false]);
    assert.equal(c.keptRun(plugin, '6'), runs[6]);
  });

  it('keeps at most 16384 pages in all, and a run handed over is the last forgotten', () => {
    const c = new PassCaches();
    for (let i = 0; i < 16; i++) c.keepRun(plugin, String(i), keptRun(1024));
    assert.ok(c.keptRun(plugin, '0'), 'handed over: now the newest');
    c.keepRun(plugin, 'big', keptRun(1024));
    assert.equal(c.keptRuns, 16);
    assert.equal(c.keptRun(plugin, '1'), undefined, 'the oldest not handed over went');
    assert.ok(c.keptRun(plugin, '0'));
  });

  it('one plugin object per key: another plugin under the same option values is another run', () => {
    const c = new PassCaches();
    const other = { name: 'p' } as unknown as Plugin<any, any>;
    const a = keptRun(1);
    c.keepRun(plugin, '{}', a);
    assert.equal(c.keptRun(other, '{}'), undefined);
    c.dropRun(plugin, '{}');
    assert.equal(a.released(), true);
    assert.equal(c.keptRuns, 0);
  });
});
