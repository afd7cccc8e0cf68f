/**
 * The address space of one process by pid, for `read --pid` and
 * `translate --pid`: its own page tables (task->mm->pgd). A pid that no task
 * has, or a kernel thread (no mm), is a usage error that names the pid.
 */
import { UsageError } from '../core/errors.js';
import type { AddressSpace } from '../arch/address-space.js';
import { AnomalySink } from './anomaly.js';
import type { Kernel } from './kernel.js';
import { forEachTask, readObject } from './tasks.js';
import { processSpace } from './user-memory.js';

export interface ProcessAddressSpace {
  readonly pid: number;
  readonly comm: string;
  /** task->mm->pgd (kernel VA) and the physical table it names. */
  readonly pgd: bigint;
  readonly space: AddressSpace;
}

/** Parses a single `--pid` value. */
export function parseOnePid(text: string): number {
  const t = text.trim();
  if (!/^\d+$/.test(t) || !Number.isSafeInteger(Number(t))) throw new UsageError(`--pid ${JSON.stringify(text)}: expected one process id`);
  return Number(t);
}

/** The task with this pid (a thread id works too: threads share their leader's mm). */
export function processAddressSpace(k: Kernel, pid: number): ProcessAddressSpace {
  const anomalies = new AnomalySink();
  for (const task of forEachTask(k, anomalies)) {
    if (task.s32('pid') !== pid) continue;
    const comm = task.str('comm');
    const mmVa = task.ptr('mm');
    if (mmVa === 0n) {
      throw new UsageError(`pid ${pid} (${comm}) is a kernel thread: it has no user address space`, { hint: 'give the pid of a user process (see pslist), or omit --pid to read kernel memory' });
    }
    const mm = readObject(k, 'mm_struct', mmVa, anomalies, 'task_struct.mm');
    const space = mm ? processSpace(k, mm, anomalies) : undefined;
    if (!mm || !space) {
      const first = anomalies.items[0];
      throw new UsageError(`pid ${pid} (${comm}): its mm_struct or page tables are unreadable${first ? ` (${first.detail})` : ''}`);
    }
    return { pid, comm, pgd: mm.ptr('pgd'), space };
  }
  throw new UsageError(`pid ${pid}: no such process in the guest's task list`, { hint: 'list the processes with `vmsight pslist <source>`' });
}
