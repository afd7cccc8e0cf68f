/**
 * Which mechanism dispatches each system call ABI, and what the dispatch functions branch to.
 *
 * Until 6.9, x86-64 called `sys_call_table[nr]` (and `ia32_sys_call_table`, `x32_sys_call_table`) through
 * an indirect call. Since 6.9 (commit 1e3ad78334a6, "x86/syscall: Don't force use of indirect calls for
 * system calls", the BHI hardening, backported to 6.1.87 and 5.10.215 among other stable kernels) the
 * entry code calls `x64_sys_call(regs, nr)` (`ia32_sys_call`, `x32_sys_call`): a switch that the compiler
 * turns into a compare tree of direct jumps to the handlers. The table is still built and exported, so a
 * rootkit that overwrites a table entry changes nothing that runs, and one that wants its hook called
 * must patch the switch's code instead. The choice is made from the entry function's own code (does
 * do_syscall_64 call x64_sys_call, or load from sys_call_table?), else from the symbols, never the version.
 *
 * The dispatch function is decoded (iced-x86, flow only) up to the next symbol, bounded; every direct branch whose
 * target is outside the function is one handler (or a shared thunk) and is classified like a table entry.
 * An indirect branch in it (a jump table, or a patched `jmp *`) cannot be followed and is an anomaly.
 */
import { decodeFlow } from '../arch/x86-64/disasm.js';
import { gva } from '../core/address.js';
import type { AnomalySink } from './anomaly.js';
import { classifyAddress, nextSymbolAddress, symbolize, type EntryVerdict, type TextClassifier } from './integrity.js';
import type { Kernel } from './kernel.js';

export type SyscallAbi = 'x64' | 'ia32' | 'x32';

/** How one ABI's system calls reach their handlers on this kernel. */
export interface AbiDispatch {
  readonly abi: SyscallAbi;
  /** The symbol that dispatches: a function (switch) or a table. */
  readonly dispatcher: string;
  readonly kind: 'switch' | 'table';
  readonly address: bigint;
  /**
   * How this was decided: 'code' when the entry function's instructions were seen calling the switch or
   * loading from the table (`site` is that instruction), 'symbols' when only the symbols present say so.
   */
  readonly basis: 'code' | 'symbols';
  readonly entry?: string;
  readonly site?: bigint;
}

/**
 * Per ABI: the switch function (6.9+ and the backports), the table (always built while the ABI exists), and
 * the entry functions that dispatch (do_syscall_64 does x64 and x32; the ia32 path has several names).
 */
const ABIS: readonly { abi: SyscallAbi; fn: string; table: string; entries: readonly string[] }[] = [
  { abi: 'x64', fn: 'x64_sys_call', table: 'sys_call_table', entries: ['do_syscall_64'] },
  { abi: 'ia32', fn: 'ia32_sys_call', table: 'ia32_sys_call_table', entries: ['__do_fast_syscall_32', 'do_int80_syscall_32', 'do_int80_emulation', 'do_syscall_32_irqs_on'] },
  { abi: 'x32', fn: 'x32_sys_call', table: 'x32_sys_call_table', entries: ['do_syscall_64'] },
];
/** An entry function is small (do_syscall_64 is under 300 bytes); decode at most this much of it. */
const MAX_ENTRY_BYTES = 4096;

/** The ABI a syscall table belongs to. */
export function abiOfTable(table: string): SyscallAbi | undefined {
  return ABIS.find((a) => a.table === table)?.abi;
}

/** Where an entry function's code shows the dispatch: a direct call/jmp to the switch, or a load from the table. */
function dispatchInCode(kernel: Kernel, entry: string, fn: bigint | undefined, table: bigint | undefined): { kind: 'switch' | 'table'; site: bigint } | undefined {
  const start = kernel.symbols.tryAddress(entry);
  if (start === undefined) return undefined;
  const end = nextSymbolAddress(kernel.symbols, start);
  const len = end === undefined ? MAX_ENTRY_BYTES : Math.min(MAX_ENTRY_BYTES, Number(end - start));
  const code = new Uint8Array(len);
  if (kernel.space.readv([{ va: gva(start), len, dst: code }]).length) return undefined;
  let decoded;
  try {
    decoded = decodeFlow(code, start, 1024, { memory: true });
  } catch {
    return undefined;
  }
  for (const i of decoded) {
    if (fn !== undefined && i.target === fn) return { kind: 'switch', site: i.address };
    if (table !== undefined && i.memory === table) return { kind: 'table', site: i.address };
  }
  return undefined;
}

/**
 * What dispatches each ABI this kernel has. The entry function's code decides when it names the switch or
 * the table; otherwise the symbols do (the switch when present, else the table).
 */
