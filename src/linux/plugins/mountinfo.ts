/**
 * mountinfo: the mounts of a process's mount namespace (default pid 1), like
 * /proc/PID/mountinfo: ids, major:minor, root, mount point, options, fs type
 * and source.
 */
import { UsageError } from '../../core/errors.js';
import { definePlugin } from '../plugin.js';
import { mountInfo, taskMountNamespace } from '../mounts.js';
import { forEachProcess, initTask, readObject } from '../tasks.js';

export interface MountinfoRow {
  id: number;
  parentId: number;
  dev: string;
  root: string;
  mountPoint: string;
  options: string;
  fsType: string;
  source: string;
  mount: bigint;
}

export default definePlugin<MountinfoRow>()({
  name: 'mountinfo',
  aliases: ['linux.mountinfo', 'linux.mountinfo.MountInfo'],
  version: '1.0.0',
  summary: 'Mounts of a mount namespace (like /proc/PID/mountinfo; list or rbtree by kernel)',
  requires: {
    symbols: ['init_task'],
    fields: [
      ['task_struct', 'nsproxy'],
      ['nsproxy', 'mnt_ns'],
      ['mount', 'mnt_id'],
      ['mount', 'mnt_parent'],
      ['super_block', 's_type'],
    ],
    anyOf: [[['mnt_namespace', 'list'], ['mnt_namespace', 'mounts']]],
  },
  options: { pid: { type: 'string', valueName: 'PID', description: "the mount namespace of this process", byDefault: "init's mount namespace (pid 1)" } },
  columns: [
    { key: 'id', kind: 'int' },
    { key: 'parentId', title: 'parent', kind: 'int' },
    { key: 'dev', kind: 'str' },
    { key: 'root', kind: 'str' },
    { key: 'mountPoint', title: 'mount_point', kind: 'str' },
    { key: 'options', kind: 'str' },
    { key: 'fsType', title: 'fstype', kind: 'str' },
    { key: 'source', kind: 'str' },
    { key: 'mount', kind: 'hex' },
  ],
  // Mount ids (lowest free) and struct mount slots are both reused after umount; type and source are fixed for a mount's life.
  key: (r) => `${r.id}:${r.mount.toString(16)}:${r.fsType}:${r.source}`,
  *run(k, { options, anomalies }) {
    const want = typeof options['pid'] === 'string' ? options['pid'] : '1';
    if (!/^\d+$/.test(want)) throw new UsageError(`--pid expects one process id, got '${want}'`);
    const pid = Number(want);
    let task = pid === 0 ? readObject(k, 'task_struct', initTask(k), anomalies, 'init_task') : undefined;
    if (pid !== 0) for (const t of forEachProcess(k, anomalies)) if (t.s32('pid') === pid) { task = t; break; }
    if (!task && options['pid'] === undefined) {
      // pid 1 unreachable (a broken task list): init_task shares its mount namespace at boot.
      anomalies.add({ kind: 'broken-link', where: 'task_struct.tasks', detail: 'pid 1 not on the task list; using init_task\'s mount namespace' });
      task = readObject(k, 'task_struct', initTask(k), anomalies, 'init_task');
    }
    if (!task) throw new UsageError(`no process with pid ${pid} on the task list`);
    const ns = taskMountNamespace(k, task);
    if (ns === undefined || ns === 0n) throw new UsageError(`process ${pid} has no mount namespace (exiting?)`);
    for (const m of mountInfo(k, ns, anomalies)) {
      yield { id: m.id, parentId: m.parentId, dev: m.dev, root: m.root, mountPoint: m.mountPoint, options: m.options, fsType: m.fsType, source: m.source, mount: m.mount };
    }
  },
});
