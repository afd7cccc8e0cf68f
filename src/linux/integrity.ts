/**
 * Kernel integrity checks that need no walker: the system call tables and the
 * interrupt descriptor table. Every entry is resolved to a symbol; an entry
 * outside the core kernel text (`_stext`..`_etext`) is what a rootkit hook
 * looks like, and is reported with the module that owns the address, if any.
 */
import type { SymbolTable } from '../profile/symbols.js';
import type { AnomalySink } from './anomaly.js';
import type { Kernel } from './kernel.js';
import { carveModules, crossViewModules, moduleArea, moduleOwning, moduleSymbolResolver } from './modules.js';
import { gva } from '../core/address.js';

/** Upper bound on a syscall table's entries (x86-64 has ~460). */
export const MAX_SYSCALLS = 1024;

/** A text range and a way to name the module owning an address. */
export interface TextClassifier {
  /** Core kernel text [start, end). */
  readonly textStart: bigint;
  readonly textEnd: bigint;
  /** Init text [start, end), when known. */
  readonly initStart?: bigint;
  readonly initEnd?: bigint;
  /** Name of the module whose memory holds `va` (undefined when none). */
  moduleOf(va: bigint): string | undefined;
}

/**
 * 'core-text': inside _stext.._etext; 'init-text': inside _sinittext.._einittext
 * (the early IDT handlers the kernel leaves in unused vectors); 'module': in a
 * module's memory; 'unknown': anywhere else (the suspicious case).
 */
export type EntryVerdict = 'core-text' | 'init-text' | 'module' | 'unknown';

/** Where a handler address points. */
export function classifyAddress(c: TextClassifier, va: bigint): { verdict: EntryVerdict; module?: string } {
  if (va >= c.textStart && va < c.textEnd) return { verdict: 'core-text' };
  if (c.initStart !== undefined && c.initEnd !== undefined && va >= c.initStart && va < c.initEnd) return { verdict: 'init-text' };
  const m = c.moduleOf(va);
  return m !== undefined ? { verdict: 'module', module: m } : { verdict: 'unknown' };
}

/** Core kernel text bounds from `_stext`/`_etext` (and init text from `_sinittext`/`_einittext`). */
export function coreText(symbols: SymbolTable): { start: bigint; end: bigint; initStart?: bigint; initEnd?: bigint } {
  const initStart = symbols.tryAddress('_sinittext');
  const initEnd = symbols.tryAddress('_einittext');
  return {
    start: symbols.address('_stext'),
    end: symbols.address('_etext'),
    ...(initStart !== undefined && initEnd !== undefined ? { initStart, initEnd } : {}),
  };
}

/** True for entries a checker should flag. */
export function isSuspicious(verdict: EntryVerdict | 'not-present'): boolean {
  return verdict === 'module' || verdict === 'unknown';
}

/** Lowest kernel-half address (x86-64, 4- or 5-level): below it nothing is a kernel symbol. */
const KERNEL_HALF = 0xff00_0000_0000_0000n;

/**
 * Address of the first symbol strictly above `va` (the end of the object at
 * `va` when kallsyms has no sizes); undefined when none.
 */
export function nextSymbolAddress(symbols: SymbolTable, va: bigint): bigint | undefined {
  const order = symbols.addressOrder();
  let lo = 0;
  let hi = order.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (symbols.addressAt(order[mid]!) <= va) lo = mid + 1;
    else hi = mid;
  }
  return lo < order.length ? symbols.addressAt(order[lo]!) : undefined;
}

export interface SyscallEntry {
  /** 'sys_call_table', 'ia32_sys_call_table' or 'x32_sys_call_table'. */
  readonly table: string;
  readonly index: number;
  readonly address: bigint;
  /** Symbol at the handler address (`name` or `name+0xoff`), undefined when none. */
  readonly symbol: string | undefined;
  readonly verdict: EntryVerdict;
  readonly module: string | undefined;
}

/** The syscall tables this kernel has, with their entry counts. */
export function syscallTables(kernel: Kernel): { name: string; address: bigint; entries: number }[] {
  const out: { name: string; address: bigint; entries: number }[] = [];
  for (const name of ['sys_call_table', 'ia32_sys_call_table', 'x32_sys_call_table']) {
    const address = kernel.symbols.tryAddress(name);
    if (address === undefined) continue;
    const end = nextSymbolAddress(kernel.symbols, address);
    // kallsyms has no sizes: the table ends where the next symbol starts.
    const entries = end === undefined ? 0 : Math.min(MAX_SYSCALLS, Number((end - address) / 8n));
    out.push({ name, address, entries });
  }
  return out;
}

/** Resolves a handler address to `name` / `name+0xoff` (within 1 MiB of a symbol). */
export function symbolize(symbols: SymbolTable, va: bigint, moduleSymbol?: (va: bigint) => string | undefined): string | undefined {
  if (va < KERNEL_HALF) return undefined;
  const at = symbols.nameOf(va, 1n << 20n);
  const core = at ? (at.offset === 0n ? at.name : `${at.name}+0x${at.offset.toString(16)}`) : undefined;
  if (core !== undefined && at && at.symbol.module === undefined) {
    // A core symbol far below a module address is not its name: prefer the module's own symbols.
    const mod = moduleSymbol?.(va);
    if (mod !== undefined && at.offset > 0n) return mod;
  }
  return core ?? moduleSymbol?.(va);
}

/**
 * Every entry of every syscall table, classified.
 * @param classify core text bounds and module ownership
 */
