/**
 * kthreads: kernel threads (PF_KTHREAD) with the function each runs
 * (struct kthread.threadfn, resolved to a kernel symbol). A thread function
 * outside the kernel's symbols (e.g. in a hidden module) has no name.
 */
import { FaultError } from '../../core/errors.js';
import type { ObjValue } from '../../profile/typed.js';
import { absent, definePlugin, type Absent } from '../plugin.js';
import type { Kernel } from '../kernel.js';
import { pidFilter, snapshotProcesses, taskInfo } from '../tasks.js';
import { isKernelPointer } from '../walk/common.js';

export interface KthreadsRow {
  offset: bigint;
  pid: number;
  ppid: number;
  comm: string;
  state: string;
  threadfn: bigint | Absent;
  symbol: string | Absent;
}

/**
 * The struct kthread of a kernel thread: task->worker_private since Linux
 * kernel commit e32cf5dfbe22 ("kthread: Generalize pf_io_worker so it can
 * point to struct kthread") (in v5.17), task->set_child_tid before.
 */
function kthreadFn(k: Kernel, t: ObjValue): bigint | undefined {
  const kt = t.has('worker_private') ? t.ptr('worker_private') : t.ptr('set_child_tid');
  if (!isKernelPointer(kt) || !k.types.hasMember('kthread', 'threadfn')) return undefined;
  try {
    return k.typed.obj('kthread', kt).field('threadfn').ptr();
  } catch (e) {
    if (e instanceof FaultError) return undefined;
    throw e;
  }
}

export default definePlugin<KthreadsRow>({
  name: 'kthreads',
  aliases: ['linux.kthreads', 'linux.kthreads.Kthreads'],
  version: '1.0.0',
  summary: 'Kernel threads and the function each runs',
  requires: { symbols: ['init_task'], fields: [['task_struct', 'flags']] },
  options: { pid: { type: 'string', multiple: true } },
  columns: [
    { key: 'offset', kind: 'hex' },
    { key: 'pid', kind: 'int' },
    { key: 'ppid', kind: 'int' },
    { key: 'state', kind: 'str' },
    { key: 'comm', kind: 'str' },
    { key: 'threadfn', kind: 'hex' },
    { key: 'symbol', kind: 'str' },
  ],
  key: (r) => `${r.pid}:${r.offset.toString(16)}`,
  *run(k, { options, anomalies }) {
    const pids = pidFilter(options.pid);
    const { leaders, tgidOf } = snapshotProcesses(k, anomalies);
    for (const t of leaders) {
      const info = taskInfo(k, t, anomalies, tgidOf);
      if (!info.kthread || (pids && !pids.has(info.pid))) continue;
      const fn = kthreadFn(k, t);
      const sym = fn === undefined || fn === 0n ? undefined : k.symbols.nameOf(fn, 1n << 20n);
      yield {
        offset: info.task,
        pid: info.pid,
        ppid: info.ppid,
        comm: info.comm,
        state: info.state,
        threadfn: fn === undefined ? absent('not-available') : fn,
        symbol: sym ? (sym.offset ? `${sym.name}+0x${sym.offset.toString(16)}` : sym.name) : absent('not-available', 'outside the kernel symbols'),
      };
    }
  },
});
