/**
 * check_syscall: every sys_call_table (and ia32/x32 table) entry resolved to a symbol, and, on kernels that
 * dispatch through a switch (x64_sys_call and friends: 6.9+, and the 6.1/5.10 stable backports), every
 * handler that switch branches to. An entry or target outside core kernel text is flagged with the module
 * that owns the address (found through the module list, sysfs or carving).
 *
 * Each row says which mechanism dispatches its ABI (`dispatcher`) and whether the kernel calls through it
 * (`dispatched`): on a switch kernel a hooked table entry is still flagged, with a note that it is never
 * called. Slots and targets that are the "not implemented" stub (sys_ni_syscall, in core text) are left out
 * unless --all.
 */
import { absent, definePlugin, type Absent } from '../plugin.js';
import type { AnomalySink } from '../anomaly.js';
import { checkSyscallTables, isSuspicious, kernelTextClassifier, type TextClassifier } from '../integrity.js';
import type { Kernel } from '../kernel.js';
import { abiOfTable, dispatchTargets, syscallDispatch, type SyscallAbi } from '../syscall-dispatch.js';

export interface CheckSyscallRow {
  /** The table, or the dispatch function whose branch targets these rows are. */
  table: string;
  /** Table slot (the system call number), or the target's order in the dispatch function. */
  index: number;
  address: bigint;
  symbol: string | Absent;
  verdict: string;
  module: string | Absent;
  suspicious: boolean;
  abi: string;
  /** What dispatches this ABI on this kernel (a switch function or the table). */
  dispatcher: string;
  /** Whether system calls reach this entry (false: a table the switch made unused). */
  dispatched: boolean;
  /** What shows the dispatcher: the entry function's instruction that calls or loads it, or the symbols alone. */
  evidence: string;
  note: string | Absent;
}

/** The stub unused slots point at: sys_ni_syscall and its per-ABI wrappers (with a CFI jump-table suffix). */
const NOT_IMPLEMENTED = /^(__(x64|ia32|x32)_)?sys_ni_syscall(\.cfi_jt)?$/;

export default definePlugin<CheckSyscallRow>()({
  name: 'check_syscall',
  aliases: ['linux.check_syscall', 'linux.check_syscall.Check_syscall'],
  version: '1.1.0',
  summary: 'System call tables and the x64_sys_call switch: entries resolved to symbols, those outside kernel text flagged',
  requires: { symbols: ['sys_call_table', '_stext', '_etext'] },
  options: { all: { type: 'boolean', description: 'also the unused slots (sys_ni_syscall stubs)', byDefault: 'unused slots left out' } },
  columns: [
    { key: 'table', kind: 'str' },
    { key: 'index', kind: 'int' },
    { key: 'address', kind: 'hex' },
    { key: 'symbol', kind: 'str' },
    { key: 'verdict', kind: 'str' },
    { key: 'module', kind: 'str' },
    { key: 'suspicious', kind: 'bool' },
    { key: 'abi', kind: 'str' },
    { key: 'dispatcher', kind: 'str' },
    { key: 'dispatched', kind: 'bool' },
    { key: 'evidence', kind: 'str' },
    { key: 'note', kind: 'str' },
  ],
  key: (r) => `${r.table}:${r.index}`,
  *run(k, { options, anomalies }) {
    const { classify, moduleSymbol } = kernelTextClassifier(k, anomalies);
    yield* checkSyscallRows(k, classify, anomalies, { all: options['all'] === true, moduleSymbol });
  },
});

/** The rows of check_syscall for a given text classifier: table entries, then the switch dispatchers' targets. */
export function* checkSyscallRows(
  k: Kernel,
  classify: TextClassifier,
  anomalies: AnomalySink,
  { all = false, moduleSymbol }: { all?: boolean; moduleSymbol?: (va: bigint) => string | undefined } = {},
): Generator<CheckSyscallRow> {
  const unused = (verdict: string, symbol: string | undefined) => !all && verdict === 'core-text' && symbol !== undefined && NOT_IMPLEMENTED.test(symbol);
  const dispatchers = syscallDispatch(k);
  const dispatch = new Map(dispatchers.map((d) => [d.abi, d]));
  const evidence = (abi: string): string => {
    const d = dispatch.get(abi as SyscallAbi);
    if (!d) return 'no dispatcher found';
    if (d.basis === 'symbols') return `symbols only (${d.kind === 'switch' ? `${d.dispatcher} exists` : `no ${abi}_sys_call`})`;
    return `${d.entry} ${d.kind === 'switch' ? 'calls' : 'loads from'} ${d.dispatcher} at 0x${d.site!.toString(16)}`;
  };
  for (const e of checkSyscallTables(k, classify, anomalies, moduleSymbol)) {
    if (unused(e.verdict, e.symbol)) continue;
    const abi = abiOfTable(e.table) ?? 'x64';
    const dispatcher = dispatch.get(abi)?.dispatcher ?? e.table;
    const dispatched = dispatcher === e.table;
    const suspicious = isSuspicious(e.verdict);
    yield {
      table: e.table,
      index: e.index,
      address: e.address,
      symbol: e.symbol ?? absent('not-available', 'no symbol at this address'),
      verdict: e.verdict,
      module: e.module ?? absent('not-applicable'),
      suspicious,
      abi,
      dispatcher,
      dispatched,
      evidence: evidence(abi),
      note: suspicious && !dispatched ? `never called: ${dispatcher} dispatches ${abi} system calls, not this table` : absent('not-applicable'),
    };
  }
  for (const t of dispatchTargets(k, classify, anomalies, moduleSymbol, dispatchers)) {
    if (unused(t.verdict, t.symbol)) continue;
    const suspicious = isSuspicious(t.verdict);
    yield {
      table: t.dispatcher,
      index: t.index,
      address: t.address,
      symbol: t.symbol ?? absent('not-available', 'no symbol at this address'),
      verdict: t.verdict,
      module: t.module ?? absent('not-applicable'),
      suspicious,
      abi: t.abi,
      dispatcher: t.dispatcher,
      dispatched: true,
      evidence: evidence(t.abi),
      note: suspicious ? `${t.dispatcher} branches here from 0x${t.site.toString(16)} (${t.sites} site${t.sites === 1 ? '' : 's'}): a patched dispatcher` : absent('not-applicable'),
    };
  }
}
