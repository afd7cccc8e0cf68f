/**
 * Open files of a process: task->files (struct files_struct) -> fdt (struct
 * fdtable: max_fds, fd[], open_fds, close_on_exec) -> struct file; a slot
 * counts only when its open_fds bit is set. Each open
 * file is classified from its inode mode and d_path pseudo name (regular,
 * directory, socket, pipe, anon inode, character/block device, fifo,
 * symlink) and named like /proc/PID/fd/N (PathResolver from fs-path.ts).
 * taskSockets walks the same slots for the sockets only, naming nothing.
 */
import { FaultError } from '../core/errors.js';
import type { ObjValue } from '../profile/typed.js';
import type { AnomalySink } from './anomaly.js';
import type { PathResolver } from './fs-path.js';
import type { Kernel } from './kernel.js';
import { isKernelPointer } from './walk/common.js';
import { gva } from '../core/address.js';

/** sysctl fs.nr_open's ceiling: no fd table is larger. */
export const MAX_FDS = 1 << 20;
/** O_CLOEXEC as fdinfo adds it to f_flags. */
export const O_CLOEXEC = 0o2000000;

export type FileKind = 'regular' | 'directory' | 'socket' | 'pipe' | 'fifo' | 'anon_inode' | 'char' | 'block' | 'symlink' | 'unknown';

/** Kind from an inode's i_mode (S_IFMT) and the file's path. */
export function fileKind(mode: number, path: string): FileKind {
  if (path.startsWith('anon_inode:')) return 'anon_inode';
  if (path.startsWith('pipe:[')) return 'pipe';
  if (path.startsWith('socket:[')) return 'socket';
  switch (mode & 0o170000) {
    case 0o140000:
      return 'socket';
    case 0o120000:
      return 'symlink';
    case 0o100000:
      return 'regular';
    case 0o060000:
      return 'block';
    case 0o040000:
      return 'directory';
    case 0o020000:
      return 'char';
    case 0o010000:
      return 'fifo';
    default:
      return 'unknown';
  }
}

export interface OpenFile {
  readonly fd: number;
  /** struct file address. */
  readonly file: bigint;
  /** Like readlink(/proc/PID/fd/N). */
  readonly path: string;
  readonly kind: FileKind;
  readonly inode: bigint;
  readonly mode: number;
  /** f_flags, plus O_CLOEXEC when the fd is close-on-exec (as fdinfo prints). */
  readonly flags: number;
  readonly pos: bigint;
  /** 'major:minor' of a device file (i_rdev), else undefined. */
  readonly rdev: string | undefined;
  /** struct socket address (file->private_data) for sockets. */
  readonly socket: bigint | undefined;
}

/** Decodes a kernel dev_t (MAJOR = dev >> 20, MINOR = dev & 0xfffff). */
export function devName(dev: number): string {
  return `${dev >>> 20}:${dev & 0xfffff}`;
}

/** One open slot of a task's fd table. */
interface FdSlot {
  readonly fd: number;
  /** struct file address (a kernel pointer). */
  readonly file: bigint;
  readonly cloexec: boolean;
}

/**
 * Every open fd of a task, in fd order.
 * @param task `struct task_struct` value (a thread-group leader: threads share files)
 */
export function* taskFiles(kernel: Kernel, task: ObjValue, paths: PathResolver, anomalies: AnomalySink): Generator<OpenFile> {
  for (const { fd, file, cloexec } of fdSlots(kernel, task, anomalies)) {
    const row = openFile(kernel, fd, file, cloexec, paths, anomalies);
    if (row) yield row;
  }
}

/** An open socket of a process: what sockstat needs of the fd, and no more. */
export interface OpenSocket {
  readonly fd: number;
  readonly file: bigint;
  /** The socket inode's number (socket:[N]); 0 when its inode was unreadable. */
  readonly inode: bigint;
  /** struct socket address (file->private_data). */
  readonly socket: bigint;
}

/**
 * The sockets among a task's open fds, in fd order. A socket file is one
 * whose f_op is socket_file_ops (when the profile has that symbol: then no
 * other file's inode is read), and whose inode is S_IFSOCK; no path is
 * resolved (taskFiles' d_path walks a dentry chain for every open file,
 * which a socket listing only throws away).
 */
export function* taskSockets(kernel: Kernel, task: ObjValue, anomalies: AnomalySink): Generator<OpenSocket> {
  const fops = socketFileOps(kernel);
  const { typed } = kernel;
  for (const { fd, file } of fdSlots(kernel, task, anomalies)) {
    try {
      const f = typed.obj('file', file).read();
      if (fops !== undefined && f.ptr('f_op') !== fops) continue;
      const inodeVa = f.ptr('f_inode');
      let ino = 0n;
      if (isKernelPointer(inodeVa)) {
        const inode = typed.obj('inode', inodeVa).read();
        if ((inode.u16('i_mode') & 0o170000) !== S_IFSOCK) continue;
        ino = BigInt.asUintN(64, inode.int('i_ino'));
      } else {
        anomalies.add({ kind: 'bad-pointer', where: 'file.f_inode', address: inodeVa, detail: `fd ${fd}` });
        if (fops === undefined) continue; // nothing else says it is a socket
      }
      yield { fd, file, inode: ino, socket: f.ptr('private_data') };
    } catch (e) {
      if (!(e instanceof FaultError)) throw e;
      anomalies.add({ kind: 'fault', where: 'struct file', address: file, detail: `fd ${fd}: ${e.message}` });
    }
  }
}

