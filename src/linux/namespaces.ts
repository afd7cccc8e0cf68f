/**
 * Namespaces and cgroups of a task, as /proc/<pid>/ns/* and
 * /proc/<pid>/cgroup show them: namespace inode numbers (ns_common.inum,
 * the number in 'net:[4026531840]') and the cgroup v2 path of the task's
 * css_set default cgroup, built from kernfs node names.
 *
 * @example
 * const ns = taskNamespaces(kernel, task, anomalies);   // { net: 4026531840n, pid: ..., ... }
 * taskCgroupPath(kernel, task, anomalies);              // '/vmi-container'
 */
import { FaultError } from '../core/errors.js';
import type { ObjValue } from '../profile/typed.js';
import type { AnomalySink } from './anomaly.js';
import type { Kernel } from './kernel.js';
import { absent, type Absent } from './plugin.js';
import { isKernelPointer } from './walk/common.js';
import { readObject } from './tasks.js';

/** /proc/<pid>/ns link names, in the order ls shows them. */
export const NAMESPACE_KINDS = ['cgroup', 'ipc', 'mnt', 'net', 'pid', 'pid_for_children', 'time', 'time_for_children', 'user', 'uts'] as const;
export type NamespaceKind = (typeof NAMESPACE_KINDS)[number];

/** nsproxy member and pointee struct of each kind that lives in the nsproxy. */
const NSPROXY_FIELDS: Partial<Record<NamespaceKind, readonly [string, string]>> = {
  uts: ['uts_ns', 'uts_namespace'],
  ipc: ['ipc_ns', 'ipc_namespace'],
  mnt: ['mnt_ns', 'mnt_namespace'],
  pid_for_children: ['pid_ns_for_children', 'pid_namespace'],
  net: ['net_ns', 'net'],
  cgroup: ['cgroup_ns', 'cgroup_namespace'],
  time: ['time_ns', 'time_namespace'],
  time_for_children: ['time_ns_for_children', 'time_namespace'],
};

export type NamespaceInodes = Record<NamespaceKind, number | Absent>;

/** ns_common.inum of the namespace `type` at `va`. */
function nsInum(k: Kernel, type: string, va: bigint, anomalies: AnomalySink, where: string): number | Absent {
  if (va === 0n) return absent('not-available', 'NULL namespace');
  if (!isKernelPointer(va)) {
    anomalies.add({ kind: 'bad-pointer', where, address: va });
    return absent('unreadable', 'bad pointer');
  }
  try {
    return k.typed.obj(type, va).field('ns.inum').u32();
  } catch (e) {
    if (!(e instanceof FaultError)) throw e;
    anomalies.add({ kind: 'fault', where, address: va, detail: e.message });
    return absent('unreadable', e.message);
  }
}

/**
 * The pid namespace a task lives in: task_active_pid_ns() =
 * thread_pid->numbers[thread_pid->level].ns (`thread_pid` since v4.19).
 */
export function taskPidNs(k: Kernel, task: ObjValue, anomalies: AnomalySink): bigint | undefined {
  const pidVa = task.has('thread_pid') ? task.ptr('thread_pid') : 0n;
  if (pidVa === 0n) return undefined;
  const pid = readObject(k, 'pid', pidVa, anomalies, 'task_struct.thread_pid');
  if (!pid) return undefined;
  const level = pid.u32('level');
  if (level > 32) {
    anomalies.add({ kind: 'invalid', where: 'pid.level', address: pidVa, detail: `level ${level} > 32` });
    return undefined;
  }
  const upid = k.typed.db.sizeOf('upid');
  const off = BigInt(k.typed.db.offsetOf('pid', 'numbers') + level * upid + k.typed.db.offsetOf('upid', 'ns'));
  try {
    const b = k.typed.mem.read(pidVa + off, 8);
    return new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true);
  } catch (e) {
    if (!(e instanceof FaultError)) throw e;
    anomalies.add({ kind: 'fault', where: 'pid.numbers', address: pidVa, detail: e.message });
    return undefined;
  }
}

