/**
 * Guest-halting access (VEE'15): any live source, read while the guest is
 * paused. Each pass is QMP `stop` … reads … `cont`, so a pass sees one
 * consistent instant of guest memory at the price of pausing the guest.
 *
 * Opening starts the first pass; `refresh()` ends it and starts the next
 * (generation + 1); `pass(fn)` runs one bounded pass around `fn`; `close()`
 * resumes. We only ever resume a guest we paused ourselves, and never leave
 * one paused: close, errors, process exit and SIGINT/SIGTERM/SIGHUP all
 * resume it.
 *
 * QEMU announces our stops and resumes (STOP, RESUME) to every QMP client:
 * the ones we caused are remembered (`causedBy`) so that a monitor does not
 * report them as the guest pausing. What QEMU cannot tell us: a stop from
 * another client while we hold the guest paused changes nothing and emits
 * nothing, so our `cont` ends that pause too.
 */
import fs from 'node:fs';
import type { QmpClient, QmpEvent } from '../qemu/qmp.js';
import type { MappedRegion, PhysicalMemory, PhysRange, ReadFailure, ReadOp, SourceHints, TechniqueInfo } from './types.js';
import { monotonicMs } from '../core/clock.js';

/**
 * What one stop or cont made QEMU announce: the timestamp of the STOP or RESUME event it emitted (µs since
 * the epoch, QEMU's own stamp), 'none' when it emitted none (the guest was already in that state), or
 * nothing when the control cannot tell (then the host-time window of the command stands for it).
 */
export type EmittedEvent = number | 'none' | undefined;

/** What halting needs from QEMU. QMP provides it; tests provide a fake. */
export interface GuestControl {
  readonly endpoint: string;
  /** 'running', 'paused', 'shutdown', … */
  status(): Promise<string>;
  stop(): Promise<EmittedEvent | void>;
  cont(): Promise<EmittedEvent | void>;
  /** Resumes without waiting for an answer, synchronously (for process exit). Best effort. */
  contSync?(): void;
}

/** QEMU's stamp of an event, µs since the epoch. */
export function eventMicros(e: QmpEvent): number | undefined {
  const t = e.timestamp;
  return t && Number.isFinite(t.seconds) && Number.isFinite(t.microseconds) ? t.seconds * 1e6 + t.microseconds : undefined;
}

/**
 * Runs `command` on `client` and returns the stamp of the `event` QEMU emitted while running it. QEMU emits
 * STOP (RESUME) inside the stop (cont) command and queues it on every QMP connection, ours too, before our
 * reply: what arrives between our request and its reply is what our command caused.
 */
async function executeNoting(client: QmpClient, command: string, event: string): Promise<EmittedEvent> {
  let stamp: EmittedEvent = 'none';
  const note = (e: QmpEvent) => {
    if (e.event === event) stamp = eventMicros(e);
  };
  client.on('event', note);
  try {
    await client.execute(command);
  } finally {
    client.off('event', note);
  }
  return stamp;
}

/** A GuestControl over a QMP connection. */
export function qmpControl(client: QmpClient): GuestControl {
  return {
    endpoint: client.endpoint,
    status: async () => (await client.execute<{ status: string }>('query-status')).status,
    stop: () => executeNoting(client, 'stop', 'STOP'),
    cont: () => executeNoting(client, 'cont', 'RESUME'),
    contSync() {
      // Async I/O cannot run in an 'exit' handler: write the command straight to the socket's fd.
      // QmpClient does not expose its socket; this reaches for it and silently does nothing if the shape changes.
      const fd = (client as unknown as { socket?: { _handle?: { fd?: unknown } } }).socket?._handle?.fd;
      if (typeof fd !== 'number' || fd < 0 || client.closed) return;
      try {
        fs.writeSync(fd, '{"execute":"cont"}\n');
      } catch {
        // QEMU gone: nothing to resume.
      }
    },
  };
}

/** Something holding a guest paused that can let it run again synchronously (an exit handler cannot wait). */
export interface ExitResumer {
  resumeSync(): void;
}

/** Guests this process paused and has not resumed yet; the exit hooks resume them all. */
const paused = new Set<ExitResumer>();
const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
let hooksInstalled = false;

