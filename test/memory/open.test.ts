import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import net from 'node:net';
import { MissingFileError, SourceError, UsageError } from '../../src/core/errors.js';
import { FACTORIES, openSource, parseSourceSpec, rankTechniques } from '../../src/memory/open.js';
import type { SourceFactory, SourceTarget } from '../../src/memory/source-factory.js';
import type { TechniqueClass } from '../../src/memory/types.js';
import { startFakeQmp } from '../qemu/helpers/fake-qmp.js';
import { FakeMemory } from './helpers/fake-memory.js';

test('a plain existing path is a file, whatever it contains', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmsight-test-spec-'));
  const f = path.join(dir, 'dump?x=1.elf');
  fs.writeFileSync(f, 'x');
  try {
    assert.deepEqual(parseSourceSpec(f), { spec: f, file: f, params: {} });
    assert.equal(parseSourceSpec(`file:${f}`).file, f);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('schemes and parameters', () => {
  assert.deepEqual(parseSourceSpec('qmp:/run/x.sock'), { spec: 'qmp:/run/x.sock', qmp: '/run/x.sock', params: {} });
  assert.equal(parseSourceSpec('qmp:unix:/run/x.sock').qmp, '/run/x.sock');
  assert.equal(parseSourceSpec('qmp:tcp:localhost:4444').qmp, 'tcp:localhost:4444');
  assert.equal(parseSourceSpec('qmp:tcp::4444').qmp, 'tcp:127.0.0.1:4444');
  const shm = parseSourceSpec('shm:/dev/shm/vm1?qmp=/run/vm1.sock&technique=live-map');
  assert.deepEqual([shm.shm, shm.qmp, shm.params['technique']], ['/dev/shm/vm1', '/run/vm1.sock', 'live-map']);
  const pid = parseSourceSpec('pid:1234?qmp=/run/q.sock&method=proc-mem');
  assert.deepEqual([pid.pid, pid.qmp, pid.params['method']], [1234, '/run/q.sock', 'proc-mem']);
  assert.equal(parseSourceSpec('gdb:127.0.0.1:1234').gdb, '127.0.0.1:1234');
  assert.equal(parseSourceSpec('gdb:1234').gdb, '127.0.0.1:1234');
  assert.equal(parseSourceSpec('lab:k61').lab, 'k61');
  assert.equal(parseSourceSpec('k61-not-a-file').lab, 'k61-not-a-file');
  const h = parseSourceSpec('lab:k61?halting');
  assert.equal(h.params['halting'], '1');
  assert.equal(parseSourceSpec('shm:/dev/shm/a%20b?qmp=%2Frun%2Fq.sock').qmp, '/run/q.sock');
});

test('bad source names are usage errors that say what to write', () => {
  for (const [spec, re] of [
    ['', /empty source/],
    ['pid:12x?qmp=/s', /not a process id/],
    ['pid:123', /needs the QMP socket/],
    ['gdb:host:99999', /not \[HOST:\]PORT/],
    ['qmp:tcp:host:port', /not tcp:HOST:PORT/],
    ['shm:', /needs the memory-backend-file path/],
    ['lab:', /needs a guest name/],
    ['shm:/x?q=%E0%A4%A', /not URL-encoded/],
    ['qmp:/x?bad key=1', /bad parameter name/],
  ] as const) {
    assert.throws(() => parseSourceSpec(spec), (e: unknown) => e instanceof UsageError && re.test(e.message), spec);
  }
});

// Issue 10, bugs 9 and 12: a missing image exited 2 (README: 3); a QMP socket given bare said "no such file".
test('a missing image is an unavailable target; a socket or directory named as an image says what to write', () => {
  assert.throws(() => parseSourceSpec('/no/such/dump.elf'), (e: unknown) => e instanceof MissingFileError && e.exitCode === 3 && /memory image \/no\/such\/dump.elf does not exist/.test(e.message));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmsight-open-sock-'));
  const sock = path.join(dir, 'qmp.sock');
  const server = net.createServer().listen(sock);
  try {
    assert.throws(() => parseSourceSpec(sock), (e: unknown) => e instanceof UsageError && e.oneLine().includes('is a socket, not a memory image') && e.oneLine().includes(`qmp:${sock}`));
    assert.throws(() => parseSourceSpec(dir), (e: unknown) => e instanceof UsageError && /is a directory/.test(e.message));
  } finally {
    server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the factory list holds the live techniques and the file formats', () => {
  const names = FACTORIES.map((f) => f.name);
  for (const n of ['qemu-shm', 'qemu-process', 'elf-core', 'lime', 'raw-file']) assert.ok(names.includes(n), n);
});

function fake(name: string, cls: TechniqueClass, fits: boolean, rank = 5, log: string[] = []): SourceFactory {
  return {
    name,
    class: cls,
    summary: name,
    async probe(_t: SourceTarget) {
      log.push(`probe ${name}`);
      return { ok: fits, rank, reason: fits ? `${name} fits` : `${name} does not fit` };
    },
    async open() {
      log.push(`open ${name}`);
      const m = new FakeMemory(4096);
      return Object.assign(m, { technique: { ...m.technique, class: cls, name } });
    },
  };
}

async function withQmp<T>(fn: (sock: string, log: string[]) => Promise<T>): Promise<T> {
  const qmp = await startFakeQmp((cmd) => {
    if (cmd === 'query-status') return { status: 'running' };
    if (cmd === 'stop' || cmd === 'cont') return {};
    throw new Error(`unsupported ${cmd}`);
  });
  try {
    return await fn(qmp.path, qmp.log);
  } finally {
    await qmp.close();
  }
}

test('the fastest technique that fits wins; snapshots only when asked; the reason names the others', async () => {
  await withQmp(async (sock) => {
    const log: string[] = [];
    const factories = [
      fake('monitor', 'monitor-read', true, 3, log),
      fake('snap', 'halt-snapshot', true, 9, log),
      fake('proc', 'live-read', true, 6, log),
      fake('map', 'live-map', false, 7, log),
      fake('stub', 'debugger-stub', true, 4, log),
    ];
    const r = await openSource(`qmp:${sock}`, { factories });
    assert.deepEqual(r.chosen.factory, 'proc');
    assert.equal(r.chosen.class, 'live-read');
    assert.match(r.chosen.reason, /proc fits; fastest of 4 that fit \(also: stub \(debugger-stub\), monitor \(monitor-read\), snap \(halt-snapshot\)\)/);
    assert.deepEqual(
      r.candidates.map((c) => [c.factory, c.ok]),
      [
        ['proc', true],
        ['stub', true],
        ['monitor', true],
        ['snap', true],
        ['map', false],
      ],
    );
    await r.memory.close();
    const s = await openSource(`qmp:${sock}?technique=halt-snapshot`, { factories });
    assert.equal(s.chosen.factory, 'snap');
    assert.match(s.chosen.reason, /^asked for halt-snapshot/);
    await s.memory.close();
    const byName = await openSource(`qmp:${sock}`, { factories, technique: 'stub' });
    assert.equal(byName.chosen.factory, 'stub');
    await byName.memory.close();
  });
});

test('a forced technique that does not fit lists what does', async () => {
  await withQmp(async (sock) => {
    const factories = [fake('map', 'live-map', false), fake('proc', 'live-read', true)];
    await assert.rejects(
      openSource(`qmp:${sock}`, { factories, technique: 'live-map' }),
      (e: unknown) => e instanceof SourceError && /map: map does not fit/.test(e.message) && /what fits: proc \(live-read\)/.test(e.oneLine()),
    );
    await assert.rejects(openSource(`qmp:${sock}`, { factories, technique: 'warp-drive' }), (e: unknown) => e instanceof UsageError && /known: .*live-map/.test(e.oneLine()));
    await assert.rejects(openSource(`qmp:${sock}`, { factories: [fake('map', 'live-map', false)] }), /no technique can read this target/);
  });
});

test('halting wraps the chosen live technique and resumes on close', async () => {
  await withQmp(async (sock, log) => {
    const factories = [fake('proc', 'live-read', true), fake('file', 'file', false)];
    const r = await openSource(`qmp:${sock}?halting=1`, { factories });
    assert.equal(r.chosen.class, 'guest-halting');
    assert.equal(r.memory.technique.class, 'guest-halting');
    assert.ok(log.includes('stop'));
    assert.ok(!log.includes('cont'));
    await r.memory.close();
    assert.equal(log.filter((c) => c === 'cont').length, 1);
    const viaTechnique = await openSource(`qmp:${sock}`, { factories, technique: 'guest-halting' });
    assert.equal(viaTechnique.chosen.class, 'guest-halting');
    await viaTechnique.memory.close();
  });
  // No QMP: nothing can pause the guest.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmsight-test-spec-'));
  try {
    const f = path.join(dir, 'ram');
    fs.writeFileSync(f, 'x');
    await assert.rejects(openSource(`shm:${f}?halting=1`, { factories: [fake('map', 'live-map', true)] }), /needs a QMP socket/);
    await assert.rejects(openSource(f, { factories: [fake('raw', 'file', true)], halting: true }), /does not read a running guest/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('ranking survives a probe that throws', async () => {
  const boom: SourceFactory = { ...fake('boom', 'live-map', true), probe: async () => Promise.reject(new Error('kaput')) };
  const c = await rankTechniques({ spec: 'x', params: {} }, [boom, fake('ok', 'monitor-read', true)]);
  assert.deepEqual(c.map((x) => [x.factory, x.ok, x.reason]), [
    ['ok', true, 'ok fits'],
    ['boom', false, 'kaput'],
  ]);
});

test('an unknown lab guest says how to start one', async () => {
  await assert.rejects(openSource('test-no-such-guest'), (e: unknown) => e instanceof SourceError && /vmsight lab up test-no-such-guest/.test(e.oneLine()));
});

// Issue 10, bug 10: `pid:999999?qmp=SOCKET` read the socket's guest, or blamed ptrace permissions.
test('a pid that is no running process is refused, naming it', async () => {
  await withQmp(async (sock) => {
    const factories: SourceFactory[] = [{ name: 'any', class: 'live-read', summary: '', probe: async () => ({ ok: true, rank: 1, reason: 'fits' }), open: async () => new FakeMemory(4096) }];
    await assert.rejects(
      openSource(`pid:999999999?qmp=${sock}`, { factories }),
      (e: unknown) => e instanceof SourceError && e.exitCode === 3 && /no process 999999999 is running/.test(e.message),
    );
  });
});
