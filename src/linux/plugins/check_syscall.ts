/**
 * check_syscall: every sys_call_table (and ia32/x32 table) entry resolved to
 * a symbol; an entry outside core kernel text is flagged with the module that
 * owns the address (found through the module list, sysfs or carving).
 * Slots that hold the "not implemented" stub (sys_ni_syscall, in core text) are left out unless --all.
 */
import { absent, definePlugin, type Absent } from '../plugin.js';
import { checkSyscallTables, isSuspicious, kernelTextClassifier } from '../integrity.js';

export interface CheckSyscallRow {
  table: string;
  index: number;
  address: bigint;
  symbol: string | Absent;
  verdict: string;
  module: string | Absent;
  suspicious: boolean;
}

/** The stub unused slots point at: sys_ni_syscall and its per-ABI wrappers (with a CFI jump-table suffix). */
const NOT_IMPLEMENTED = /^(__(x64|ia32|x32)_)?sys_ni_syscall(\.cfi_jt)?$/;

export default definePlugin<CheckSyscallRow>()({
  name: 'check_syscall',
  aliases: ['linux.check_syscall', 'linux.check_syscall.Check_syscall'],
  version: '1.0.0',
  summary: 'System call table entries resolved to symbols; entries outside kernel text flagged',
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
  ],
  key: (r) => `${r.table}:${r.index}`,
  *run(k, { options, anomalies }) {
    const all = options['all'] === true;
    const { classify, moduleSymbol } = kernelTextClassifier(k, anomalies);
    for (const e of checkSyscallTables(k, classify, anomalies, moduleSymbol)) {
      if (!all && e.verdict === 'core-text' && e.symbol !== undefined && NOT_IMPLEMENTED.test(e.symbol)) continue;
      yield {
        table: e.table,
        index: e.index,
        address: e.address,
        symbol: e.symbol ?? absent('not-available', 'no symbol at this address'),
        verdict: e.verdict,
        module: e.module ?? absent('not-applicable'),
        suspicious: isSuspicious(e.verdict),
      };
    }
  },
});
