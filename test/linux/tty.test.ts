import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AnomalySink } from '../../src/linux/anomaly.js';
import type { TextClassifier } from '../../src/linux/integrity.js';
import { checkTtyOps, functionPointerMembers } from '../../src/linux/tty.js';
import { BareSpace, makeKernel } from './helpers/bare-kernel.js';
import { KBASE, TypeBuilder } from './helpers/synthetic.js';

const TEXT = 0xffff_ffff_8100_0000n;
const ETEXT = TEXT + 0x10_0000n;
const HEAD = 0xffff_ffff_8200_0000n;
const DRV = KBASE + 0x1000n;
const OPS = KBASE + 0x2000n;
const TTYS = KBASE + 0x10_0000n;
const TTY0 = KBASE + 0x4000n;
const LDISC = KBASE + 0x5000n;
const LDOPS = KBASE + 0x6000n;
const STR = KBASE + 0x7000n;
const EVIL = KBASE + 0x9_0000n; // heap: nobody's text

function types(): TypeBuilder {
  const b = new TypeBuilder();
  const { listHead } = b.listTypes();
  const fn = b.store.add({ kind: 'func_proto', name: '', ret: b.int_, params: [], variadic: false });
  const fp = b.ptr(fn);
  const ops = b.struct('tty_operations', 24, [['write', fp, 0], ['ioctl', fp, 8], ['magic', b.ulong, 16]]);
  const ldops = b.struct('tty_ldisc_ops', 16, [['name', b.ptr(b.char), 0], ['receive_buf', fp, 8]]);
  b.struct('tty_ldisc', 16, [['ops', b.ptr(ldops), 0], ['tty', b.voidp, 8]]);
  b.struct('tty_struct', 96, [['ops', b.ptr(ops), 0], ['ldisc', b.voidp, 8], ['name', b.array(b.char, 64), 16]]);
  b.struct('tty_driver', 64, [
    ['tty_drivers', listHead, 0],
    ['driver_name', b.ptr(b.char), 16],
    ['name', b.ptr(b.char), 24],
    ['major', b.int_, 32],
    ['minor_start', b.int_, 36],
    ['num', b.uint, 40],
    ['ops', b.ptr(ops), 48],
    ['ttys', b.voidp, 56],
  ]);
  return b;
}

function kernel(opts: { receiveBuf?: bigint; num?: number; loop?: boolean } = {}) {
  const mem = new BareSpace();
  mem.w64(HEAD, DRV);
  mem.w64(HEAD + 8n, DRV);
  mem.w64(DRV, opts.loop ? DRV : HEAD);
  mem.w64(DRV + 8n, HEAD);
  mem.wstr(STR, 'serial');
  mem.wstr(STR + 16n, 'ttyS');
  mem.w64(DRV + 16n, STR);
  mem.w64(DRV + 24n, STR + 16n);
  mem.w32(DRV + 32n, 4);
  mem.w32(DRV + 36n, 64);
  mem.w32(DRV + 40n, opts.num ?? 2);
  mem.w64(DRV + 48n, OPS);
  mem.w64(DRV + 56n, TTYS);
  mem.w64(OPS, TEXT + 0x100n); // write
  mem.w64(OPS + 8n, 0n); // ioctl: none
  mem.w64(OPS + 16n, 0x5401n); // not a function pointer: never listed
  mem.map(TTYS, 8 * Math.min(opts.num ?? 2, 8192));
  mem.w64(TTYS, TTY0); // line 0 open, line 1 not
  mem.w64(TTY0, OPS);
  mem.w64(TTY0 + 8n, LDISC);
  mem.wstr(TTY0 + 16n, 'ttyS0');
  mem.w64(LDISC, LDOPS);
  mem.w64(LDOPS, STR + 32n);
  mem.w64(LDOPS + 8n, opts.receiveBuf ?? TEXT + 0x200n);
  return makeKernel(types(), mem, [
    ['_stext', TEXT, 'T'],
    ['uart_write', TEXT + 0x100n, 'T'],
    ['n_tty_receive_buf', TEXT + 0x200n, 'T'],
    ['_etext', ETEXT, 'T'],
    ['tty_drivers', HEAD, 'D'],
  ]);
}

const classifier: TextClassifier = { textStart: TEXT, textEnd: ETEXT, moduleOf: () => undefined };

function run(k: ReturnType<typeof kernel>) {
  const anomalyCounts = new AnomalySink();
  const rows = [...checkTtyOps(k, classifier, anomalyCounts)].map((e) => ({ ...e, suspicious: e.verdict !== 'core-text' }));
  return { rows, anomalyCounts: anomalyCounts.counts };
}

describe('tty_check', () => {
  test('only function-pointer members are operations', () => {
    assert.deepEqual(functionPointerMembers(kernel(), 'tty_operations').map((m) => m.name), ['write', 'ioctl']);
  });

  test('a clean driver: the driver table once, the open tty\'s line discipline, all in kernel text', () => {
    const r = run(kernel());
    assert.deepEqual(r.anomalyCounts, {});
    assert.deepEqual(r.rows.map((x) => [x.driver, x.tty ?? '-', x.table, x.member, x.symbol, x.suspicious]), [
      ['serial', '-', 'tty_operations', 'write', 'uart_write', false],
      ['serial', 'ttyS0', 'tty_ldisc_ops', 'receive_buf', 'n_tty_receive_buf', false],
    ]);
  });

  test('a receive_buf outside kernel text is flagged', () => {
    const r = run(kernel({ receiveBuf: EVIL }));
    const hooked = r.rows.find((x) => x.member === 'receive_buf')!;
    assert.equal(hooked.verdict, 'unknown');
    assert.equal(hooked.suspicious, true);
    assert.equal(hooked.address, EVIL);
  });

  test('a driver list that loops and an absurd line count are bounded, with anomalies', () => {
    const r = run(kernel({ loop: true, num: 1 << 20 }));
    assert.equal(r.anomalyCounts.cycle, 1);
    assert.equal(r.anomalyCounts.limit, 1);
    assert.equal(r.rows.filter((x) => x.member === 'write').length, 1);
  });
});
