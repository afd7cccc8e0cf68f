/**
 * The pid allocator's view of tasks: pid_namespace.idr maps each pid number
 * to a `struct pid`, whose tasks[PIDTYPE_PID] chain holds the task using it
 * (task_struct.pid_links[PIDTYPE_PID]). A task unlinked from the task list
 * but alive keeps its pid here: psxview's cross-check.
 *
 * @example
 * for (const { nr, task } of pidIdrTasks(kernel, anomalies)) …   // init_pid_ns
 */
import { globalRef } from '../profile/globals.js';
import type { AnomalySink } from './anomaly.js';
import type { Kernel } from './kernel.js';
import { idrForEach } from './walk/idr.js';
import { hlistForEach } from './walk/list.js';

export interface PidTask {
  /** The pid number in the walked namespace. */
  readonly nr: number;
  /** `struct pid *` */
  readonly pid: bigint;
  /** `struct task_struct *` using it as its PIDTYPE_PID. */
  readonly task: bigint;
}

/**
 * Every (pid number, task) of a pid namespace, in pid order.
 * @param pidNs `struct pid_namespace *` (default &init_pid_ns)
 */
export function* pidIdrTasks(k: Kernel, anomalies: AnomalySink, pidNs?: bigint): Generator<PidTask> {
  const ns = pidNs ?? globalRef(k.typed, k.symbols, 'init_pid_ns').address;
  const idr = k.typed.obj('pid_namespace', ns).addrOf('idr');
  const db = k.types;
  const pidtypePid = Number(db.enumerator('pid_type', 'PIDTYPE_PID') ?? 0n);
  const tasksOff = BigInt(db.offsetOf('pid', `tasks[${pidtypePid}]`));
  const linkOff = BigInt(db.offsetOf('task_struct', `pid_links[${pidtypePid}]`));
  for (const { id, entry } of idrForEach(k.typed, idr, { anomalies, where: 'pid_namespace.idr' })) {
    for (const node of hlistForEach(k.typed, entry + tasksOff, { anomalies, where: 'pid.tasks', limit: 16 })) {
      yield { nr: Number(id), pid: entry, task: node - linkOff };
    }
  }
}
