import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { test } from 'node:test';
import zlib from 'node:zlib';
import { crc32, encodeFrame, encodeU32Frame, FrameDecoder, FRAME_MAX_PAYLOAD } from '../../src/lab/exec-frame.js';
import { parseActionOutput } from '../../src/lab/actions.js';
import { parseBenchLine } from '../../src/lab/guest-bench.js';

test('crc32 is the IEEE CRC zlib computes', () => {
  assert.equal(crc32(Buffer.from('123456789')), 0xcbf43926);
  const data = crypto.randomBytes(10_000);
  const zcrc = (zlib as unknown as { crc32?: (b: Uint8Array) => number }).crc32;
  if (zcrc) assert.equal(crc32(data), zcrc(data));
  assert.equal(crc32(Buffer.alloc(0)), 0);
});

test('frames round-trip, whole or fed one byte at a time', () => {
  const body = crypto.randomBytes(5000);
  const wire = Buffer.concat([encodeFrame('O', 7, body), encodeU32Frame('X', 7, 0, 3), encodeFrame('a', 0xffffffff)]);
  const whole = new FrameDecoder().push(wire);
  assert.deepEqual(
    whole.map((f) => [f.type, f.id]),
    [['O', 7], ['X', 7], ['a', 0xffffffff]],
  );
  assert.ok(whole[0]!.body.equals(body));
  assert.deepEqual([...whole[1]!.body], [0, 0, 0, 0, 3, 0, 0, 0]);
  const dec = new FrameDecoder();
  const got = [];
  for (const b of wire) got.push(...dec.push(Buffer.from([b])));
  assert.equal(got.length, 3);
  assert.ok(got[0]!.body.equals(body));
  assert.equal(dec.pending, 0);
  assert.deepEqual(dec.errors, []);
});

test('junk, a broken checksum and an absurd length are skipped and reported; the next frame still parses', () => {
  const good = encodeFrame('S', 1, Buffer.from([1, 2, 3, 4]));
  const broken = encodeFrame('O', 2, Buffer.from('lost'));
  broken[broken.length - 2]! ^= 0x40;
  const huge = Buffer.from(encodeFrame('O', 3, Buffer.from('x')));
  huge.writeUInt32LE(FRAME_MAX_PAYLOAD + 1, 3);
  const dec = new FrameDecoder();
  const frames = dec.push(Buffer.concat([Buffer.from('garbage\n'), broken, huge, good]));
  assert.deepEqual(frames.map((f) => [f.type, f.id]), [['S', 1]]);
  assert.ok(dec.errors.some((e) => /checksum mismatch/.test(e)), dec.errors.join('; '));
  assert.ok(dec.errors.some((e) => /bad frame length/.test(e)), dec.errors.join('; '));
  assert.ok(dec.errors.some((e) => /stray bytes/.test(e)), dec.errors.join('; '));
});

test('an incomplete frame is held, not reported, until the rest arrives', () => {
  const f = encodeFrame('E', 9, Buffer.from('stderr bytes'));
  const dec = new FrameDecoder();
  assert.deepEqual(dec.push(f.subarray(0, 10)), []);
  assert.equal(dec.pending, 10);
  const rest = dec.push(f.subarray(10));
  assert.equal(rest[0]!.body.toString(), 'stderr bytes');
  assert.deepEqual(dec.errors, []);
});

test('encodeFrame refuses bodies beyond the limit and multi-character types', () => {
  assert.throws(() => encodeFrame('I', 1, Buffer.alloc(FRAME_MAX_PAYLOAD)), RangeError);
  assert.throws(() => encodeFrame('IO', 1), RangeError);
});

test('bench lines parse; anything else is rejected', () => {
  assert.deepEqual(parseBenchLine('noise\nVMI-BENCH kind=fork seconds=1.011 ops=109 rate=107.820 unit=forks/s\n'), {
    kind: 'fork',
    rate: 107.82,
    unit: 'forks/s',
    seconds: 1.011,
    ops: 109,
  });
  assert.equal(parseBenchLine('VMI-BENCH kind=gpu seconds=1 ops=1 rate=1 unit=x'), undefined);
  assert.equal(parseBenchLine('VMI-BENCH kind=cpu seconds=1 ops=-1 rate=1 unit=MB/s'), undefined);
  assert.equal(parseBenchLine(''), undefined);
});

test('action output parses into events with their guest time', () => {
  const ev = parseActionOutput('burst pid=100 n=2 t=5000\nchild pid=101 t=6000\nnot an event line\n\nescalated pid=7 uid=0 t=123456789012345\nhello world\n');
  assert.deepEqual(
    ev.map((e) => [e.event, e.fields['pid'], e.t]),
    [['burst', '100', 5000n], ['child', '101', 6000n], ['escalated', '7', 123456789012345n]],
  );
  assert.equal(ev[0]!.fields['n'], '2');
  assert.deepEqual(parseActionOutput('VMI-BENCH kind=cpu'), []);
});
