/**
 * Where the lab keeps things: a cache (downloaded kernels, built images) that
 * survives reboots, and a runtime directory (one state dir per running guest).
 * Both can be redirected by environment variables so tests and CI stay isolated.
 */
import os from 'node:os';
import path from 'node:path';

/** `VMSIGHT_CACHE`, else `$XDG_CACHE_HOME/vmsight`, else `~/.cache/vmsight`. */
export function cacheDir(): string {
  const override = process.env['VMSIGHT_CACHE'];
  if (override) return path.resolve(override);
  const xdg = process.env['XDG_CACHE_HOME'];
  return path.join(xdg ? path.resolve(xdg) : path.join(os.homedir(), '.cache'), 'vmsight');
}

/** `VMSIGHT_RUN`, else `$XDG_RUNTIME_DIR/vmsight`, else `<tmpdir>/vmsight-<uid>`. */
export function runDir(): string {
  const override = process.env['VMSIGHT_RUN'];
  if (override) return path.resolve(override);
  const xdg = process.env['XDG_RUNTIME_DIR'];
  if (xdg) return path.join(path.resolve(xdg), 'vmsight');
  const uid = typeof process.getuid === 'function' ? process.getuid() : 0;
  return path.join(os.tmpdir(), `vmsight-${uid}`);
}

/** Guest names become file names, socket paths and shm names: keep them plain. */
export const GUEST_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,47}$/;
