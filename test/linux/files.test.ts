import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { devName, fileKind } from '../../src/linux/files.js';
import { mountOptions } from '../../src/linux/mounts.js';

describe('file classification', () => {
  test('by d_path pseudo name first, then S_IFMT', () => {
    assert.equal(fileKind(0o600, 'anon_inode:[eventfd]'), 'anon_inode');
    assert.equal(fileKind(0o10600, 'pipe:[45]'), 'pipe');
    assert.equal(fileKind(0o140777, 'socket:[9930]'), 'socket');
    assert.equal(fileKind(0o100644, '/tmp/vmi-data.txt'), 'regular');
    assert.equal(fileKind(0o40755, '/tmp'), 'directory');
    assert.equal(fileKind(0o20620, '/dev/console'), 'char');
    assert.equal(fileKind(0o60660, '/dev/sda'), 'block');
    assert.equal(fileKind(0o10644, '/run/fifo'), 'fifo');
    assert.equal(fileKind(0, '?'), 'unknown');
  });
  test('dev_t as major:minor', () => {
    assert.equal(devName((5 << 20) | 1), '5:1');
    assert.equal(devName((1 << 20) | 3), '1:3');
    assert.equal(devName(0x17), '0:23');
  });
});

describe('mount options', () => {
  test('rw/ro and the MNT_* flags mountinfo shows', () => {
    assert.equal(mountOptions(0), 'rw');
    assert.equal(mountOptions(0x20), 'rw,relatime');
    assert.equal(mountOptions(0x40 | 0x01 | 0x02 | 0x04), 'ro,nosuid,nodev,noexec');
  });
});