const S_IFSOCK = 0o140000;

/** socket_file_ops per kernel (null: the profile lacks it), looked up once rather than for every task. */
const socketFileOpsOf = new WeakMap<Kernel, bigint | null>();

/** socket_file_ops, the f_op of every socket file, when the profile knows it (kallsyms with data symbols). */
function socketFileOps(kernel: Kernel): bigint | undefined {
  let va = socketFileOpsOf.get(kernel);
  if (va === undefined) {
    va = kernel.hasSymbol('socket_file_ops') && kernel.types.hasMember('file', 'f_op') ? kernel.symbol('socket_file_ops') : null;
    socketFileOpsOf.set(kernel, va);
  }
  return va ?? undefined;
}

/** The set slots of a task's fd table whose open_fds bit is set, with their close-on-exec bit. */
function* fdSlots(kernel: Kernel, task: ObjValue, anomalies: AnomalySink): Generator<FdSlot> {
  const { typed, space } = kernel;
  const filesVa = task.ptr('files');
  if (filesVa === 0n) return; // exited or kernel thread without files
  if (!isKernelPointer(filesVa)) {
    anomalies.add({ kind: 'bad-pointer', where: 'task_struct.files', address: filesVa });
    return;
  }
  let fdt: ObjValue;
  try {
    fdt = typed.obj('files_struct', filesVa).read().obj('fdt')!.read();
  } catch (e) {
    if (!(e instanceof FaultError) && !(e instanceof TypeError)) throw e;
    anomalies.add({ kind: 'fault', where: 'files_struct.fdt', address: filesVa, detail: (e as Error).message });
    return;
  }
  let max = fdt.u32('max_fds');
  if (max > MAX_FDS) {
    anomalies.add({ kind: 'invalid', where: 'fdtable.max_fds', address: fdt.address, detail: `${max} > ${MAX_FDS}` });
    max = MAX_FDS;
  }
  const fdArray = fdt.ptr('fd');
  const cloexecVa = fdt.ptr('close_on_exec');
  const openVa = fdt.ptr('open_fds');
  const ptrs = new Uint8Array(max * 8);
  const cloexec = new Uint8Array(Math.ceil(max / 8));
  const open = new Uint8Array(Math.ceil(max / 8));
  const failures = space.readv([
    { va: gva(fdArray), len: ptrs.length, dst: ptrs },
    { va: gva(cloexecVa), len: cloexec.length, dst: cloexec },
    { va: gva(openVa), len: open.length, dst: open },
  ]);
  for (const f of failures) anomalies.add({ kind: 'fault', where: 'fdtable', address: f.va, detail: f.reason });
  const dv = new DataView(ptrs.buffer);
  for (let fd = 0; fd < max; fd++) {
    const file = dv.getBigUint64(fd * 8, true);
    if (file === 0n) continue;
    if (!isKernelPointer(file)) {
      anomalies.add({ kind: 'bad-pointer', where: 'fdtable.fd', address: fdArray + BigInt(fd * 8), detail: `fd ${fd}` });
      continue;
    }
    // fd_install() publishes the pointer only after __set_open_fd(): a set slot whose
    // open_fds bit is clear is not an open file (garbage, or a table being torn down).
    if (((open[fd >> 3]! >> (fd & 7)) & 1) === 0) {
      anomalies.add({ kind: 'invalid', where: 'fdtable.open_fds', address: fdArray + BigInt(fd * 8), detail: `fd ${fd} has a file but is not in open_fds` });
      continue;
    }
    yield { fd, file, cloexec: ((cloexec[fd >> 3]! >> (fd & 7)) & 1) === 1 };
  }
}

function openFile(kernel: Kernel, fd: number, fileVa: bigint, cloexec: boolean, paths: PathResolver, anomalies: AnomalySink): OpenFile | undefined {
  const { typed } = kernel;
  try {
    const f = typed.obj('file', fileVa).read();
    const inodeVa = f.ptr('f_inode');
    let mode = 0;
    let ino = 0n;
    let rdev: string | undefined;
    if (isKernelPointer(inodeVa)) {
      const inode = typed.obj('inode', inodeVa).read();
      mode = inode.u16('i_mode');
      ino = BigInt.asUintN(64, inode.int('i_ino'));
      const t = mode & 0o170000;
      if (t === 0o020000 || t === 0o060000) rdev = devName(inode.u32('i_rdev'));
    }
    const path = paths.filePath(fileVa);
    const kind = fileKind(mode, path);
    return {
      fd,
      file: fileVa,
      path,
      kind,
      inode: ino,
      mode,
      flags: f.u32('f_flags') | (cloexec ? O_CLOEXEC : 0),
      pos: f.s64('f_pos') < 0n ? 0n : f.s64('f_pos'),
      rdev,
      socket: kind === 'socket' ? f.ptr('private_data') : undefined,
    };
  } catch (e) {
    if (!(e instanceof FaultError)) throw e;
    anomalies.add({ kind: 'fault', where: 'struct file', address: fileVa, detail: `fd ${fd}: ${e.message}` });
    return undefined;
  }
}
