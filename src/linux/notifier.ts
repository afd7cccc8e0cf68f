/**
 * Notifier chains (include/linux/notifier.h): a head (`struct
 * atomic_notifier_head`, `blocking_…`, `raw_…`: each has a `head` pointer)
 * and a singly linked list of `struct notifier_block` { notifier_call,
 * next, priority }, kept in priority order. Walked bounded and
 * cycle-checked; a chain out of priority order is recorded (the kernel's
 * notifier_chain_register never builds one).
 */
import { FaultError } from '../core/errors.js';
import type { AnomalySink } from './anomaly.js';
import type { Kernel } from './kernel.js';
import { hex, isKernelPointer } from './walk/common.js';

/** Most blocks walked on one chain (real chains hold a handful). */
export const MAX_NOTIFIERS = 4096;

export interface NotifierBlock {
  readonly address: bigint;
  readonly call: bigint;
  readonly priority: number;
}

/**
 * The blocks of the chain whose head is the struct `headType` at `headVa`.
 * @param where names the chain in anomalies, e.g. 'keyboard_notifier_list'
 */
export function* notifierChain(kernel: Kernel, headVa: bigint, headType: string, anomalies: AnomalySink, where: string): Generator<NotifierBlock> {
  let next: bigint;
  try {
    next = kernel.typed.obj(headType, headVa).field('head').ptr();
  } catch (e) {
    if (!(e instanceof FaultError)) throw e;
    anomalies.add({ kind: 'fault', where, address: headVa, detail: `chain head: ${e.message}` });
    return;
  }
  const seen = new Set<bigint>();
  let prevPriority = Infinity;
  let link = headVa;
  while (next !== 0n) {
    if (!isKernelPointer(next)) {
      anomalies.add({ kind: 'bad-pointer', where, address: next, detail: `next of ${hex(link)} is not a kernel pointer` });
      return;
    }
    if (seen.has(next)) {
      anomalies.add({ kind: 'cycle', where, address: next, detail: `next of ${hex(link)} leads back to an earlier block` });
      return;
    }
    if (seen.size >= MAX_NOTIFIERS) {
      anomalies.add({ kind: 'limit', where, address: next, detail: `stopped after ${MAX_NOTIFIERS} blocks` });
      return;
    }
    seen.add(next);
    let b;
    try {
      b = kernel.typed.obj('notifier_block', next).read({ copy: true });
    } catch (e) {
      if (!(e instanceof FaultError)) throw e;
      anomalies.add({ kind: 'fault', where, address: next, detail: `notifier_block: ${e.message}` });
      return;
    }
    const priority = b.s32('priority');
    if (priority > prevPriority) anomalies.add({ kind: 'invalid', where, address: next, detail: `priority ${priority} after ${prevPriority}: the chain is not in priority order` });
    prevPriority = priority;
    yield { address: next, call: b.ptr('notifier_call'), priority };
    link = next;
    next = b.ptr('next');
  }
}
