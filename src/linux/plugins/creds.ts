/**
 * creds: credential structures per process, and those shared between
 * processes that are not threads of one another. Each fork gets its own
 * `struct cred` (prepare_creds()); two unrelated processes pointing at one
 * cred is the mark of a privilege-escalation trick (a rootkit pointing a
 * task's cred at init's or another root process's).
 */
import { absent, definePlugin, type Absent } from '../plugin.js';
import { PID_OPTION, pidFilter, snapshotProcesses, taskInfo } from '../tasks.js';
import { taskKey } from '../identity.js';

export interface CredsRow {
  offset: bigint;
  /** task->start_boottime: with offset, the task's identity across passes (not a column). */
  startTime: bigint;
  pid: number;
  comm: string;
  cred: bigint;
  uid: number | Absent;
  euid: number | Absent;
  gid: number | Absent;
  egid: number | Absent;
  /** Pids of other processes using the same struct cred. */
  sharedWith: number[];
  shared: boolean;
}

export default definePlugin<CredsRow>()({
  name: 'creds',
  aliases: ['linux.check_creds', 'linux.check_creds.Check_creds'],
  version: '1.0.0',
  summary: 'Credentials per process; flags a struct cred shared between unrelated processes',
  requires: { symbols: ['init_task'], fields: [['task_struct', 'cred'], ['cred', 'uid'], ['cred', 'euid']] },
  options: PID_OPTION,
  columns: [
    { key: 'offset', kind: 'hex' },
    { key: 'pid', kind: 'int' },
    { key: 'comm', kind: 'str' },
    { key: 'cred', kind: 'hex' },
    { key: 'uid', kind: 'int' },
    { key: 'euid', kind: 'int' },
    { key: 'gid', kind: 'int' },
    { key: 'egid', kind: 'int' },
    { key: 'shared', kind: 'bool' },
    { key: 'sharedWith', title: 'shared_with', kind: 'int' },
  ],
  key: (r) => taskKey(r.pid, r.offset, r.startTime),
  *run(k, { options, anomalies }) {
    const pids = pidFilter(options.pid);
    const { leaders, tgidOf } = snapshotProcesses(k, anomalies);
    const infos = leaders.map((t) => taskInfo(k, t, anomalies, tgidOf));
    const byCred = new Map<bigint, number[]>();
    for (const i of infos) {
      const credVa = i.creds?.address;
      if (credVa === undefined) continue;
      const list = byCred.get(credVa) ?? [];
      list.push(i.pid);
      byCred.set(credVa, list);
    }
    const none = absent('unreadable');
    for (const i of infos) {
      if (pids && !pids.has(i.pid)) continue;
      const c = i.creds;
      const sharedWith = c ? (byCred.get(c.address) ?? []).filter((p) => p !== i.pid) : [];
      yield {
        offset: i.task,
        startTime: i.startTimeNs,
        pid: i.pid,
        comm: i.comm,
        cred: c?.address ?? 0n,
        uid: c ? c.uid : none,
        euid: c ? c.euid : none,
        gid: c ? c.gid : none,
        egid: c ? c.egid : none,
        sharedWith,
        shared: sharedWith.length > 0,
      };
    }
  },
});
