/**
 * Row keys that are real identities across passes (the monitor diffs rows
 * by key). A pid alone is not one: pids are reused, and so are task_struct
 * slots of the slab; a task's address together with its start time
 * (task->start_boottime, fixed at fork) names one task for its whole life.
 */
export { taskStartTimeNs } from './tasks.js';

/** `pid:task-address:start-ns` — a new process reusing the pid (or the task_struct slot) gets another key. */
export function taskKey(pid: number, task: bigint, startTimeNs: bigint): string {
  return `${pid}:${task.toString(16)}:${startTimeNs}`;
}