/**
 * Makes process exit and SIGINT/SIGTERM/SIGHUP call `r.resumeSync()` until the returned function is called.
 * Every technique that can leave a guest paused (guest-halting, the debugger stub) registers here.
 */
export function resumeOnExit(r: ExitResumer): () => void {
  paused.add(r);
  installHooks();
  return () => {
    paused.delete(r);
    if (!paused.size) uninstallHooks();
  };
}

function resumeAllSync(): void {
  for (const h of [...paused]) {
    paused.delete(h);
    h.resumeSync();
  }
}

function onSignal(signal: NodeJS.Signals): void {
  resumeAllSync();
  // When nobody else handles the signal, restore its default action and re-raise it.
  if (process.listenerCount(signal) === 1) {
    uninstallHooks();
    process.kill(process.pid, signal);
  }
}

function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', resumeAllSync);
  for (const s of SIGNALS) process.on(s, onSignal);
}

function uninstallHooks(): void {
  if (!hooksInstalled) return;
  hooksInstalled = false;
  process.off('exit', resumeAllSync);
  for (const s of SIGNALS) process.off(s, onSignal);
}

export interface HaltingStats {
  /** Passes started. */
  readonly passes: number;
  /** Passes in which we found the guest already paused by someone else (we then leave it paused). */
  readonly alreadyPaused: number;
  /** Total milliseconds the guest spent paused by us. */
  readonly pausedMs: number;
  /** Duration of the last completed pause, in milliseconds. */
  readonly lastPauseMs: number;
}

/** A STOP or RESUME our own stop or cont caused: QEMU's stamp of it, or the host-time window it falls in (µs). */
interface OwnEvent {
  readonly event: 'STOP' | 'RESUME';
  readonly fromUs: number;
  readonly toUs: number;
}

/** Own events remembered for the lifecycle to recognise (a matched one is dropped; unmatched ones age out). */
const MAX_OWN_EVENTS = 256;

export class HaltingMemory implements PhysicalMemory {
  readonly technique: TechniqueInfo;
  readonly target: string;
  private gen = 0;
  private inPass = false;
  private pausedByUs = false;
  private pausedAt = 0;
  private closed = false;
  private stats_ = { passes: 0, alreadyPaused: 0, pausedMs: 0, lastPauseMs: 0 };
  private own: OwnEvent[] = [];
  /** Our last stop made QEMU announce nothing: the pause we end is not (only) ours. */
  private foreignPause = false;

  constructor(
    readonly inner: PhysicalMemory,
    private readonly control: GuestControl,
    /** Runs after the inner source is closed (e.g. releases the QMP connection the control uses). */
    private readonly onClose?: () => Promise<void>,
  ) {
    this.technique = {
      class: 'guest-halting',
      name: `halting(${inner.technique.name})`,
      live: true,
      haltsGuest: true,
      zeroCopy: inner.technique.zeroCopy,
    };
    this.target = inner.target;
    if (inner.mapped) this.mapped = () => inner.mapped!();
  }

  /** The inner source's: a paused guest read in blocks per pass is as consistent as one read byte by byte. */
  get passBlockBytes(): number | undefined {
    return this.inner.passBlockBytes;
  }

  /** Wraps `inner` and starts the first pass (the guest is paused when this resolves). */
  static async open(inner: PhysicalMemory, control: GuestControl, onClose?: () => Promise<void>): Promise<HaltingMemory> {
    const h = new HaltingMemory(inner, control, onClose);
    await h.begin();
    return h;
  }

  get size(): number {
    return this.inner.size;
  }
  get generation(): number {
    return this.gen;
  }
  get stats(): HaltingStats {
    return { ...this.stats_ };
  }
  /** True while a pass is open (the guest is paused, by us or by someone else). */
  get passOpen(): boolean {
    return this.inPass;
  }

  ranges(): readonly PhysRange[] {
    return this.inner.ranges();
  }

  /** Reads go to the inner source; outside a pass they see the running guest. */
  readv(ops: ReadOp[]): ReadFailure[] {
    return this.inner.readv(ops);
  }

  /** Present only when the inner source maps memory. */
  readonly mapped?: () => readonly MappedRegion[];

  hints(): Promise<SourceHints> {
    return this.inner.hints ? this.inner.hints() : Promise.resolve({});
  }

