/**
 * capabilities: the capability sets of each process's credentials
 * (inheritable, permitted, effective, bounding, ambient), as
 * /proc/<pid>/status prints them, with the effective set decoded.
 */
import { absent, definePlugin, type Absent } from '../plugin.js';
import { capabilityHex, capabilityNames } from '../capabilities.js';
import { PID_OPTION, pidFilter, snapshotProcesses, taskInfo } from '../tasks.js';
import { taskKey } from '../identity.js';

export interface CapabilitiesRow {
  offset: bigint;
  /** task->start_boottime: with offset, the task's identity across passes (not a column). */
  startTime: bigint;
  pid: number;
  comm: string;
  capInh: string | Absent;
  capPrm: string | Absent;
  capEff: string | Absent;
  capBnd: string | Absent;
  capAmb: string | Absent;
  /** Effective capabilities by name ('full' when every known one is set). */
  effective: string[] | Absent;
}

const FULL = (1n << 41n) - 1n;

export default definePlugin<CapabilitiesRow>()({
  name: 'capabilities',
  aliases: ['linux.capabilities', 'linux.capabilities.Capabilities'],
  version: '1.0.0',
  summary: 'Capability sets of each process (inheritable, permitted, effective, bounding, ambient)',
  requires: { symbols: ['init_task'], fields: [['task_struct', 'cred'], ['cred', 'cap_effective'], ['cred', 'cap_permitted'], ['cred', 'cap_bset']] },
  options: PID_OPTION,
  columns: [
    { key: 'pid', kind: 'int' },
    { key: 'comm', kind: 'str' },
    { key: 'capInh', title: 'cap_inh', kind: 'str' },
    { key: 'capPrm', title: 'cap_prm', kind: 'str' },
    { key: 'capEff', title: 'cap_eff', kind: 'str' },
    { key: 'capBnd', title: 'cap_bnd', kind: 'str' },
    { key: 'capAmb', title: 'cap_amb', kind: 'str' },
    { key: 'effective', kind: 'str' },
  ],
  key: (r) => taskKey(r.pid, r.offset, r.startTime),
  *run(k, { options, anomalies }) {
    const pids = pidFilter(options.pid);
    const { leaders, tgidOf } = snapshotProcesses(k, anomalies);
    const none = absent('unreadable', 'cred unreadable');
    for (const t of leaders) {
      const i = taskInfo(k, t, anomalies, tgidOf);
      if (pids && !pids.has(i.pid)) continue;
      const c = i.creds;
      yield {
        offset: i.task,
        startTime: i.startTimeNs,
        pid: i.pid,
        comm: i.comm,
        capInh: c ? capabilityHex(c.capInheritable) : none,
        capPrm: c ? capabilityHex(c.capPermitted) : none,
        capEff: c ? capabilityHex(c.capEffective) : none,
        capBnd: c ? capabilityHex(c.capBounding) : none,
        capAmb: c ? capabilityHex(c.capAmbient) : none,
        effective: c ? ((c.capEffective & FULL) === FULL ? ['full'] : capabilityNames(c.capEffective)) : none,
      };
    }
  },
});
