import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GuestView } from '../../src/monitor/guest-view.js';
import { MAX_WATCHED_PAGES, WatchSet } from '../../src/monitor/watch-set.js';
import { FakeGuest } from './helpers/fake-guest.js';

function fresh(): { g: FakeGuest; ws: WatchSet } {
  const g = new FakeGuest();
  return { g, ws: new WatchSet(new GuestView(g.kernel)) };
}

const modes = [
  { pageLevel: true, fieldFilter: true },
  { pageLevel: false, fieldFilter: true },
];

test('a change of a field range marks its object dirty; of a link range, its watch structural', () => {
  for (const mode of modes) {
    const { g, ws } = fresh();
    ws.set('w', 'a', [{ pa: 0x5000, len: 8, kind: 'field' }]);
    ws.set('w', '', [{ pa: 0x6000, len: 8, kind: 'link' }]);
    assert.equal(ws.detect(mode).dirty.size, 0, 'nothing changed yet');
    g.ram[0x5003] = 7;
    let d = ws.detect(mode);
    assert.deepEqual([...(d.dirty.get('w') ?? [])], ['a']);
    assert.equal(d.structural.size, 0);
    assert.equal(ws.detect(mode).dirty.size, 0, 'the shadow took the new bytes');
    g.ram[0x6000] = 1;
    d = ws.detect(mode);
    assert.deepEqual([...d.structural], ['w']);
  }
});

test('field filtering: a write elsewhere on a watched page wakes nothing (false sharing); without it, it does', () => {
  const { g, ws } = fresh();
  ws.set('w', 'a', [{ pa: 0x5000, len: 16, kind: 'field' }]);
  ws.detect({ pageLevel: true, fieldFilter: true });
  g.ram[0x5800] ^= 0xff; // same page, not watched
  const filtered = ws.detect({ pageLevel: true, fieldFilter: true });
  assert.equal(filtered.pagesChanged, 1);
  assert.equal(filtered.falseSharing, 1);
  assert.equal(filtered.dirty.size, 0);
  g.ram[0x5800] ^= 0xff;
  const unfiltered = ws.detect({ pageLevel: true, fieldFilter: false });
  assert.deepEqual([...(unfiltered.dirty.get('w') ?? [])], ['a']);
});

test('ranges crossing a page are split; removing an object forgets its pages; the set is bounded', () => {
  const { g, ws } = fresh();
  ws.set('w', 'a', [{ pa: 0x5ffc, len: 8, kind: 'field' }]);
  assert.equal(ws.pageCount, 2);
  g.ram[0x6001] = 9;
  assert.deepEqual([...(ws.detect({ pageLevel: true, fieldFilter: true }).dirty.get('w') ?? [])], ['a']);
  ws.remove('w', 'a');
  assert.equal(ws.pageCount, 0);
  // Beyond the cap, ranges are refused and counted rather than growing without bound.
  for (let i = 0; i <= MAX_WATCHED_PAGES; i++) ws.set('w', String(i), [{ pa: (i % 1000) * 4096 + 0x10_0000 + Math.floor(i / 1000) * 0x40_0000, len: 1, kind: 'field' }]);
  assert.ok(ws.pageCount <= MAX_WATCHED_PAGES);
});

test('an unreadable range is counted, not thrown', () => {
  const { ws } = fresh();
  ws.set('w', 'a', [{ pa: 0x7fff_0000, len: 8, kind: 'field' }]);
  const d = ws.detect({ pageLevel: true, fieldFilter: true });
  assert.equal(d.unreadable, 1);
});

test('the word-compare plan: unaligned ranges, a change in the last word, and shadows kept when the plan is rebuilt', () => {
  const { g, ws } = fresh();
  const mode = { pageLevel: false, fieldFilter: true };
  ws.set('w', 'a', [{ pa: 0x5000, len: 16, kind: 'field' }]);
  ws.set('w', 'odd', [{ pa: 0x5103, len: 5, kind: 'field' }]);
  assert.equal(ws.detect(mode).dirty.size, 0);
  assert.deepEqual(ws.shape, { pieces: 2, words: 4, bulkPieces: 0, bulkBytes: 0, oddPieces: 1, copiedPieces: 0 });
  g.ram[0x500f] = 1; // last byte of the last word
  g.ram[0x5107] = 2; // last byte of the unaligned range
  assert.deepEqual([...(ws.detect(mode).dirty.get('w') ?? [])].sort(), ['a', 'odd']);
  // A change made before another object joins (which rebuilds the plan) is still seen after it.
  g.ram[0x5004] = 3;
  ws.set('w', 'b', [{ pa: 0x6000, len: 8, kind: 'link' }]);
  const d = ws.detect(mode);
  assert.deepEqual([...(d.dirty.get('w') ?? [])], ['a']);
  assert.equal(d.structural.size, 0);
  // A table-sized range is compared in bulk: a change of its last byte is seen.
  ws.set('t', '', [{ pa: 0x8000, len: 2048, kind: 'link' }]);
  assert.equal(ws.detect(mode).structural.size, 0);
  g.ram[0x8000 + 2047] ^= 1;
  assert.deepEqual([...ws.detect(mode).structural], ['t']);
  assert.equal(ws.shape.bulkPieces, 1);
  // Re-declaring an object's ranges keeps their shadows (now in the packed array): a write since is still seen.
  g.ram[0x5008] = 4;
  ws.set('w', 'a', [{ pa: 0x5000, len: 16, kind: 'field' }]);
  assert.deepEqual([...(ws.detect(mode).dirty.get('w') ?? [])], ['a']);
});

test('objects ranges in turns: global ranges every call, each object within ceil(objects / slice) calls', () => {
  const { g, ws } = fresh();
  const mode = { pageLevel: false, fieldFilter: true, objectSlice: 2 };
  ws.set('w', '', [{ pa: 0x6000, len: 8, kind: 'link' }]);
  for (let i = 0; i < 6; i++) ws.set('w', `o${i}`, [{ pa: 0x10000 + i * 0x1000, len: 8, kind: 'field' }]);
  ws.detect(mode);
  for (let i = 0; i < 6; i++) g.ram[0x10000 + i * 0x1000] ^= 1;
  g.ram[0x6000] ^= 1;
  const seen: string[] = [];
  for (let call = 0; call < 3; call++) {
    const d = ws.detect(mode);
    if (call === 0) assert.deepEqual([...d.structural], ['w'], 'the global range at once');
    else assert.equal(d.structural.size, 0);
    const keys = [...(d.dirty.get('w') ?? [])];
    assert.equal(keys.length, 2, 'two objects per call');
    seen.push(...keys);
  }
  assert.deepEqual(seen.sort(), ['o0', 'o1', 'o2', 'o3', 'o4', 'o5'], 'every object within three calls');
});
