/**
 * lsof: every open file descriptor of every process (fd table -> struct
 * file), with its /proc/PID/fd-style name, kind, inode, flags and position.
 */
import { absent, definePlugin, type Absent } from '../plugin.js';
import { taskFiles } from '../files.js';
import { PathResolver } from '../fs-path.js';
import { forEachProcess, PID_OPTION, pidFilter } from '../tasks.js';
import { taskKey, taskStartTimeNs } from '../identity.js';

export interface LsofRow {
  /** The process's task_struct and start time: its identity across passes (not columns). */
  task: bigint;
  startTime: bigint;
  pid: number;
  comm: string;
  fd: number;
  kind: string;
  path: string;
  inode: bigint;
  /** Octal f_flags (+O_CLOEXEC), as /proc/PID/fdinfo prints them. */
  flags: string;
  pos: bigint;
  device: string | Absent;
  file: bigint;
}

export default definePlugin<LsofRow>()({
  name: 'lsof',
  aliases: ['linux.lsof', 'linux.lsof.Lsof'],
  version: '1.0.0',
  summary: 'Open files of every process (paths, sockets, pipes, anon inodes, devices)',
  requires: {
    symbols: ['init_task'],
    fields: [
      ['task_struct', 'files'],
      ['files_struct', 'fdt'],
      ['fdtable', 'max_fds'],
      ['fdtable', 'fd'],
      ['file', 'f_path'],
      ['file', 'f_inode'],
    ],
  },
  options: PID_OPTION,
  columns: [
    { key: 'pid', kind: 'int' },
    { key: 'comm', kind: 'str' },
    { key: 'fd', kind: 'int' },
    { key: 'kind', kind: 'str' },
    { key: 'inode', kind: 'int' },
    { key: 'flags', kind: 'str' },
    { key: 'pos', kind: 'int' },
    { key: 'device', kind: 'str' },
    { key: 'file', kind: 'hex' },
    { key: 'path', kind: 'str' },
  ],
  key: (r) => `${taskKey(r.pid, r.task, r.startTime)}:${r.fd}`,
  *run(k, { options, anomalies }) {
    const pids = pidFilter(options['pid']);
    const paths = new PathResolver(k, anomalies);
    for (const task of forEachProcess(k, anomalies)) {
      const pid = task.s32('pid');
      if (pids && !pids.has(pid)) continue;
      const comm = task.str('comm');
      const id = { task: task.address, startTime: taskStartTimeNs(task) };
      for (const f of taskFiles(k, task, paths, anomalies)) {
        yield {
          ...id,
          pid,
          comm,
          fd: f.fd,
          kind: f.kind,
          path: f.path,
          inode: f.inode,
          flags: '0' + f.flags.toString(8),
          pos: f.pos,
          device: f.rdev ?? absent('not-applicable'),
          file: f.file,
        };
      }
    }
  },
});
