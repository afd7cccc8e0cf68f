/**
 * The x64_sys_call switch check on synthetic kernels: the dispatcher is chosen from the symbols present,
 * the switch's compare tree is decoded and each external jump target classified; a jump patched to module
 * or unknown memory is flagged, an indirect jump is an anomaly, and a table hook on a switch kernel is
 * flagged with a note that the table is not what dispatches.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AnomalySink } from '../../src/linux/anomaly.js';
import { coreText, type TextClassifier } from '../../src/linux/integrity.js';
import { isAbsent } from '../../src/linux/plugin.js';
import { checkSyscallRows } from '../../src/linux/plugins/check_syscall.js';
import { dispatchTargets, syscallDispatch } from '../../src/linux/syscall-dispatch.js';
import { BareSpace, makeKernel } from './helpers/bare-kernel.js';
import { TypeBuilder } from './helpers/synthetic.js';

const TEXT = 0xffff_ffff_8100_0000n;
const FN = TEXT + 0x1000n;
const READ = TEXT + 0x2000n;
const WRITE = TEXT + 0x2100n;
const ENTRY = TEXT + 0x3000n;
const TABLE = 0xffff_ffff_8200_0000n;
const MODULE = 0xffff_ffff_c000_0000n;

/** `jmp rel32` from `at` to `to`. */
function jmp(at: bigint, to: bigint): number[] {
  const rel = Number(BigInt.asIntN(32, to - (at + 5n)));
  const b = new Uint8Array(5);
  b[0] = 0xe9;
  new DataView(b.buffer).setInt32(1, rel, true);
  return [...b];
}

/**
 * A two-case switch as gcc emits it: `cmp esi, 1; je case1; test esi, esi; jne default; jmp READ;
 * case1: jmp WRITE; default: jmp <fallback>` (all offsets from FN).
 */
function switchCode(fallback: bigint, extra: number[] = []): Uint8Array {
  const code: number[] = [0x83, 0xfe, 0x01, 0x74, 0x09, 0x85, 0xf6, 0x75, 0x0a]; // cmp; je +9; test; jne +10
  code.push(...jmp(FN + 9n, READ)); // 9..13
  code.push(...jmp(FN + 14n, WRITE)); // 14..18 (je target: 5 + 9)
  code.push(...jmp(FN + 19n, fallback)); // 19..23 (jne target: 9 + 10)
  code.push(...extra, 0xcc, 0xcc);
  return Uint8Array.from(code);
}

function kernel(opts: { code?: Uint8Array; withSwitch?: boolean; tableEntries?: bigint[]; unreadableCode?: boolean; entry?: Uint8Array } = {}) {
  const mem = new BareSpace();
  const entries = opts.tableEntries ?? [READ, WRITE];
  entries.forEach((e, i) => mem.w64(TABLE + BigInt(i * 8), e));
  mem.map(TABLE, entries.length * 8);
  const code = opts.code ?? switchCode(READ);
  mem.write(FN, code);
  if (opts.unreadableCode) mem.unmap(FN);
  if (opts.entry) mem.write(ENTRY, opts.entry);
  const symbols: [string, bigint, string][] = [
    ['_stext', TEXT, 'T'],
    ...(opts.withSwitch === false ? [] : [['x64_sys_call', FN, 'T'] as [string, bigint, string]]),
    ['after_switch', FN + BigInt(code.length), 'T'],
    ...(opts.entry ? [['do_syscall_64', ENTRY, 'T'] as [string, bigint, string], ['after_entry', ENTRY + 0x100n, 'T'] as [string, bigint, string]] : []),
    ['__x64_sys_read', READ, 'T'],
    ['__x64_sys_write', WRITE, 'T'],
    ['_etext', TEXT + 0x10_0000n, 'T'],
    ['sys_call_table', TABLE, 'D'],
    ['after_table', TABLE + BigInt(entries.length * 8), 'D'],
  ];
  return makeKernel(new TypeBuilder(), mem, symbols);
}

const classifier = (k: ReturnType<typeof kernel>): TextClassifier => {
  const t = coreText(k.symbols);
  return { textStart: t.start, textEnd: t.end, moduleOf: (va) => (va >= MODULE && va < MODULE + 0x1000n ? 'evil' : undefined) };
};

/** check_syscall's rows (the plugin's own classifier needs a module list these kernels lack). */
const rows = (k: ReturnType<typeof kernel>) => [...checkSyscallRows(k, classifier(k), new AnomalySink())];

