/**
 * The x86-64 disassembler wrapper (iced-x86): a known instruction sequence decodes to the expected text,
 * lengths and branch targets; invalid bytes are `(bad)` instructions, a cut-off last instruction is left
 * out, and the instruction bound holds.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeFlow, disassemble, disassemblerUnavailable, hexdumpLines } from '../../../src/arch/x86-64/disasm.js';

const AT = 0xffff_ffff_8100_0000n;
// endbr64; push rbp; mov rbp, rsp; call +0x10; jmp -2 (to itself); ret; ud2
const CODE = Uint8Array.from([0xf3, 0x0f, 0x1e, 0xfa, 0x55, 0x48, 0x89, 0xe5, 0xe8, 0x10, 0, 0, 0, 0xeb, 0xfe, 0xc3, 0x0f, 0x0b]);

test('the disassembler loads on Node 20', () => assert.equal(disassemblerUnavailable(), undefined));

test('a known sequence decodes: text, lengths, addresses, flow and direct branch targets', () => {
  const got = disassemble(CODE, AT);
  assert.deepEqual(
    got.map((i) => [i.address - AT, i.bytes.length, i.text, i.flow, i.target === undefined ? undefined : i.target - AT]),
    [
      [0n, 4, 'endbr64', 'next', undefined],
      [4n, 1, 'push rbp', 'next', undefined],
      [5n, 3, 'mov rbp, rsp', 'next', undefined],
      [8n, 5, 'call 0xffffffff8100001d', 'call', 0x1dn],
      [13n, 2, 'jmp 0xffffffff8100000d', 'jump', 13n],
      [15n, 1, 'ret', 'return', undefined],
      [16n, 2, 'ud2', 'other', undefined],
    ],
  );
  assert.deepEqual([...got[3]!.bytes], [0xe8, 0x10, 0, 0, 0]);
  assert.ok(got.every((i) => !i.invalid));
});

test('indirect branches have no target; invalid bytes are (bad); a cut-off instruction is left out', () => {
  // jmp qword [rax*8+0]; call rax; 0x06 (invalid in 64-bit mode); mov eax, imm32 cut after 2 bytes
  const got = disassemble(Uint8Array.from([0xff, 0x24, 0xc5, 0, 0, 0, 0, 0xff, 0xd0, 0x06, 0xb8, 0x01]), 0x1000n);
  assert.deepEqual(got.map((i) => [i.text, i.flow, i.target, i.invalid]), [
    ['jmp qword ptr [rax*8]', 'indirect-jump', undefined, false],
    ['call rax', 'indirect-call', undefined, false],
    ['(bad)', 'other', undefined, true],
  ]);
});

test('memory operands give the address they name: absolute displacement, or RIP-relative target', () => {
  // mov rax, [rax*8 - 0x5bbffd20] (a sys_call_table load); mov rax, [rip + 0x10]; mov eax, 1 (none)
  const got = disassemble(Uint8Array.from([0x48, 0x8b, 0x04, 0xc5, 0xe0, 0x02, 0x40, 0xa4, 0x48, 0x8b, 0x05, 0x10, 0, 0, 0, 0xb8, 1, 0, 0, 0]), 0x1000n);
  assert.deepEqual(got.map((i) => i.memory), [0xffff_ffff_a440_02e0n, 0x1000n + 15n + 0x10n, undefined]);
});

test('at most maxInstructions are decoded', () => {
  assert.equal(disassemble(new Uint8Array(1000).fill(0x90), 0n, 10).length, 10);
  assert.equal(disassemble(new Uint8Array(0), 0n).length, 0);
});

test('decodeFlow: the same instructions, flow, targets and (when asked) memory operands as disassemble, text for indirect branches only', () => {
  const code = Uint8Array.from([...CODE, 0xff, 0x24, 0xc5, 0, 0, 0, 0, 0xff, 0xd0, 0x48, 0x8b, 0x05, 0x10, 0, 0, 0, 0x06, 0xb8, 0x01]);
  const full = disassemble(code, AT);
  const flow = decodeFlow(code, AT, 64, { memory: true });
  assert.equal(flow.length, full.length);
  assert.ok(full.some((i) => i.memory !== undefined), 'the code has memory operands');
  assert.deepEqual(decodeFlow(code, AT).map((i) => i.memory), full.map(() => undefined), 'no memory operands unless asked for');
  assert.deepEqual(decodeFlow(code, AT).map((i) => [i.address, i.length, i.target]), flow.map((i) => [i.address, i.length, i.target]));
  assert.deepEqual(
    flow.map((i) => [i.address, i.length, i.flow, i.target, i.memory, i.invalid]),
    full.map((i) => [i.address, i.bytes.length, i.flow, i.target, i.memory, i.invalid]),
  );
  assert.deepEqual(flow.filter((i) => i.text !== undefined).map((i) => i.text), ['jmp qword ptr [rax*8]', 'call rax']);
  assert.equal(decodeFlow(new Uint8Array(1000).fill(0x90), 0n, 10).length, 10);
});

test('hexdumpLines: 16 bytes a line, address, hex and printable ASCII', () => {
  const bytes = Uint8Array.from([...Buffer.from('VMI-RWX-MARKER'), 0, 1, 0x41]);
  assert.deepEqual(hexdumpLines(bytes, 0x7f00n), [
    '0x7f00  56 4d 49 2d 52 57 58 2d 4d 41 52 4b 45 52 00 01  VMI-RWX-MARKER..',
    '0x7f10  41                                               A',
  ]);
});