  /** Pauses the guest (unless it already is) and opens a pass. */
  async begin(): Promise<void> {
    if (this.closed) throw new Error('halting source is closed');
    if (this.inPass) return;
    const status = await this.control.status();
    if (status === 'running') {
      // Register before stopping: if the process dies between the two, the exit hook still resumes.
      this.pausedByUs = true;
      paused.add(this);
      installHooks();
      let emitted: EmittedEvent;
      try {
        emitted = await this.noting('STOP', () => this.control.stop());
      } catch (err) {
        await this.resume().catch(() => undefined);
        throw err;
      }
      // No STOP seen for our stop: most likely another client paused the guest between our query and our
      // stop (or this connection hears no events). We resume it all the same — a guest is never left paused
      // on a guess — but that resume is then no pause of ours ending: the monitor is told the guest runs.
      this.foreignPause = emitted === 'none';
      this.pausedAt = monotonicMs();
    } else {
      this.stats_.alreadyPaused++;
    }
    this.inPass = true;
    this.stats_.passes++;
    this.gen++;
    await this.inner.refresh?.();
  }

  /** Closes the pass, resuming the guest if we paused it. */
  async end(): Promise<void> {
    this.inPass = false;
    await this.resume();
  }

  async refresh(): Promise<void> {
    await this.end();
    await this.begin();
  }

  /** Runs `fn` inside a pass (opening one if needed) and resumes the guest afterwards, even when `fn` throws. */
  async pass<T>(fn: (mem: PhysicalMemory) => T | Promise<T>): Promise<T> {
    await this.begin();
    try {
      return await fn(this);
    } finally {
      await this.end();
    }
  }

  private async resume(): Promise<void> {
    if (!this.pausedByUs) return;
    this.pausedByUs = false;
    paused.delete(this);
    if (!paused.size) uninstallHooks();
    const ms = this.pausedAt ? monotonicMs() - this.pausedAt : 0;
    this.stats_.lastPauseMs = ms;
    this.stats_.pausedMs += ms;
    this.pausedAt = 0;
    if (this.foreignPause) {
      this.foreignPause = false;
      await this.control.cont();
    } else await this.noting('RESUME', () => this.control.cont());
  }

  /**
   * True, once, when `e` is a STOP or RESUME that our own stop or cont caused: a monitor watching QMP
   * events must not report our pauses as the guest's. Exact for QMP (QEMU's stamp of the event our command
   * made, seen on our own connection); for a control that cannot tell, any such event stamped within the
   * command's host-time window (QEMU and we share the host clock). A stop from another client that lands in
   * the same instant as ours makes one event, taken for ours: QEMU's events do not say who asked.
   */
  causedBy(e: QmpEvent): boolean {
    if (e.event !== 'STOP' && e.event !== 'RESUME') return false;
    const at = eventMicros(e);
    if (at === undefined) return false;
    const i = this.own.findIndex((o) => o.event === e.event && at >= o.fromUs && at <= o.toUs);
    if (i < 0) return false;
    this.own.splice(i, 1);
    return true;
  }

  /** True while the guest is paused by this source (a pause seen now is ours). */
  get holdsGuestPaused(): boolean {
    return this.pausedByUs;
  }

  /** Runs a stop or cont, remembers the event it made QEMU emit, and says what it emitted. */
  private async noting(event: OwnEvent['event'], command: () => Promise<EmittedEvent | void>): Promise<EmittedEvent> {
    // Date.now() has ms granularity: a window widened by one ms on each side.
    const fromUs = (Date.now() - 1) * 1000;
    const emitted = (await command()) ?? undefined;
    if (emitted === 'none') return emitted;
    this.own.push(typeof emitted === 'number' ? { event, fromUs: emitted, toUs: emitted } : { event, fromUs, toUs: (Date.now() + 1) * 1000 });
    if (this.own.length > MAX_OWN_EVENTS) this.own.shift();
    return emitted;
  }

  /** Exit-hook path: fire `cont` synchronously. */
  resumeSync(): void {
    if (!this.pausedByUs) return;
    this.pausedByUs = false;
    paused.delete(this);
    this.control.contSync?.();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.inPass = false;
    try {
      await this.resume();
    } finally {
      try {
        await this.inner.close();
      } finally {
        await this.onClose?.();
      }
    }
  }
}

/** For tests: how many guests this process holds paused right now. */
export function pausedGuestCount(): number {
  return paused.size;
}