export function syscallDispatch(kernel: Kernel): AbiDispatch[] {
  const out: AbiDispatch[] = [];
  for (const { abi, fn, table, entries } of ABIS) {
    const f = kernel.symbols.tryAddress(fn);
    const t = kernel.symbols.tryAddress(table);
    if (f === undefined && t === undefined) continue;
    let seen: AbiDispatch | undefined;
    for (const entry of entries) {
      const d = dispatchInCode(kernel, entry, f, t);
      if (!d) continue;
      seen = { abi, dispatcher: d.kind === 'switch' ? fn : table, kind: d.kind, address: d.kind === 'switch' ? f! : t!, basis: 'code', entry, site: d.site };
      break;
    }
    out.push(seen ?? (f !== undefined ? { abi, dispatcher: fn, kind: 'switch', address: f, basis: 'symbols' } : { abi, dispatcher: table, kind: 'table', address: t!, basis: 'symbols' }));
  }
  return out;
}

/** Largest dispatch function decoded (the 6.12 x64 switch is about 5 KiB; a symbol gap beyond this is not code). */
export const MAX_DISPATCH_BYTES = 256 << 10;
const MAX_INSTRUCTIONS = 64 << 10;

/** One distinct branch target of a dispatch function. */
export interface DispatchTarget {
  readonly dispatcher: string;
  readonly abi: SyscallAbi;
  /** Order of first appearance in the function. */
  readonly index: number;
  readonly address: bigint;
  /** Address of the first branch to it, and how many branches go there. */
  readonly site: bigint;
  readonly sites: number;
  readonly symbol: string | undefined;
  readonly verdict: EntryVerdict;
  readonly module: string | undefined;
}

/**
 * The branch targets of every switch dispatcher, classified. Reading or decoding problems (unreadable
 * code, invalid instructions, indirect branches, a function too large to be one) are anomalies. `dispatch`
 * is syscallDispatch's answer when the caller has it already (it decodes every entry function).
 */
export function* dispatchTargets(
  kernel: Kernel,
  classify: TextClassifier,
  anomalies: AnomalySink,
  moduleSymbol?: (va: bigint) => string | undefined,
  dispatch: readonly AbiDispatch[] = syscallDispatch(kernel),
): Generator<DispatchTarget> {
  for (const d of dispatch) {
    if (d.kind !== 'switch') continue;
    const end = nextSymbolAddress(kernel.symbols, d.address);
    if (end === undefined || end - d.address > BigInt(MAX_DISPATCH_BYTES)) {
      anomalies.add({ kind: 'limit', where: d.dispatcher, address: d.address, detail: `cannot size the function (no symbol within ${MAX_DISPATCH_BYTES} bytes after it)` });
      continue;
    }
    const code = new Uint8Array(Number(end - d.address));
    const failures = kernel.space.readv([{ va: gva(d.address), len: code.length, dst: code }]);
    for (const f of failures) anomalies.add({ kind: 'fault', where: d.dispatcher, address: f.va, detail: f.reason });
    if (failures.length) continue; // decoding zero-filled holes would invent instructions
    let instructions;
    try {
      instructions = decodeFlow(code, d.address, MAX_INSTRUCTIONS);
    } catch (e) {
      anomalies.add({ kind: 'invalid', where: d.dispatcher, address: d.address, detail: (e as Error).message });
      continue;
    }
    const seen = new Map<bigint, { index: number; site: bigint; sites: number }>();
    for (const i of instructions) {
      if (i.invalid) {
        // Padding after the last ret decodes as int3/nop; a (bad) inside the function is worth a look.
        anomalies.add({ kind: 'invalid', where: d.dispatcher, address: i.address, detail: 'bytes that decode as no x86-64 instruction' });
        continue;
      }
      if (i.flow === 'indirect-jump' || i.flow === 'indirect-call') {
        anomalies.add({ kind: 'invalid', where: d.dispatcher, address: i.address, detail: `indirect branch '${i.text}': its targets are not checked` });
        continue;
      }
      const t = i.target;
      if (t === undefined || (t >= d.address && t < end)) continue; // internal branch of the compare tree
      const s = seen.get(t);
      if (s) s.sites++;
      else seen.set(t, { index: seen.size, site: i.address, sites: 1 });
    }
    for (const [address, s] of seen) {
      const { verdict, module } = classifyAddress(classify, address);
      yield { dispatcher: d.dispatcher, abi: d.abi, index: s.index, address, site: s.site, sites: s.sites, symbol: symbolize(kernel.symbols, address, moduleSymbol), verdict, module };
    }
  }
}
