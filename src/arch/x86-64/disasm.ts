/**
 * x86-64 disassembly through iced-x86 (a maintained Rust decoder compiled to WebAssembly), loaded on first
 * use only: malfind renders a few instructions per suspicious region, check_syscall decodes the system call
 * dispatcher; nothing else pays for the 800 KB module. The package loads its wasm synchronously (require),
 * so plugins, which are synchronous generators, can call it directly.
 *
 * Guest bytes are hostile: the decoder is bounded by the buffer and by `maxInstructions`, invalid encodings
 * come back as `(bad)` instructions of their decoded length, never an exception.
 */
import { createRequire } from 'node:module';

/** How an instruction passes control on (iced's FlowControl, in words). */
export type Flow = 'next' | 'jump' | 'indirect-jump' | 'conditional-jump' | 'return' | 'call' | 'indirect-call' | 'interrupt' | 'other';

export interface Instruction {
  readonly address: bigint;
  readonly bytes: Uint8Array;
  /** Intel syntax, lower-case hex with 0x: `call 0xffffffff81a00010`. */
  readonly text: string;
  readonly flow: Flow;
  /** A direct near branch's (call, jmp, jcc) target. */
  readonly target?: bigint;
  /**
   * The address a memory operand names: a RIP-relative operand's target, else its displacement as a 64-bit
   * value (`[rax*8 + sys_call_table]` gives sys_call_table's address).
   */
  readonly memory?: bigint;
  /** The decoder found no valid instruction here. */
  readonly invalid: boolean;
}

// The narrow face of iced-x86 used here (its own .d.ts is 20k lines; keeping the import type-only avoids
// loading it at compile time for every other module).
interface IcedInstruction {
  readonly ip: bigint;
  readonly length: number;
  readonly flowControl: number;
  readonly nearBranchTarget: bigint;
  readonly isInvalid: boolean;
  readonly opCount: number;
  opKind(operand: number): number;
  readonly isIpRelMemoryOperand: boolean;
  readonly ipRelMemoryAddress: bigint;
  readonly memoryDisplacementU64: bigint;
  free(): void;
}
interface Iced {
  Decoder: new (bitness: number, data: Uint8Array, options: number) => { ip: bigint; readonly canDecode: boolean; readonly lastError: number; decodeOut(into: IcedInstruction): void; free(): void };
  Instruction: new () => IcedInstruction;
  Formatter: new (syntax: number) => {
    format(i: IcedInstruction): string;
    hexPrefix: string;
    hexSuffix: string;
    uppercaseHex: boolean;
    spaceAfterOperandSeparator: boolean;
    branchLeadingZeros: boolean;
    showBranchSize: boolean;
    free(): void;
  };
  DecoderOptions: { None: number };
  DecoderError: { NoMoreBytes: number };
  FormatterSyntax: { Intel: number };
  FlowControl: Record<string, number>;
  OpKind: { Memory: number };
}

const FLOWS: Record<string, Flow> = {
  Next: 'next',
  UnconditionalBranch: 'jump',
  IndirectBranch: 'indirect-jump',
  ConditionalBranch: 'conditional-jump',
  Return: 'return',
  Call: 'call',
  IndirectCall: 'indirect-call',
  Interrupt: 'interrupt',
};

type Formatter = InstanceType<Iced['Formatter']>;

let iced: { lib: Iced; flows: Map<number, Flow>; formatter?: Formatter } | undefined;
let loadError: string | undefined;

function load(): NonNullable<typeof iced> {
  if (iced) return iced;
  if (loadError) throw new Error(loadError);
  try {
    const lib = createRequire(import.meta.url)('iced-x86') as Iced;
    const flows = new Map<number, Flow>();
    for (const [name, flow] of Object.entries(FLOWS)) if (lib.FlowControl[name] !== undefined) flows.set(lib.FlowControl[name]!, flow);
    iced = { lib, flows };
    return iced;
  } catch (e) {
    loadError = `the x86 disassembler (npm package iced-x86) cannot be loaded: ${(e as Error).message}; run 'npm ci' in the vmsight folder`;
    throw new Error(loadError);
  }
}

/** The Intel-syntax formatter, made on the first instruction shown (its tables cost a cold process ~8 ms). */
function formatter(loaded: NonNullable<typeof iced>): Formatter {
  if (loaded.formatter) return loaded.formatter;
  const f = new loaded.lib.Formatter(loaded.lib.FormatterSyntax.Intel);
  f.hexPrefix = '0x';
  f.hexSuffix = '';
  f.uppercaseHex = false;
  f.spaceAfterOperandSeparator = true;
  f.branchLeadingZeros = false;
  f.showBranchSize = false;
  return (loaded.formatter = f);
}

