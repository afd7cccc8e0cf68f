import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FormatError } from '../../src/core/errors.js';
import { decodeProcNetAddress, formatIpv6, parseInetTable, parseIomem, parseMaps, parseModules, parseUnixTable } from '../../src/lab/procfs.js';

test('/proc/net addresses decode per 32-bit host-order word', () => {
  assert.deepEqual(decodeProcNetAddress('0100007F'), { family: 4, address: '127.0.0.1' });
  assert.deepEqual(decodeProcNetAddress('00000000000000000000000001000000'), { family: 6, address: '::1' });
  assert.deepEqual(decodeProcNetAddress('0000000000000000FFFF00000100007F'), { family: 6, address: '::ffff:127.0.0.1' });
  // fd00:10::15: network bytes fd 00 00 10 | 0 | 0 | 00 00 00 15, each word printed little-endian.
  assert.deepEqual(decodeProcNetAddress('100000FD' + '00000000' + '00000000' + '15000000'), { family: 6, address: 'fd00:10::15' });
  assert.throws(() => decodeProcNetAddress('XYZ'), RangeError);
  assert.equal(formatIpv6(Uint8Array.from([0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1])), 'fe80::1');
  assert.equal(formatIpv6(Uint8Array.from([0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1])), '2001:db8:1:0:1::1');
  assert.equal(formatIpv6(new Uint8Array(16)), '::');
});

test('short or garbled lines are FormatErrors naming their section', () => {
  assert.throws(() => parseInetTable(['   0: 0100007F:115C'], 'tcp'), (e: unknown) => e instanceof FormatError && /net\/tcp/.test(e.message));
  assert.throws(() => parseUnixTable(['garbage line']), /net\/unix/);
  assert.throws(() => parseModules(['dummy 16384']), /modules/);
  assert.throws(() => parseMaps(['not a mapping'], 'maps 7'), /maps 7/);
  assert.deepEqual(parseIomem(['not iomem', '00100000-0ffdefff : System RAM']), [{ start: 0x100000n, end: 0xffdefffn, name: 'System RAM', depth: 0 }]);
});
