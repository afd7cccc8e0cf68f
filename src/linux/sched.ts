/**
 * The scheduler's view of tasks: each online CPU's run queue (per-CPU
 * `runqueues`): the running task (rq->curr) and the CFS timeline
 * (rq->cfs.tasks_timeline, an rb tree of sched_entity.run_node), descending
 * into group entities' own queues (se->my_q). Another view for psxview.
 *
 * @example
 * const onCpu = runQueueTasks(kernel, anomalies);   // Set of task_struct addresses
 */
import { FaultError } from '../core/errors.js';
import type { AnomalySink } from './anomaly.js';
import type { Kernel } from './kernel.js';
import { isKernelPointer } from './walk/common.js';
import { rbtreeInorder } from './walk/rbtree.js';

/** Bound on CPUs looked at and on nested task-group queues. */
export const MAX_CPUS = 8192;
const MAX_GROUP_DEPTH = 16;

/** Online CPU numbers from __cpu_online_mask (bounded by nr_cpu_ids). */
export function onlineCpus(k: Kernel): number[] {
  const n = k.hasSymbol('nr_cpu_ids') ? Math.min(k.space.readU32(k.symbol('nr_cpu_ids')), MAX_CPUS) : 1;
  const words = Math.ceil(n / 64);
  const bytes = k.space.read(k.symbol('__cpu_online_mask'), words * 8);
  const out: number[] = [];
  for (let cpu = 0; cpu < n; cpu++) if (bytes[cpu >> 3]! & (1 << (cpu & 7))) out.push(cpu);
  return out;
}

/**
 * Address of a per-CPU variable's instance on `cpu`: per_cpu_ptr() =
 * offset in the per-CPU section + __per_cpu_offset[cpu]. x86-64's per-CPU
 * section is zero-based (__per_cpu_start = 0); the offset is taken relative
 * to __per_cpu_start so a symbol table that rebased the section still works.
 */
export function perCpu(k: Kernel, symbol: string, cpu: number): bigint {
  const off = k.space.readU64(k.symbol('__per_cpu_offset') + BigInt(cpu * 8));
  const base = k.hasSymbol('__per_cpu_start') ? k.symbol('__per_cpu_start') : 0n;
  return BigInt.asUintN(64, k.symbol(symbol) - base + off);
}

/** Tasks on any run queue (running or queued in CFS), by task_struct address. */
export function runQueueTasks(k: Kernel, anomalies: AnomalySink): Set<bigint> {
  const out = new Set<bigint>();
  const db = k.types;
  const seOff = BigInt(db.offsetOf('task_struct', 'se'));
  const runNodeOff = BigInt(db.offsetOf('sched_entity', 'run_node'));
  const hasGroups = db.hasMember('sched_entity', 'my_q');
  const timelineOff = BigInt(db.offsetOf('cfs_rq', 'tasks_timeline'));
  const walkCfs = (cfsRq: bigint, depth: number): void => {
    for (const node of rbtreeInorder(k.typed, cfsRq + timelineOff, { anomalies, where: 'cfs_rq.tasks_timeline', limit: 65536 })) {
      const se = node - runNodeOff;
      let myQ = 0n;
      if (hasGroups) {
        try {
          myQ = k.typed.obj('sched_entity', se).field('my_q').ptr();
        } catch (e) {
          if (!(e instanceof FaultError)) throw e;
          anomalies.add({ kind: 'fault', where: 'sched_entity.my_q', address: se, detail: e.message });
          continue;
        }
      }
      if (myQ === 0n) out.add(se - seOff);
      else if (depth < MAX_GROUP_DEPTH && isKernelPointer(myQ)) walkCfs(myQ, depth + 1);
      else anomalies.add({ kind: 'invalid', where: 'sched_entity.my_q', address: se, detail: 'task group nesting too deep or bad pointer' });
    }
  };
  for (const cpu of onlineCpus(k)) {
    let rq: bigint;
    try {
      rq = perCpu(k, 'runqueues', cpu);
      const curr = k.typed.obj('rq', rq).field('curr').ptr();
      if (isKernelPointer(curr)) out.add(curr);
    } catch (e) {
      if (!(e instanceof FaultError)) throw e;
      anomalies.add({ kind: 'fault', where: 'runqueues', detail: `cpu ${cpu}: ${e.message}` });
      continue;
    }
    walkCfs(k.typed.obj('rq', rq).addrOf('cfs'), 0);
  }
  return out;
}
