/**
 * What the monitor learns about the guest's life from outside its memory: QMP events (STOP, RESUME, RESET,
 * SHUTDOWN, GUEST_PANICKED) on a QMP connection of its own — or, for a libvirt domain whose only QMP
 * session libvirtd holds, the same events relayed by libvirt (`virsh qemu-monitor-event`) — and whether
 * the QEMU process still exists.
 * QMP says nothing about memory writes (it cannot replace polling), but it is the right signal to stop
 * reading a paused guest, to re-bootstrap after a reset, and to end cleanly when QEMU exits.
 *
 * A guest-halting source stops and resumes the guest around each pass, and QEMU announces those STOPs and
 * RESUMEs to every QMP client, this one too: the source says which it caused (`OwnPauses`), and those are no
 * signal. They are told apart when signals are taken, not when they arrive: the event may reach this
 * connection before the source's own connection has the reply that identifies it.
 */
import fs from 'node:fs';
import { acquireQmp, type QmpLease } from '../qemu/discover.js';
import { domainState } from '../qemu/libvirt.js';
import { LibvirtEventStream } from '../qemu/libvirt-events.js';
import type { QmpEvent } from '../qemu/qmp.js';
import { monotonicMs } from '../core/clock.js';

/** How often the QEMU pid is checked when QMP cannot tell (its socket closing is the fast path). */
const PID_CHECK_MS = 200;

export type LifecycleSignal = 'paused' | 'resumed' | 'reset' | 'shutdown' | 'panicked' | 'gone';

/** The pauses of the monitored source itself (a guest-halting source: memory/halting.ts). */
export interface OwnPauses {
  /** True (once) when `e` is a STOP or RESUME the source's own stop or cont caused. */
  causedBy(e: QmpEvent): boolean;
  /** The source holds the guest paused right now. */
  readonly holdsGuestPaused: boolean;
}

export interface LifecycleOptions {
  /** Milliseconds to wait for a QMP socket to answer (default 1500). */
  readonly timeoutMs?: number;
  /** Pauses that are the monitor's own, not the guest's (a guest-halting source). */
  readonly own?: OwnPauses;
}

interface Pending {
  readonly signal: LifecycleSignal;
  /** The QMP event it came from (undefined for what was inferred: the pid gone, a state read). */
  readonly event?: QmpEvent;
}

export class GuestLifecycle {
  private pending: Pending[] = [];
  private lease: QmpLease | undefined;
  private libvirt: { stream: LibvirtEventStream; uri: string; domain: string } | undefined;
  private waiters: (() => void)[] = [];
  private lastPidCheck = 0;
  /** Why no QMP connection could be had (the monitor then relies on memory and the pid alone). */
  qmpUnavailable: string | undefined;
  /** STOP and RESUME events that were the source's own pauses, not reported. */
  ownEvents = 0;

  private constructor(
    private readonly pid: number | undefined,
    /** Where QMP events come from (a socket, or libvirt's relay); undefined when there is none. */
    readonly qmpSocket: string | undefined,
    private readonly own: OwnPauses | undefined,
  ) {}

  /**
   * A libvirt domain: QMP events through libvirt's relay (a child `virsh qemu-monitor-event --loop`), the
   * QEMU pid (libvirt's pid file) for the exit check. Without the relay, watches only the pid.
   */
  static async openLibvirt(uri: string, domain: string, pid: number | undefined, options: LifecycleOptions = {}): Promise<GuestLifecycle> {
    const stream = new LibvirtEventStream(uri, domain);
    try {
      await stream.start();
    } catch (e) {
      const life = new GuestLifecycle(pid, undefined, options.own);
      life.qmpUnavailable = `libvirt event relay: ${(e as Error).message}`;
      return life;
    }
    const endpoint = uri === 'qemu:///system' ? `libvirt:${domain}` : `libvirt:${domain}?uri=${uri}`;
    const life = new GuestLifecycle(pid, `${endpoint} (virsh qemu-monitor-event)`, options.own);
    life.libvirt = { stream, uri, domain };
    life.listen(stream, () => {
      life.libvirt = undefined;
    });
    // virsh registers for events a moment after it starts: a pause in that moment is seen here instead
    // (unless the pause is the source's own).
    if ((await domainState(uri, domain).catch(() => undefined)) === 'paused' && !options.own?.holdsGuestPaused) life.push({ signal: 'paused' });
    return life;
  }

  /** Connects to the first of `sockets` that answers; without one, watches only the pid. */
  static async open(sockets: readonly string[], pid: number | undefined, options: LifecycleOptions = {}): Promise<GuestLifecycle> {
    for (const socket of sockets) {
      try {
        const lease = await acquireQmp(socket, options.timeoutMs ?? 1500);
        const life = new GuestLifecycle(pid, socket, options.own);
        life.attach(lease);
        return life;
      } catch (e) {
        const life = sockets.at(-1) === socket ? new GuestLifecycle(pid, undefined, options.own) : undefined;
        if (life) {
          life.qmpUnavailable = `${socket}: ${(e as Error).message}`;
          return life;
        }
      }
    }
    const life = new GuestLifecycle(pid, undefined, options.own);
    life.qmpUnavailable = 'no QMP socket given';
    return life;
  }

  private attach(lease: QmpLease): void {
    this.lease = lease;
    this.listen(lease.client, () => {
      this.lease = undefined;
    });
  }

  /** QMP events from `source` (a QMP client or libvirt's relay) become signals; its close may mean QEMU exited. */
  private listen(source: { on(ev: 'event', f: (e: QmpEvent) => void): unknown; on(ev: 'close', f: () => void): unknown }, closed: () => void): void {
    source.on('event', (e: QmpEvent) => {
      const signal = EVENT_SIGNALS[e.event];
      if (signal) this.push({ signal, event: e });
    });
    source.on('close', () => {
      // QEMU closes its QMP sockets when it exits; with a known pid the pid says which it was.
      if (this.pid === undefined || !this.qemuAlive()) this.push({ signal: 'gone' });
      else this.qmpUnavailable = 'the QMP event source closed';
      closed();
    });
  }

  /**
   * Signals seen since the last call, in order, without the source's own pauses. The pid is looked at every
   * PID_CHECK_MS at most (one file read).
   */
  take(): readonly LifecycleSignal[] {
    const now = monotonicMs();
    if (this.pid !== undefined && now - this.lastPidCheck >= PID_CHECK_MS) {
      this.lastPidCheck = now;
      if (!this.qemuAlive() && !this.pending.some((p) => p.signal === 'gone')) this.pending.push({ signal: 'gone' });
    }
    if (!this.pending.length) return NONE;
    const out: LifecycleSignal[] = [];
    for (const p of this.pending) {
      if (p.event && this.own?.causedBy(p.event)) this.ownEvents++;
      else out.push(p.signal);
    }
    this.pending = [];
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
    if (this.libvirt) {
      const state = await domainState(this.libvirt.uri, this.libvirt.domain).catch(() => undefined);
      return state === undefined ? undefined : state === 'running';
    }
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
    this.libvirt?.stream.close();
    this.libvirt = undefined;
    const lease = this.lease;
    this.lease = undefined;
    await lease?.release().catch(() => undefined);
  }

  private push(p: Pending): void {
    this.pending.push(p);
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}

const NONE: readonly LifecycleSignal[] = [];

const EVENT_SIGNALS: Record<string, LifecycleSignal> = {
  STOP: 'paused',
  RESUME: 'resumed',
  RESET: 'reset',
  SHUTDOWN: 'shutdown',
  GUEST_PANICKED: 'panicked',
};
