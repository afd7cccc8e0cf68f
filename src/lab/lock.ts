/**
 * A cross-process lock made of a directory (mkdir is atomic). Several test
 * processes may build the same kernel cache or boot the same shared guest at
 * once; the first takes the lock, the others wait. A lock whose owner pid is
 * gone is stale and is broken.
 */
import fs from 'node:fs';
import path from 'node:path';
import { LabError } from '../core/errors.js';

export interface LockOptions {
  /** Give up after this many milliseconds (default 15 minutes: a kernel download can be slow). */
  timeoutMs?: number;
}

function ownerAlive(dir: string): boolean {
  let pid: number;
  try {
    pid = Number.parseInt(fs.readFileSync(path.join(dir, 'pid'), 'utf8'), 10);
  } catch {
    // The owner may be between mkdir and writing its pid: judge by the directory's age.
    try {
      return Date.now() - fs.statSync(dir).mtimeMs < 10_000;
    } catch {
      return false;
    }
  }
  if (!Number.isInteger(pid) || pid <= 0) return false;
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Takes `lockPath` if it is free (or stale) and returns true; never waits. Release with releaseLock. */
export function tryLock(lockPath: string): boolean {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.mkdirSync(lockPath);
      fs.writeFileSync(path.join(lockPath, 'pid'), String(process.pid));
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      if (ownerAlive(lockPath)) return false;
      fs.rmSync(lockPath, { recursive: true, force: true });
    }
  }
  return false;
}

export function releaseLock(lockPath: string): void {
  fs.rmSync(lockPath, { recursive: true, force: true });
}

/** Runs `fn` while holding the lock directory `lockPath` (created next to what it protects). */
export async function withLock<T>(lockPath: string, fn: () => Promise<T>, options: LockOptions = {}): Promise<T> {
  const timeoutMs = options.timeoutMs ?? 15 * 60_000;
  const deadline = Date.now() + timeoutMs;
  fs.mkdirSync(path.dirname(lockPath), { recursive: true });
  for (let attempt = 0; ; attempt++) {
    try {
      fs.mkdirSync(lockPath);
      fs.writeFileSync(path.join(lockPath, 'pid'), String(process.pid));
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      if (!ownerAlive(lockPath)) {
        fs.rmSync(lockPath, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline) {
        throw new LabError(`timed out after ${Math.round(timeoutMs / 1000)} s waiting for lock ${lockPath}`, {
          hint: 'another vmsight process holds it; remove the directory if no such process runs',
        });
      }
      await sleep(Math.min(100 + attempt * 50, 1000));
    }
  }
  try {
    return await fn();
  } finally {
    fs.rmSync(lockPath, { recursive: true, force: true });
  }
}