/** Why disassembly is unavailable, or undefined when it works (loads the disassembler). */
export function disassemblerUnavailable(): string | undefined {
  try {
    load();
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}

/**
 * Decodes `code` as 64-bit instructions starting at `address`, at most `maxInstructions` (default 64);
 * a trailing partial instruction is left out. Throws only when the disassembler cannot be loaded.
 */
export function disassemble(code: Uint8Array, address: bigint, maxInstructions = 64): Instruction[] {
  const out: Instruction[] = [];
  decode(code, address, maxInstructions, true, () => true, ({ length, ...i }, at) => out.push({ ...i, bytes: code.slice(at, at + length), text: i.text! }));
  return out;
}

/** An instruction as decodeFlow gives it: how control passes on, no bytes, text only for an indirect branch. */
export interface FlowInstruction extends Omit<Instruction, 'bytes' | 'text'> {
  readonly length: number;
  /** Intel syntax, for an indirect branch only (the one a reader must see: its targets cannot be followed). */
  readonly text?: string;
}

/**
 * Like disassemble, for code that is followed rather than shown (a system call dispatcher of thousands of
 * instructions): formats only indirect branches and copies no bytes, which is most of disassemble's time.
 * The memory operand (`memory`) is looked up only when asked for: it is a call into the decoder per operand.
 */
export function decodeFlow(code: Uint8Array, address: bigint, maxInstructions = 64, { memory = false }: { memory?: boolean } = {}): FlowInstruction[] {
  const out: FlowInstruction[] = [];
  decode(code, address, maxInstructions, memory, (flow) => flow === 'indirect-jump' || flow === 'indirect-call', (i) => out.push(i));
  return out;
}

/**
 * The decoding loop of both: `withMemory` says whether memory operands are looked up, `format(flow)` whose
 * text to format; `emit` gets each instruction and its offset.
 */
function decode(code: Uint8Array, address: bigint, maxInstructions: number, withMemory: boolean, format: (flow: Flow) => boolean, emit: (i: FlowInstruction, at: number) => void): void {
  const loaded = load();
  const { lib, flows } = loaded;
  const decoder = new lib.Decoder(64, code, lib.DecoderOptions.None);
  // One instruction decoded into again and again: no wasm allocation and free per instruction, and every
  // property read once and only when needed (each is a call into the module).
  const i = new lib.Instruction();
  const memoryKind = lib.OpKind.Memory;
  try {
    decoder.ip = address;
    let at = 0;
    for (let n = 0; decoder.canDecode && n < maxInstructions; n++) {
      decoder.decodeOut(i);
      const length = i.length;
      const invalid = i.isInvalid;
      // An instruction cut off by the end of the buffer is not the code's fault: leave it out.
      if (invalid && decoder.lastError === lib.DecoderError.NoMoreBytes) break;
      const flow = invalid ? 'other' : (flows.get(i.flowControl) ?? 'other');
      const direct = flow === 'call' || flow === 'jump' || flow === 'conditional-jump';
      let memory: bigint | undefined;
      if (withMemory) for (let k = 0, ops = invalid ? 0 : i.opCount; k < ops; k++) if (i.opKind(k) === memoryKind) memory = i.isIpRelMemoryOperand ? i.ipRelMemoryAddress : i.memoryDisplacementU64;
      const text = format(flow) ? (invalid ? '(bad)' : formatter(loaded).format(i)) : undefined;
      const decoded: FlowInstruction = {
        address: address + BigInt(at),
        length,
        flow,
        invalid,
        ...(text !== undefined ? { text } : {}),
        ...(direct ? { target: i.nearBranchTarget } : {}),
        ...(memory !== undefined ? { memory } : {}),
      };
      emit(decoded, at);
      at += length;
    }
  } finally {
    i.free();
    decoder.free();
  }
}

/** A classic hexdump of `bytes` at `address`: 16 per line, then their printable ASCII. */
export function hexdumpLines(bytes: Uint8Array, address: bigint): string[] {
  const lines: string[] = [];
  for (let o = 0; o < bytes.length; o += 16) {
    const row = bytes.subarray(o, o + 16);
    const hexes = [...row].map((b) => b.toString(16).padStart(2, '0')).join(' ');
    const ascii = [...row].map((b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.')).join('');
    lines.push(`0x${(address + BigInt(o)).toString(16)}  ${hexes.padEnd(47)}  ${ascii}`);
  }
  return lines;
}