describe('system call dispatch', () => {
  test('without an entry function, the symbols decide: x64_sys_call present, the switch; absent, the table', () => {
    assert.deepEqual(syscallDispatch(kernel()), [{ abi: 'x64', dispatcher: 'x64_sys_call', kind: 'switch', address: FN, basis: 'symbols' }]);
    assert.deepEqual(syscallDispatch(kernel({ withSwitch: false })), [{ abi: 'x64', dispatcher: 'sys_call_table', kind: 'table', address: TABLE, basis: 'symbols' }]);
  });

  test("do_syscall_64's code decides: a call of x64_sys_call, or a load from sys_call_table", () => {
    // call x64_sys_call; ret
    const calls = kernel({ entry: Uint8Array.from([...jmp(ENTRY, FN)].map((b, i) => (i === 0 ? 0xe8 : b)).concat([0xc3])) });
    assert.deepEqual(syscallDispatch(calls), [{ abi: 'x64', dispatcher: 'x64_sys_call', kind: 'switch', address: FN, basis: 'code', entry: 'do_syscall_64', site: ENTRY }]);
    // mov rax, [rax*8 + sys_call_table]; call rax; ret — the table dispatches although a switch symbol exists
    const disp = new Uint8Array(4);
    new DataView(disp.buffer).setInt32(0, Number(BigInt.asIntN(32, TABLE)), true);
    const loads = kernel({ entry: Uint8Array.from([0x90, 0x48, 0x8b, 0x04, 0xc5, ...disp, 0xff, 0xd0, 0xc3]) });
    assert.deepEqual(syscallDispatch(loads), [{ abi: 'x64', dispatcher: 'sys_call_table', kind: 'table', address: TABLE, basis: 'code', entry: 'do_syscall_64', site: ENTRY + 1n }]);
    const row = rows(loads)[0]!;
    assert.deepEqual([row.dispatched, row.evidence], [true, `do_syscall_64 loads from sys_call_table at 0x${(ENTRY + 1n).toString(16)}`]);
    assert.equal(rows(calls)[0]!.evidence, `do_syscall_64 calls x64_sys_call at 0x${ENTRY.toString(16)}`);
  });

  test("a clean switch: its external jump targets are the handlers, once each, in core text", () => {
    const k = kernel();
    const a = new AnomalySink();
    const got = [...dispatchTargets(k, classifier(k), a)];
    assert.deepEqual(got.map((t) => [t.index, t.symbol, t.verdict, t.sites, t.site - FN]), [
      [0, '__x64_sys_read', 'core-text', 2, 9n],
      [1, '__x64_sys_write', 'core-text', 1, 14n],
    ]);
    assert.deepEqual(a.items, []);
  });

  test('a case patched to jump into a module is flagged with the module and a note', () => {
    const k = kernel({ code: switchCode(MODULE + 0x10n) });
    const flagged = rows(k).filter((x) => x.suspicious);
    assert.deepEqual(flagged.map((x) => [x.table, x.verdict, x.module, x.dispatched]), [['x64_sys_call', 'module', 'evil', true]]);
    assert.match(String(flagged[0]!.note), /^x64_sys_call branches here from 0xffffffff81001013 \(1 site\)/);
  });

  test('an indirect jump in the switch is an anomaly (its targets cannot be checked)', () => {
    const k = kernel({ code: switchCode(READ, [0xff, 0x24, 0xc5, 0, 0, 0, 0]) });
    const a = new AnomalySink();
    assert.equal([...dispatchTargets(k, classifier(k), a)].length, 2);
    assert.deepEqual(a.items.map((x) => [x.kind, x.where, x.address! - FN]), [['invalid', 'x64_sys_call', 24n]]);
    assert.match(a.items[0]!.detail!, /indirect branch 'jmp qword ptr \[rax\*8\]'/);
  });

  test('unreadable switch code is a fault, not invented instructions', () => {
    const k = kernel({ unreadableCode: true });
    const a = new AnomalySink();
    assert.deepEqual([...dispatchTargets(k, classifier(k), a)], []);
    assert.deepEqual(a.items.map((x) => [x.kind, x.where, x.address]), [['fault', 'x64_sys_call', FN]]);
  });

  test('a hooked table entry on a switch kernel is flagged, noted as never called; without the switch it dispatches', () => {
    const row = rows(kernel({ tableEntries: [READ, MODULE + 0x20n] })).find((x) => x.suspicious)!;
    assert.deepEqual([row.table, row.index, row.module, row.dispatcher, row.dispatched], ['sys_call_table', 1, 'evil', 'x64_sys_call', false]);
    assert.equal(row.note, 'never called: x64_sys_call dispatches x64 system calls, not this table');
    const old = rows(kernel({ withSwitch: false, tableEntries: [READ, MODULE + 0x20n] }));
    const oldRow = old.find((x) => x.suspicious)!;
    assert.deepEqual([oldRow.dispatcher, oldRow.dispatched], ['sys_call_table', true]);
    assert.ok(isAbsent(oldRow.note));
    assert.ok(old.every((x) => x.table === 'sys_call_table'));
  });
});