/** Namespace inode numbers of a task (exiting tasks without an nsproxy get absent values). */
export function taskNamespaces(k: Kernel, task: ObjValue, anomalies: AnomalySink, userNs?: bigint): NamespaceInodes {
  const out = {} as Record<NamespaceKind, number | Absent>;
  for (const kind of NAMESPACE_KINDS) out[kind] = absent('not-available');
  const nsproxyVa = task.ptr('nsproxy');
  const nsproxy = nsproxyVa === 0n ? undefined : readObject(k, 'nsproxy', nsproxyVa, anomalies, 'task_struct.nsproxy');
  if (nsproxy) {
    for (const [kind, spec] of Object.entries(NSPROXY_FIELDS) as [NamespaceKind, readonly [string, string]][]) {
      if (!nsproxy.has(spec[0])) continue;
      out[kind] = nsInum(k, spec[1], nsproxy.ptr(spec[0]), anomalies, `nsproxy.${spec[0]}`);
    }
  }
  const pidNs = taskPidNs(k, task, anomalies);
  if (pidNs !== undefined) out.pid = nsInum(k, 'pid_namespace', pidNs, anomalies, 'pid.numbers.ns');
  let user = userNs;
  if (user === undefined) {
    const cred = task.ptr('cred');
    if (isKernelPointer(cred)) {
      try {
        user = k.typed.obj('cred', cred).field('user_ns').ptr();
      } catch (e) {
        if (!(e instanceof FaultError)) throw e;
        anomalies.add({ kind: 'fault', where: 'cred.user_ns', address: cred, detail: e.message });
      }
    }
  }
  if (user !== undefined) out.user = nsInum(k, 'user_namespace', user, anomalies, 'cred.user_ns');
  return out;
}

/** Bound on cgroup hierarchy depth. */
export const MAX_CGROUP_DEPTH = 64;

/**
 * The cgroup v2 path of a task: css_set->dfl_cgrp->kn and its kernfs parents
 * ('/' for the root). kernfs_node.parent became `__parent` in v6.15; both are tried by presence.
 */
export function taskCgroupPath(k: Kernel, task: ObjValue, anomalies: AnomalySink): string | Absent {
  const cssSet = task.ptr('cgroups');
  if (cssSet === 0n) return absent('not-available', 'no css_set');
  const css = readObject(k, 'css_set', cssSet, anomalies, 'task_struct.cgroups');
  if (!css) return absent('unreadable');
  const cgrp = css.ptr('dfl_cgrp');
  if (cgrp === 0n) return absent('not-available', 'no default cgroup');
  try {
    let kn = k.typed.obj('cgroup', cgrp).field('kn').ptr();
    const parentField = k.types.hasMember('kernfs_node', 'parent') ? 'parent' : '__parent';
    const parts: string[] = [];
    for (let depth = 0; kn !== 0n; depth++) {
      if (depth > MAX_CGROUP_DEPTH) {
        anomalies.add({ kind: 'truncated', where: 'kernfs_node.parent', address: kn, detail: `deeper than ${MAX_CGROUP_DEPTH}` });
        break;
      }
      if (!isKernelPointer(kn)) {
        anomalies.add({ kind: 'bad-pointer', where: 'kernfs_node.parent', address: kn });
        break;
      }
      const node = k.typed.obj('kernfs_node', kn).read();
      const parent = node.ptr(parentField);
      if (parent === 0n) break; // the hierarchy root's name is not part of the path
      parts.push(node.cstr('name', 256) ?? '');
      kn = parent;
    }
    return '/' + parts.reverse().join('/');
  } catch (e) {
    if (!(e instanceof FaultError)) throw e;
    anomalies.add({ kind: 'fault', where: 'cgroup.kn', address: cgrp, detail: e.message });
    return absent('unreadable', e.message);
  }
}
