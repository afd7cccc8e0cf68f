/**
 * Row keys are identities: unique within a pass, the same for an unchanged
 * process across passes, and different for a new process that reuses the
 * pid — even in the same task_struct slot (the slab hands freed slots out
 * again) — because the task's start time is part of the key.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { ProfileError } from '../../src/core/errors.js';
import type { Plugin } from '../../src/linux/plugin.js';
import { plugins } from '../../src/linux/plugins/index.js';
import { addMm, SyntheticKernel, T, type SynthVma } from './helpers/synthetic-kernel.js';

const VMAS: SynthVma[] = [
  { start: 0x40_0000n, end: 0x40_1000n, flags: 5n },
  { start: 0x7f00_0000_0000n, end: 0x7f00_0000_1000n, flags: 7n },
];
const PROCS = [
  { pid: 1, comm: 'init', parent: -1 },
  { pid: 42, comm: 'victim', parent: 0, threads: [43] },
  { pid: 50, comm: 'bystander', parent: 0 },
];

const dumpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmsight-pass-keys-'));
after(() => fs.rmSync(dumpDir, { recursive: true, force: true }));

/** Every plugin the synthetic kernel's profile can run, with its rows' keys (ProfileError: not enough types here). */
function keysByPlugin(s: SyntheticKernel): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const pass = s.kernel.startPass();
  for (const p of plugins as readonly Plugin<any>[]) {
    try {
      const options = p.name === 'pslist' ? { threads: true } : p.name === 'procdump' ? { dump: dumpDir } : {};
      out.set(p.name, pass.run(p, options).rows.map((r) => p.key(r)));
    } catch (e) {
      if (!(e instanceof ProfileError)) throw e;
    }
  }
  pass.end();
  return out;
}

function synthetic(): SyntheticKernel {
  const s = new SyntheticKernel('new', PROCS);
  addMm(s, 1, VMAS, { argStart: 0n, argEnd: 0n, envStart: 0n, envEnd: 0n });
  addMm(s, 2, VMAS);
  return s;
}

describe('row keys over synthetic tasks', () => {
  it('are unique within a pass and stable across passes of an unchanged kernel', () => {
    const s = synthetic();
    const a = keysByPlugin(s);
    const b = keysByPlugin(s);
    for (const name of ['pslist', 'pstree', 'threads', 'creds', 'maps', 'malfind', 'procdump']) assert.ok(a.get(name)?.length, `${name} ran and gave rows`);
    for (const [name, keys] of a) {
      assert.equal(new Set(keys).size, keys.length, `${name}: keys unique within the pass`);
      assert.deepEqual(b.get(name), keys, `${name}: same keys in the next pass`);
    }
  });

  it('a new process reusing the pid in the same task_struct slot gets new keys; the others keep theirs', () => {
    const s = synthetic();
    const before = keysByPlugin(s);
    // pid 42 (and its thread 43) exit; a new pid 42 is forked into the same slots later.
    for (const t of s.threadAddr.get(1)!) s.mem.w64(t + BigInt(T.start), 999_000_000_000n);
    const after = keysByPlugin(s);
    let checked = 0;
    for (const [name, keys] of before) {
      const now = new Set(after.get(name));
      const victims = keys.filter((k) => /^4[23]:/.test(k));
      for (const k of victims) assert.ok(!now.has(k), `${name}: key ${k} of the exited process must not survive the pid reuse`);
      for (const k of keys.filter((k) => /^(1|50):/.test(k))) assert.ok(now.has(k), `${name}: ${k} of an unchanged process is kept`);
      checked += victims.length;
    }
    assert.ok(checked >= 8, `pid-keyed rows checked across plugins (${checked})`);
  });
});

describe('key functions of rows the synthetic kernel cannot produce', () => {
  const byName = new Map((plugins as readonly Plugin<any>[]).map((p) => [p.name, p]));
  const key = (name: string, row: Record<string, unknown>): string => byName.get(name)!.key(row);

  it('lsof: same pid and fd in a new process (same task slot, later start) is another file', () => {
    const row = { pid: 42, fd: 3, task: 0xffff_8880_0010_0400n, startTime: 5n, file: 0xffff_8880_0200_0000n };
    assert.notEqual(key('lsof', row), key('lsof', { ...row, startTime: 6n }));
    assert.notEqual(key('lsof', row), key('lsof', { ...row, task: 0xffff_8880_0010_0800n }));
    assert.notEqual(key('lsof', row), key('lsof', { ...row, fd: 4 }));
    assert.equal(key('lsof', row), key('lsof', { ...row, pos: 100n }), 'a file position moving is the same open file');
  });

  it('maps, elfs, malfind: a new process reusing the pid maps the same address under a new key', () => {
    for (const name of ['maps', 'elfs', 'malfind']) {
      const row = { pid: 42, task: 0xffff_8880_0010_0400n, startTime: 5n, start: 0x40_0000n };
      assert.notEqual(key(name, row), key(name, { ...row, startTime: 6n }), name);
      assert.notEqual(key(name, row), key(name, { ...row, start: 0x40_1000n }), name);
    }
  });

  it('kallsyms: statics sharing a name and an address still get distinct keys', () => {
    const a = { module: '', name: '__key.0', address: 0xffff_ffff_8200_0000n, type: 'b', index: 100 };
    assert.notEqual(key('kallsyms', a), key('kallsyms', { ...a, index: 101 }));
    assert.notEqual(key('kallsyms', a), key('kallsyms', { ...a, module: 'e1000' }));
  });

  it('sockstat, ifconfig, mountinfo: a reused kernel object address or id with another identity is another row', () => {
    const sock = { proto: 'tcp', sock: 0xffff_8880_0300_0000n, inode: 900n };
    assert.notEqual(key('sockstat', sock), key('sockstat', { ...sock, inode: 901n }));
    const dev = { netns: 4026531840, index: 1, device: 0xffff_8880_0400_0000n };
    assert.notEqual(key('ifconfig', dev), key('ifconfig', { ...dev, device: 0xffff_8880_0400_2000n }));
    const mnt = { id: 30, mount: 0xffff_8880_0500_0000n, fsType: 'tmpfs', source: 'tmpfs' };
    assert.notEqual(key('mountinfo', mnt), key('mountinfo', { ...mnt, fsType: 'proc', source: 'proc' }));
  });
});
