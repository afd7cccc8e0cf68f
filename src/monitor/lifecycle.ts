/**
 * What the monitor learns about the guest's life from outside its memory: QMP events (STOP, RESUME, RESET,
 * SHUTDOWN, GUEST_PANICKED) on a QMP connection of its own, and whether the QEMU process still exists.
 * QMP says nothing about memory writes (it cannot replace polling), but it is the right signal to stop
 * reading a paused guest, to re-bootstrap after a reset, and to end cleanly when QEMU exits.
 */
import fs from 'node:fs';
import { acquireQmp, type QmpLease } from '../qemu/discover.js';
import type { QmpEvent } from '../qemu/qmp.js';

/** How often the QEMU pid is checked when QMP cannot tell (its socket closing is the fast path). */
const PID_CHECK_MS = 200;

export type LifecycleSignal = 'paused' | 'resumed' | 'reset' | 'shutdown' | 'panicked' | 'gone';

export class GuestLifecycle {
  private pending: LifecycleSignal[] = [];
  private lease: QmpLease | undefined;
  private waiters: (() => void)[] = [];
  private lastPidCheck = 0;
  /** Why no QMP connection could be had (the monitor then relies on memory and the pid alone). */
  qmpUnavailable: string | undefined;

  private constructor(
    private readonly pid: number | undefined,
    readonly qmpSocket: string | undefined,
  ) {}

  /** Connects to the first of `sockets` that answers; without one, watches only the pid. */
  static async open(sockets: readonly string[], pid: number | undefined, timeoutMs = 1500): Promise<GuestLifecycle> {
    for (const socket of sockets) {
      try {
        const lease = await acquireQmp(socket, timeoutMs);
        const life = new GuestLifecycle(pid, socket);
        life.attach(lease);
        return life;
      } catch (e) {
        const life = sockets.at(-1) === socket ? new GuestLifecycle(pid, undefined) : undefined;
        if (life) {
          life.qmpUnavailable = `${socket}: ${(e as Error).message}`;
          return life;
        }
      }
    }
    const life = new GuestLifecycle(pid, undefined);
    life.qmpUnavailable = 'no QMP socket given';
    return life;
  }

  private attach(lease: QmpLease): void {
    this.lease = lease;
    const client = lease.client;
    client.on('event', (e: QmpEvent) => {
      const s = EVENT_SIGNALS[e.event];
      if (s) this.push(s);
    });
    client.on('close', () => {
      // QEMU closes its QMP sockets when it exits; with a known pid the pid says which it was.
      if (this.pid === undefined || !this.qemuAlive()) this.push('gone');
      else this.qmpUnavailable = 'the QMP connection closed';
      this.lease = undefined;
    });
  }

  /** Signals seen since the last call, in order. The pid is looked at every PID_CHECK_MS at most (one file read). */
  take(): LifecycleSignal[] {
    const now = performance.now();
    if (this.pid !== undefined && now - this.lastPidCheck >= PID_CHECK_MS) {
      this.lastPidCheck = now;
      if (!this.qemuAlive() && !this.pending.includes('gone')) this.pending.push('gone');
    }
    const out = this.pending;
    if (out.length) this.pending = [];
    return out;
  }

  /** Resolves at the next signal (or after `ms`): lets a paused monitor sleep without polling memory. */
  wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done(): void {
        clearTimeout(t);
        resolve();
      }
      this.waiters.push(done);
    });
  }

  /** Is the guest running now? (query-status; undefined without QMP) */
  async running(): Promise<boolean | undefined> {
    if (!this.lease) return undefined;
    try {
      const r = (await this.lease.client.execute('query-status', {}, 5000)) as { running?: boolean };
      return r.running;
    } catch {
      return undefined;
    }
  }

  /** The QEMU process exists and is not a zombie (a killed daemonized QEMU may wait long to be reaped). */
  qemuAlive(): boolean {
    if (this.pid === undefined) return true;
    try {
      const stat = fs.readFileSync(`/proc/${this.pid}/stat`, 'utf8');
      const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
      return state !== 'Z' && state !== 'X';
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    const lease = this.lease;
    this.lease = undefined;
    await lease?.release().catch(() => undefined);
  }

  private push(s: LifecycleSignal): void {
    this.pending.push(s);
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}

const EVENT_SIGNALS: Record<string, LifecycleSignal> = {
  STOP: 'paused',
  RESUME: 'resumed',
  RESET: 'reset',
  SHUTDOWN: 'shutdown',
  GUEST_PANICKED: 'panicked',
};
