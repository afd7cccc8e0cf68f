/**
 * Checks, before anything starts, that a sink can create or write the file at `path`: the folder exists and
 * is a folder, the process may write there, and an existing file is a writable regular file. Throws a
 * SinkUnavailableError naming what is wrong and what to do.
 */
import { accessSync, constants, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { SinkUnavailableError } from './errors.js';

function errnoCode(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | undefined)?.code;
}

export function checkWritablePath(path: string, what: string, options: { folderToo?: boolean; devices?: boolean } = {}): void {
  const folder = dirname(resolve(path));
  let folderStat;
  try {
    folderStat = statSync(folder);
  } catch (e) {
    const code = errnoCode(e);
    const why = code === 'ENOTDIR' ? 'a part of the path is a file, not a folder' : code === 'EACCES' ? 'permission denied' : 'the folder does not exist';
    throw new SinkUnavailableError(path, `cannot create the ${what}: ${why}`, { hint: `create ${folder} or choose another path` });
  }
  if (!folderStat.isDirectory()) {
    throw new SinkUnavailableError(path, `cannot create the ${what}: ${folder} is not a folder`, { hint: 'choose a path inside a folder' });
  }
  let fileStat;
  try {
    fileStat = statSync(path);
  } catch {
    fileStat = undefined;
  }
  // A stream sink may also write to a FIFO or a character device (/dev/stderr, a pipe made with mkfifo).
  const special = fileStat !== undefined && (fileStat.isFIFO() || fileStat.isCharacterDevice());
  if (fileStat && !fileStat.isFile() && !(options.devices && special)) {
    throw new SinkUnavailableError(path, `the ${what} path exists and is not a regular file`, { hint: 'choose a file path' });
  }
  // SQLite in WAL mode creates -wal and -shm files beside the store: its folder must be writable too.
  if (options.folderToo && fileStat) {
    try {
      accessSync(folder, constants.W_OK);
    } catch {
      throw new SinkUnavailableError(path, `no permission to write in ${folder} (the ${what} needs its -wal and -shm files there)`, {
        hint: `make ${folder} writable or move the file`,
      });
    }
  }
  try {
    accessSync(fileStat ? path : folder, constants.W_OK);
  } catch {
    throw new SinkUnavailableError(path, `no permission to write the ${what}`, {
      hint: fileStat ? 'make the file writable or choose another path' : `make ${folder} writable or choose another folder`,
    });
  }
}
