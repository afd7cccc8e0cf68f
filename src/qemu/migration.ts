/**
 * Driving QEMU to write guest memory to files: `pmemsave` under stop/cont
 * (halt snapshot) and `migrate` to a file (live snapshot). QEMU writes the
 * files as its own user and, when daemonized, with cwd `/`: paths are always
 * absolute and the directory must be writable by QEMU.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { QemuError } from '../core/errors.js';
import type { QmpClient } from './qmp.js';
import { monotonicMs } from '../core/clock.js';

/** A private directory for snapshot files; everything in it is deleted by `remove()`. */
export class SnapshotDir {
  private kept = false;
  private constructor(readonly path: string) {}

  /** Keeps the directory and every file in it from now on (evidence): unlink and remove do nothing. */
  keep(): string {
    this.kept = true;
    return this.path;
  }

  static create(parent = os.tmpdir()): SnapshotDir {
    const dir = fs.mkdtempSync(path.join(path.resolve(parent), 'vmsight-snap-'));
    // QEMU may run as another user: let it create files, but not list ours.
    fs.chmodSync(dir, 0o733);
    return new SnapshotDir(dir);
  }

  file(name: string): string {
    return path.join(this.path, name);
  }

  unlink(file: string): void {
    if (!this.kept) fs.rmSync(file, { force: true });
  }

  remove(): void {
    if (!this.kept) fs.rmSync(this.path, { recursive: true, force: true });
  }
}

export interface VmStatus {
  status: string;
  running: boolean;
}

export async function vmStatus(qmp: QmpClient): Promise<VmStatus> {
  return qmp.execute<VmStatus>('query-status');
}

/**
 * Runs `fn` with the guest stopped, and always resumes it afterwards if it was
 * running before (even when `fn` throws). Returns fn's result and the pause.
 */
export async function whileStopped<T>(qmp: QmpClient, fn: () => Promise<T>): Promise<{ result: T; pausedMs: number }> {
  const before = await vmStatus(qmp);
  const t0 = monotonicMs();
  if (before.running) await qmp.execute('stop');
  try {
    const result = await fn();
    return { result, pausedMs: monotonicMs() - t0 };
  } finally {
    if (before.running) await qmp.execute('cont');
  }
}

export type MigrationMode = 'background' | 'precopy';

export interface MigrationResult {
  mode: MigrationMode;
  totalMs: number;
  /** QEMU's own downtime figure (ms the guest was stopped). */
  downtimeMs?: number;
  transferredBytes?: number;
}

interface Capability {
  capability: string;
  state: boolean;
}

async function setCapability(qmp: QmpClient, name: string, state: boolean): Promise<void> {
  await qmp.execute('migrate-set-capabilities', { capabilities: [{ capability: name, state }] });
}

const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * Migrates the guest to `file` (QEMU 7.2 has no `file:` URI, so `exec:cat >
 * FILE`). `background` uses the background-snapshot capability
 * (copy-on-write: the guest runs and the image is the instant migration
 * started); when QEMU refuses it, or with `precopy`, a plain pre-copy
 * migration is made (pages copied at different times; the last dirty pages
 * are copied with the guest stopped). Either way the guest is left running as
 * it was, capabilities are restored, and QEMU can migrate again.
 */
export async function migrateToFile(
  qmp: QmpClient,
  file: string,
  opts: { mode?: MigrationMode; timeoutMs?: number } = {},
): Promise<MigrationResult> {
  if (!path.isAbsolute(file)) throw new QemuError(`QMP ${qmp.endpoint}`, `migration file ${file} must be an absolute path`);
  const before = await vmStatus(qmp);
  const caps = await qmp.execute<Capability[]>('query-migrate-capabilities');
  const hadBackground = caps.find((c) => c.capability === 'background-snapshot');
  let mode: MigrationMode = opts.mode ?? 'background';
  if (mode === 'background') {
    try {
      if (!hadBackground) throw new Error('no such capability');
      await setCapability(qmp, 'background-snapshot', true);
    } catch {
      mode = 'precopy';
    }
  } else if (hadBackground?.state) await setCapability(qmp, 'background-snapshot', false);

  const t0 = monotonicMs();
  const timeoutMs = opts.timeoutMs ?? 120_000;
  try {
    await qmp.execute('migrate', { uri: `exec:cat > ${shellQuote(file)}` });
    // Bounded by the deadline.
    for (;;) {
      const st = await qmp.execute<{ status?: string; 'error-desc'?: string; downtime?: number; ram?: { transferred?: number } }>('query-migrate');
      if (st.status === 'completed') {
        return {
          mode,
          totalMs: monotonicMs() - t0,
          ...(st.downtime !== undefined ? { downtimeMs: st.downtime } : {}),
          ...(st.ram?.transferred !== undefined ? { transferredBytes: st.ram.transferred } : {}),
        };
      }
      if (st.status === 'failed' || st.status === 'cancelled') {
        throw new QemuError(`QMP ${qmp.endpoint}`, `migration to ${file} ${st.status}${st['error-desc'] ? `: ${st['error-desc']}` : ''}`);
      }
      if (monotonicMs() - t0 > timeoutMs) {
        await qmp.execute('migrate_cancel').catch(() => undefined);
        throw new QemuError(`QMP ${qmp.endpoint}`, `migration to ${file} did not complete within ${timeoutMs} ms (status ${st.status})`);
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  } finally {
    // A completed pre-copy migration leaves the source in 'postmigrate' (paused): resume what was running.
    const after = await vmStatus(qmp).catch(() => undefined);
    if (before.running && after && !after.running) await qmp.execute('cont').catch(() => undefined);
    if (hadBackground && mode === 'background' && !hadBackground.state) {
      await setCapability(qmp, 'background-snapshot', false).catch(() => undefined);
    }
    if (hadBackground?.state && mode === 'precopy') await setCapability(qmp, 'background-snapshot', true).catch(() => undefined);
  }
}
