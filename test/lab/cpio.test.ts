import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { CpioWriter, readCpio } from '../../src/lab/cpio.js';
import { FormatError } from '../../src/core/errors.js';

function sample(): Buffer {
  const w = new CpioWriter();
  w.add({ path: 'bin/tool', type: 'file', mode: 0o755, data: Buffer.from('#!/bin/sh\necho hi\n') });
  w.add({ path: 'bin/alias', type: 'symlink', mode: 0o777, target: 'tool' });
  w.add({ path: 'dev/console', type: 'char', mode: 0o600, rdevMajor: 5, rdevMinor: 1 });
  w.add({ path: 'etc/odd name.txt', type: 'file', mode: 0o644, uid: 1000, gid: 1000, data: Buffer.from('x') });
  w.add({ path: 'empty', type: 'file', mode: 0o600 });
  return w.finish();
}

test('newc archive round-trips through our reader, parents first', () => {
  const buf = sample();
  assert.equal(buf.byteLength % 4, 0);
  const entries = readCpio(buf);
  assert.deepEqual(
    entries.map((e) => [e.path, e.type]),
    [
      ['bin', 'dir'],
      ['bin/tool', 'file'],
      ['bin/alias', 'symlink'],
      ['dev', 'dir'],
      ['dev/console', 'char'],
      ['etc', 'dir'],
      ['etc/odd name.txt', 'file'],
      ['empty', 'file'],
    ],
  );
  const tool = entries.find((e) => e.path === 'bin/tool')!;
  assert.equal(Buffer.from(tool.data!).toString(), '#!/bin/sh\necho hi\n');
  assert.equal(tool.mode, 0o755);
  assert.equal(entries.find((e) => e.path === 'bin/alias')!.target, 'tool');
  const con = entries.find((e) => e.path === 'dev/console')!;
  assert.equal(con.rdevMajor, 5);
  assert.equal(con.rdevMinor, 1);
  const odd = entries.find((e) => e.path === 'etc/odd name.txt')!;
  assert.equal(odd.uid, 1000);
  assert.equal(entries.find((e) => e.path === 'empty')!.data!.byteLength, 0);
});

test('writer refuses duplicates and paths escaping the root', () => {
  const w = new CpioWriter();
  w.add({ path: 'a', type: 'file', mode: 0o644 });
  assert.throws(() => w.add({ path: '/a', type: 'file', mode: 0o644 }), /added twice/);
  assert.throws(() => w.add({ path: 'x/../../etc', type: 'file', mode: 0o644 }), /escapes/);
  assert.throws(() => w.add({ path: 'l', type: 'symlink', mode: 0o777 }), /no target/);
});

test('reader rejects corrupt archives with FormatError', () => {
  const buf = sample();
  const badMagic = Buffer.from(buf);
  badMagic.write('070707', 0, 'ascii');
  assert.throws(() => readCpio(badMagic), FormatError);
  assert.throws(() => readCpio(buf.subarray(0, buf.byteLength - 200)), FormatError);
  const badField = Buffer.from(buf);
  badField.write('zzzzzzzz', 6 + 8, 'ascii'); // the mode field
  assert.throws(() => readCpio(badField), /bad cpio header field/);
  const bigSize = Buffer.from(buf);
  bigSize.write('7fffffff', 6 + 6 * 8, 'ascii'); // filesize of the first entry
  assert.throws(() => readCpio(bigSize), /runs past the end/);
});

const busybox = ['/bin/busybox', '/usr/bin/busybox'].find((p) => fs.existsSync(p));

test('busybox cpio lists and extracts what we write', { skip: busybox ? false : 'busybox not installed' }, () => {
  const buf = sample();
  const listing = execFileSync(busybox!, ['cpio', '-t'], { input: buf, encoding: 'utf8' }).trim().split('\n');
  assert.deepEqual(listing, ['bin', 'bin/tool', 'bin/alias', 'dev', 'dev/console', 'etc', 'etc/odd name.txt', 'empty']);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmsight-cpio-'));
  try {
    // Device nodes need privileges busybox may lack; extract the rest.
    execFileSync(busybox!, ['cpio', '-i', '-d', 'bin/*', 'etc/*', 'empty'], { input: buf, cwd: dir });
    assert.equal(fs.readFileSync(path.join(dir, 'bin/tool'), 'utf8'), '#!/bin/sh\necho hi\n');
    assert.equal(fs.readlinkSync(path.join(dir, 'bin/alias')), 'tool');
    assert.equal(fs.statSync(path.join(dir, 'bin/tool')).mode & 0o777, 0o755);
    assert.equal(fs.readFileSync(path.join(dir, 'etc/odd name.txt'), 'utf8'), 'x');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
