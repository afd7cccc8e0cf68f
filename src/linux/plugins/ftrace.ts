/**
 * ftrace: the ftrace_ops registered on ftrace_ops_list, each callback
 * resolved to a symbol and to core kernel text or a module. Kprobes, the
 * function tracer and BPF trampolines register callbacks in kernel text; a
 * callback in a module (a rootkit's favourite way to hook a syscall without
 * touching the table) or outside both is flagged.
 */
import { absent, definePlugin, type Absent } from '../plugin.js';
import { ftraceFlagNames, ftraceOpsList } from '../ftrace.js';
import { classifyAddress, kernelTextClassifier, symbolize } from '../integrity.js';

export interface FtraceRow {
  index: number;
  ops: bigint;
  ops_symbol: string | Absent;
  func: bigint;
  symbol: string | Absent;
  module: string | Absent;
  verdict: string;
  flags: string[];
  trampoline: bigint;
  suspicious: boolean;
}

export default definePlugin<FtraceRow>()({
  name: 'ftrace',
  aliases: ['linux.tracing.ftrace', 'linux.tracing.ftrace.CheckFtrace'],
  version: '1.0.0',
  summary: 'Registered ftrace_ops (ftrace_ops_list) with their callbacks resolved; callbacks in modules or outside kernel text flagged',
  requires: {
    symbols: ['ftrace_ops_list', 'ftrace_list_end', '_stext', '_etext'],
    fields: [
      ['ftrace_ops', 'func'],
      ['ftrace_ops', 'next'],
      ['ftrace_ops', 'flags'],
    ],
  },
  columns: [
    { key: 'index', kind: 'int' },
    { key: 'ops', kind: 'hex' },
    { key: 'ops_symbol', kind: 'str' },
    { key: 'func', kind: 'hex' },
    { key: 'symbol', kind: 'str' },
    { key: 'module', kind: 'str' },
    { key: 'verdict', kind: 'str' },
    { key: 'flags', kind: 'str' },
    { key: 'trampoline', kind: 'hex' },
    { key: 'suspicious', kind: 'bool' },
  ],
  key: (r) => r.ops.toString(16),
  *run(k, { anomalies }) {
    const { classify, moduleSymbol } = kernelTextClassifier(k, anomalies);
    for (const o of ftraceOpsList(k, anomalies)) {
      const { verdict, module } = classifyAddress(classify, o.func);
      // The ops struct itself: a static in the kernel or a module (kprobe_ftrace_ops), or allocated (no symbol).
      const at = k.symbols.nameOf(o.address, 1n << 16n);
      const opsSymbol = at && at.offset === 0n ? at.name : moduleSymbol(o.address);
      yield {
        index: o.index,
        ops: o.address,
        ops_symbol: opsSymbol ?? absent('not-available', 'allocated, or no symbol'),
        func: o.func,
        symbol: symbolize(k.symbols, o.func, moduleSymbol) ?? absent('not-available'),
        module: module ?? absent('not-applicable'),
        verdict,
        flags: ftraceFlagNames(o.flags),
        trampoline: o.trampoline,
        suspicious: verdict !== 'core-text',
      };
    }
  },
});
