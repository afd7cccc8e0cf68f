import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AnomalySink } from '../../src/linux/anomaly.js';
import { checkIdt, checkSyscallTables, classifyAddress, coreText, decodeGate, isSuspicious, nextSymbolAddress, syscallTables, type TextClassifier } from '../../src/linux/integrity.js';
import { BareSpace, makeKernel } from './helpers/bare-kernel.js';
import { TypeBuilder } from './helpers/synthetic.js';

const TEXT = 0xffff_ffff_8100_0000n;
const ETEXT = TEXT + 0x10_0000n;
const INIT = 0xffff_ffff_8300_0000n;
const TABLE = 0xffff_ffff_8200_0000n;
const IDT = 0xffff_ffff_8220_0000n;
const MODULE = 0xffff_ffff_c000_0000n;

/** One 64-bit interrupt gate, encoded independently of the decoder. */
function gate(addr: bigint, opts: { ist?: number; type?: number; dpl?: number; present?: boolean } = {}): Uint8Array {
  const b = new Uint8Array(16);
  const dv = new DataView(b.buffer);
  dv.setUint16(0, Number(addr & 0xffffn), true);
  dv.setUint16(2, 0x10, true);
  dv.setUint16(4, (opts.ist ?? 0) | ((opts.type ?? 14) << 8) | ((opts.dpl ?? 0) << 13) | (opts.present === false ? 0 : 0x8000), true);
  dv.setUint16(6, Number((addr >> 16n) & 0xffffn), true);
  dv.setUint32(8, Number((addr >> 32n) & 0xffffffffn), true);
  return b;
}

function kernel(entries: bigint[], opts: { pad?: number } = {}) {
  const mem = new BareSpace();
  entries.forEach((e, i) => mem.w64(TABLE + BigInt(i * 8), e));
  mem.map(TABLE, (entries.length + (opts.pad ?? 0)) * 8);
  for (let v = 0; v < 256; v++) mem.write(IDT + BigInt(v * 16), gate(v === 3 ? MODULE + 0x40n : v === 200 ? 0n : TEXT + BigInt(v * 16), { present: v !== 200, ist: v === 2 ? 2 : 0, dpl: v === 3 ? 3 : 0 }));
  return makeKernel(new TypeBuilder(), mem, [
    ['_stext', TEXT, 'T'],
    ['handler_a', TEXT + 0x100n, 'T'],
    ['handler_b', TEXT + 0x200n, 'T'],
    ['_etext', ETEXT, 'T'],
    ['_sinittext', INIT, 'T'],
    ['_einittext', INIT + 0x1000n, 'T'],
    ['sys_call_table', TABLE, 'D'],
    ['after_table', TABLE + BigInt((entries.length + (opts.pad ?? 0)) * 8), 'D'],
    ['idt_table', IDT, 'D'],
    ['after_idt', IDT + 0x1000n, 'D'],
  ]);
}

const classifier = (k: ReturnType<typeof kernel>): TextClassifier => {
  const t = coreText(k.symbols);
  return { textStart: t.start, textEnd: t.end, initStart: t.initStart!, initEnd: t.initEnd!, moduleOf: (va) => (va >= MODULE && va < MODULE + 0x1000n ? 'evil' : undefined) };
};

describe('gate descriptors', () => {
  test('decodes offset low/mid/high, segment, ist, type, dpl, present', () => {
    const g = decodeGate(gate(0xffff_ffff_8123_4567n, { ist: 3, type: 15, dpl: 3 }), 0, 7);
    assert.deepEqual(g, { vector: 7, address: 0xffff_ffff_8123_4567n, segment: 0x10, ist: 3, type: 15, dpl: 3, present: true });
    assert.equal(decodeGate(gate(0n, { present: false }), 0, 0).present, false);
  });
});

describe('address classification', () => {
  test('core text, init text, module, unknown', () => {
    const k = kernel([]);
    const c = classifier(k);
    assert.equal(classifyAddress(c, TEXT).verdict, 'core-text');
    assert.equal(classifyAddress(c, ETEXT).verdict, 'unknown');
    assert.equal(classifyAddress(c, INIT + 8n).verdict, 'init-text');
    assert.deepEqual(classifyAddress(c, MODULE + 8n), { verdict: 'module', module: 'evil' });
    assert.ok(isSuspicious('module') && isSuspicious('unknown') && !isSuspicious('core-text') && !isSuspicious('init-text'));
  });
});

describe('sys_call_table', () => {
  test('sized by the next symbol, trailing padding dropped, hooks flagged with their module', () => {
    const k = kernel([TEXT + 0x100n, MODULE + 0x10n, TEXT + 0x200n, 0xdead_beefn], { pad: 3 });
    assert.equal(nextSymbolAddress(k.symbols, TABLE), TABLE + 7n * 8n);
    assert.deepEqual(syscallTables(k).map((t) => t.entries), [7]);
    const a = new AnomalySink();
    const rows = [...checkSyscallTables(k, classifier(k), a)];
    assert.equal(rows.length, 4);
    assert.deepEqual(rows.map((r) => r.verdict), ['core-text', 'module', 'core-text', 'unknown']);
    assert.equal(rows[0]!.symbol, 'handler_a');
    assert.equal(rows[1]!.module, 'evil');
    assert.equal(rows[3]!.symbol, undefined); // a user-half value names no symbol
    assert.equal(a.total, 0);
  });

  test('an unmapped table page is a fault anomaly, not a crash', () => {
    const k = kernel(new Array(1024).fill(TEXT + 0x100n));
    (k.space as unknown as BareSpace).unmap(TABLE + 4096n);
    const a = new AnomalySink();
    const rows = [...checkSyscallTables(k, classifier(k), a)];
    assert.equal(rows.length, 512);
    assert.ok((a.counts.fault ?? 0) >= 1);
  });
});

describe('idt_table', () => {
  test('256 gates, a module handler flagged, absent gates not-present', () => {
    const k = kernel([]);
    const rows = [...checkIdt(k, classifier(k), new AnomalySink())];
    assert.equal(rows.length, 256);
    assert.equal(rows[3]!.verdict, 'module');
    assert.equal(rows[3]!.dpl, 3);
    assert.equal(rows[2]!.ist, 2);
    assert.equal(rows[200]!.verdict, 'not-present');
    assert.equal(rows.filter((r) => isSuspicious(r.verdict)).length, 1);
  });
});
