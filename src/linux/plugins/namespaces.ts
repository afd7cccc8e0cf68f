/**
 * namespaces: the namespaces of each process (inode numbers as in
 * /proc/<pid>/ns/*) and its cgroup v2 path: which container a process is
 * in. `container` is set when any namespace differs from pid 1's.
 */
import { definePlugin, isAbsent, type Absent } from '../plugin.js';
import { NAMESPACE_KINDS, taskCgroupPath, taskNamespaces, type NamespaceKind } from '../namespaces.js';
import { PID_OPTION, pidFilter, snapshotProcesses } from '../tasks.js';
import { taskKey, taskStartTimeNs } from '../identity.js';

/** Row key of a namespace kind: 'pid' → 'pidNs', 'pid_for_children' → 'pidForChildrenNs'. */
export function nsKey(kind: NamespaceKind): `${string}Ns` {
  return `${kind.replace(/_(\w)/g, (_m, c: string) => c.toUpperCase())}Ns`;
}

export interface NamespacesRow {
  offset: bigint;
  /** task->start_boottime: with offset, the task's identity across passes (not a column). */
  startTime: bigint;
  pid: number;
  comm: string;
  /** Inode number per kind, keyed by nsKey(kind) (e.g. netNs). */
  [ns: `${string}Ns`]: number | Absent;
  cgroupPath: string | Absent;
  /** Namespace kinds that differ from pid 1's. */
  differs: string[];
  container: boolean;
}

export default definePlugin<NamespacesRow>()({
  name: 'namespaces',
  aliases: ['linux.namespaces'],
  version: '1.0.0',
  summary: 'Namespaces (pid, mnt, net, user, uts, ipc, cgroup, time inode numbers) and cgroup path per process',
  requires: { symbols: ['init_task'], fields: [['task_struct', 'nsproxy'], ['nsproxy', 'net_ns'], ['task_struct', 'cgroups']] },
  options: PID_OPTION,
  columns: [
    { key: 'pid', kind: 'int' },
    { key: 'comm', kind: 'str' },
    ...NAMESPACE_KINDS.map((kind) => ({ key: nsKey(kind), title: kind, kind: 'int' as const })),
    { key: 'cgroupPath', title: 'cgroup', kind: 'str' },
    { key: 'container', kind: 'bool' },
  ],
  key: (r) => taskKey(r.pid, r.offset, r.startTime),
  *run(k, { options, anomalies }) {
    const pids = pidFilter(options.pid);
    const { leaders } = snapshotProcesses(k, anomalies);
    let reference: Record<NamespaceKind, number | Absent> | undefined;
    for (const t of leaders) {
      const pid = t.s32('pid');
      const ns = taskNamespaces(k, t, anomalies);
      if (pid === 1) reference = ns;
      if (pids && !pids.has(pid)) continue;
      const differs = reference
        ? NAMESPACE_KINDS.filter((kind) => {
            const a = ns[kind];
            const b = reference![kind];
            return !isAbsent(a) && !isAbsent(b) && a !== b;
          })
        : [];
      const row: NamespacesRow = { offset: t.address, startTime: taskStartTimeNs(t), pid, comm: t.str('comm'), cgroupPath: taskCgroupPath(k, t, anomalies), differs, container: differs.length > 0 };
      for (const kind of NAMESPACE_KINDS) row[nsKey(kind)] = ns[kind];
      yield row;
    }
  },
});
