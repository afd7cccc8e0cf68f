/**
 * Registered ftrace_ops (kernel/trace/ftrace.c): `ftrace_ops_list` is a
 * singly linked list through `ops->next`, ended by the sentinel
 * `&ftrace_list_end` (not NULL). Each ops has the callback ftrace calls at
 * the entry of every function it filters on; kprobes, livepatch, the
 * function tracer, BPF trampolines and rootkits all register one. The walk
 * is bounded and cycle-checked.
 */
import { FaultError, ShortReadError } from '../core/errors.js';
import type { AnomalySink } from './anomaly.js';
import type { Kernel } from './kernel.js';
import { isKernelPointer } from './walk/common.js';

/** Most ops walked (a busy tracing system has tens). */
export const MAX_FTRACE_OPS = 4096;

export interface FtraceOps {
  readonly address: bigint;
  readonly index: number;
  /** The callback (ftrace_ops.func). */
  readonly func: bigint;
  /** Its saved callback (what func was before ftrace wrapped it), 0 when none. */
  readonly savedFunc: bigint;
  readonly flags: bigint;
  readonly private: bigint;
  readonly trampoline: bigint;
}

/** FTRACE_OPS_FL_* names (include/linux/ftrace.h; the same bits from 5.10 to 6.12; later bits shown as bitN), lowest bit first. */
const FLAG_NAMES = [
  'ENABLED', 'DYNAMIC', 'SAVE_REGS', 'SAVE_REGS_IF_SUPPORTED', 'RECURSION', 'STUB', 'INITIALIZED', 'DELETED', 'ADDING', 'REMOVING',
  'MODIFYING', 'ALLOC_TRAMP', 'IPMODIFY', 'PID', 'RCU', 'TRACE_ARRAY', 'PERMANENT', 'DIRECT',
];

/** The names of an ops' flag bits (unknown bits as `bitN`). */
export function ftraceFlagNames(flags: bigint): string[] {
  const out: string[] = [];
  for (let i = 0; i < 64; i++) if ((flags >> BigInt(i)) & 1n) out.push(FLAG_NAMES[i] ?? `bit${i}`);
  return out;
}

/** Every ops on ftrace_ops_list, in list order (the order ftrace calls them). */
export function* ftraceOpsList(kernel: Kernel, anomalies: AnomalySink): Generator<FtraceOps> {
  const end = kernel.symbol('ftrace_list_end');
  let cur: bigint;
  try {
    cur = kernel.space.readU64(kernel.symbol('ftrace_ops_list'));
  } catch (e) {
    if (!(e instanceof FaultError)) throw e;
    anomalies.add({ kind: 'fault', where: 'ftrace_ops_list', address: kernel.symbol('ftrace_ops_list'), detail: e.message });
    return;
  }
  const seen = new Set<bigint>();
  for (let index = 0; cur !== end; index++) {
    if (cur === 0n) {
      // The kernel never leaves NULL on the list (it ends at ftrace_list_end): a cut list.
      anomalies.add({ kind: 'broken-link', where: 'ftrace_ops_list', detail: `NULL after ${index} ops instead of ftrace_list_end` });
      return;
    }
    if (!isKernelPointer(cur)) {
      anomalies.add({ kind: 'bad-pointer', where: 'ftrace_ops_list', address: cur, detail: `ops 0x${cur.toString(16)} is not a kernel pointer` });
      return;
    }
    if (seen.has(cur)) {
      anomalies.add({ kind: 'cycle', where: 'ftrace_ops_list', address: cur, detail: `ops reached twice after ${index} ops` });
      return;
    }
    if (index >= MAX_FTRACE_OPS) {
      anomalies.add({ kind: 'limit', where: 'ftrace_ops_list', address: cur, detail: `stopped after ${MAX_FTRACE_OPS} ops` });
      return;
    }
    seen.add(cur);
    let v;
    try {
      v = kernel.typed.obj('ftrace_ops', cur).read();
    } catch (e) {
      if (!(e instanceof FaultError) && !(e instanceof ShortReadError)) throw e;
      anomalies.add({ kind: 'fault', where: 'ftrace_ops_list', address: cur, detail: (e as Error).message });
      return;
    }
    yield {
      address: cur,
      index,
      func: v.ptr('func'),
      savedFunc: v.has('saved_func') ? v.ptr('saved_func') : 0n,
      flags: v.u64('flags'),
      private: v.ptr('private'),
      trampoline: v.has('trampoline') ? v.u64('trampoline') : 0n,
    };
    cur = v.ptr('next');
  }
}