export function* checkSyscallTables(
  kernel: Kernel,
  classify: TextClassifier,
  anomalies: AnomalySink,
  moduleSymbol?: (va: bigint) => string | undefined,
): Generator<SyscallEntry> {
  const tables = syscallTables(kernel);
  for (const t of tables) {
    if (t.entries <= 0) {
      anomalies.add({ kind: 'invalid', where: t.name, address: t.address, detail: 'cannot size the table (no symbol after it)' });
      continue;
    }
    const bytes = new Uint8Array(t.entries * 8);
    const failures = kernel.space.readv([{ va: gva(t.address), len: bytes.length, dst: bytes }]);
    for (const f of failures) anomalies.add({ kind: 'fault', where: t.name, address: f.va, detail: f.reason });
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    // The symbol gap includes alignment padding after the last entry: drop trailing NULL words.
    let n = t.entries;
    while (n > 0 && dv.getBigUint64((n - 1) * 8, true) === 0n && !failures.some((f) => t.address + BigInt((n - 1) * 8) >= f.va && t.address + BigInt((n - 1) * 8) < f.va + BigInt(f.len))) n--;
    for (let i = 0; i < n; i++) {
      const entryVa = t.address + BigInt(i * 8);
      if (failures.some((f) => entryVa >= f.va && entryVa < f.va + BigInt(f.len))) continue;
      const address = dv.getBigUint64(i * 8, true);
      const { verdict, module } = classifyAddress(classify, address);
      yield { table: t.name, index: i, address, symbol: symbolize(kernel.symbols, address, moduleSymbol), verdict, module };
    }
  }
}

/** One decoded 64-bit IDT gate (struct gate_struct / idt_bits). */
export interface IdtGate {
  readonly vector: number;
  readonly address: bigint;
  readonly segment: number;
  readonly ist: number;
  /** Gate type: 14 interrupt gate, 15 trap gate. */
  readonly type: number;
  readonly dpl: number;
  readonly present: boolean;
}

/** Size of one 64-bit gate descriptor. */
export const GATE_SIZE = 16;

/**
 * Decodes a 16-byte x86-64 gate descriptor: offset_low u16, segment u16,
 * bits u16 (ist:3, zero:5, type:5, dpl:2, p:1), offset_middle u16,
 * offset_high u32, reserved u32.
 */
export function decodeGate(b: Uint8Array, at: number, vector: number): IdtGate {
  const dv = new DataView(b.buffer, b.byteOffset + at, GATE_SIZE);
  const low = dv.getUint16(0, true);
  const segment = dv.getUint16(2, true);
  const bits = dv.getUint16(4, true);
  const mid = dv.getUint16(6, true);
  const high = dv.getUint32(8, true);
  const address = (BigInt(high) << 32n) | (BigInt(mid) << 16n) | BigInt(low);
  return { vector, address, segment, ist: bits & 7, type: (bits >> 8) & 0x1f, dpl: (bits >> 13) & 3, present: (bits & 0x8000) !== 0 };
}

export interface IdtEntry extends IdtGate {
  readonly symbol: string | undefined;
  readonly verdict: EntryVerdict | 'not-present';
  readonly module: string | undefined;
}

/** The 256 gates of `idt_table`, classified (absent gates are reported as not present). */
export function* checkIdt(
  kernel: Kernel,
  classify: TextClassifier,
  anomalies: AnomalySink,
  moduleSymbol?: (va: bigint) => string | undefined,
): Generator<IdtEntry> {
  const base = kernel.symbol('idt_table');
  const bytes = new Uint8Array(256 * GATE_SIZE);
  const failures = kernel.space.readv([{ va: base, len: bytes.length, dst: bytes }]);
  for (const f of failures) anomalies.add({ kind: 'fault', where: 'idt_table', address: f.va, detail: f.reason });
  for (let v = 0; v < 256; v++) {
    const gva = base + BigInt(v * GATE_SIZE);
    if (failures.some((f) => gva >= f.va && gva < f.va + BigInt(f.len))) continue;
    const g = decodeGate(bytes, v * GATE_SIZE, v);
    if (!g.present) {
      yield { ...g, symbol: undefined, verdict: 'not-present', module: undefined };
      continue;
    }
    const { verdict, module } = classifyAddress(classify, g.address);
    yield { ...g, symbol: symbolize(kernel.symbols, g.address, moduleSymbol), verdict, module };
  }
}

/**
 * The classifier and module-symbol resolver the checkers need: core text
 * bounds plus every module any view knows (list, sysfs, carving), so an
 * address inside an unlinked module is still attributed to it.
 */
export function kernelTextClassifier(kernel: Kernel, anomalies: AnomalySink): { classify: TextClassifier; moduleSymbol: (va: bigint) => string | undefined } {
  // The list and sysfs views are cheap; carving runs only for an address neither explains.
  const mods = crossViewModules(kernel, anomalies, { carve: false }).flatMap((v) => (v.info ? [v.info] : []));
  const area = moduleArea(kernel);
  let carved = false;
  const owner = (va: bigint) => {
    let m = moduleOwning(mods, va);
    if (!m && !carved && va >= area.start && va < area.end) {
      carved = true;
      for (const c of carveModules(kernel, anomalies)) if (!mods.some((x) => x.address === c.address)) mods.push(c);
      m = moduleOwning(mods, va);
    }
    return m;
  };
  const t = coreText(kernel.symbols);
  const classify: TextClassifier = {
    textStart: t.start,
    textEnd: t.end,
    ...(t.initStart !== undefined && t.initEnd !== undefined ? { initStart: t.initStart, initEnd: t.initEnd } : {}),
    moduleOf: (va) => owner(va)?.name,
  };
  return { classify, moduleSymbol: moduleSymbolResolver(kernel, mods, anomalies) };
}
