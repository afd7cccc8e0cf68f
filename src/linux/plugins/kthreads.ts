/**
 * kthreads: kernel threads (PF_KTHREAD) with the function each runs
 * (struct kthread.threadfn, resolved to a kernel symbol). A thread function
 * outside the kernel's symbols (e.g. in a hidden module) has no name.
 */
import { FaultError } from '../../core/errors.js';
import type { ObjValue } from '../../profile/typed.js';
import { absent, definePlugin, type Absent } from '../plugin.js';
import type { Kernel } from '../kernel.js';
import { PID_OPTION, pidFilter, snapshotProcesses, taskInfo } from '../tasks.js';
import { isKernelPointer } from '../walk/common.js';
import { taskKey } from '../identity.js';

export interface KthreadsRow {
  offset: bigint;
  /** task->start_boottime: with offset, the task's identity across passes (not a column). */
  startTime: bigint;
  pid: number;
  ppid: number;
  comm: string;
  /** The full name (kthread->full_name) when comm was truncated, else comm. */
  name: string;
  state: string;
  threadfn: bigint | Absent;
  symbol: string | Absent;
}

/**
 * The struct kthread of a kernel thread: task->worker_private since Linux
 * kernel commit e32cf5dfbe22 ("kthread: Generalize pf_io_worker so it can
 * point to struct kthread") (in v5.17), task->set_child_tid before. Its
 * full_name holds names longer than comm since the commit "kthread:
 * dynamically allocate memory to store kthread's full name" (absent from
 * the lab's 5.10 profile, present in 6.1): read when the profile has it.
 */
function kthreadOf(k: Kernel, t: ObjValue): { fn: bigint; fullName: string | undefined } | undefined {
  const kt = t.has('worker_private') ? t.ptr('worker_private') : t.ptr('set_child_tid');
  if (!isKernelPointer(kt) || !k.types.hasMember('kthread', 'threadfn')) return undefined;
  try {
    const v = k.typed.obj('kthread', kt).read();
    const fullName = v.has('full_name') ? (v.cstr('full_name', 64) ?? undefined) : undefined;
    return { fn: v.ptr('threadfn'), fullName };
  } catch (e) {
    if (e instanceof FaultError) return undefined;
    throw e;
  }
}

export default definePlugin<KthreadsRow>()({
  name: 'kthreads',
  aliases: ['linux.kthreads', 'linux.kthreads.Kthreads'],
  version: '1.0.0',
  summary: 'Kernel threads and the function each runs',
  requires: { symbols: ['init_task'], fields: [['task_struct', 'flags']] },
  options: PID_OPTION,
  columns: [
    { key: 'offset', kind: 'hex' },
    { key: 'pid', kind: 'int' },
    { key: 'ppid', kind: 'int' },
    { key: 'state', kind: 'str' },
    { key: 'name', kind: 'str' },
    { key: 'threadfn', kind: 'hex' },
    { key: 'symbol', kind: 'str' },
  ],
  key: (r) => taskKey(r.pid, r.offset, r.startTime),
  *run(k, { options, anomalies }) {
    const pids = pidFilter(options.pid);
    const { leaders, tgidOf } = snapshotProcesses(k, anomalies);
    for (const t of leaders) {
      const info = taskInfo(k, t, anomalies, tgidOf);
      if (!info.kthread || (pids && !pids.has(info.pid))) continue;
      const kt = kthreadOf(k, t);
      const fn = kt?.fn;
      const sym = fn === undefined || fn === 0n ? undefined : k.symbols.nameOf(fn, 1n << 20n);
      const none = fn === 0n ? absent('not-applicable', 'no thread function (kthreadd)') : absent('not-available', 'outside the kernel symbols');
      yield {
        offset: info.task,
        startTime: info.startTimeNs,
        pid: info.pid,
        ppid: info.ppid,
        comm: info.comm,
        name: kt?.fullName ?? info.comm,
        state: info.state,
        threadfn: fn === undefined ? absent('not-available') : fn === 0n ? none : fn,
        symbol: sym ? (sym.offset ? `${sym.name}+0x${sym.offset.toString(16)}` : sym.name) : none,
      };
    }
  },
});
