/**
 * QEMU's events of a libvirt domain, from libvirt itself. libvirtd holds the domain's only QMP session, so
 * no second client hears STOP, RESUME, RESET or SHUTDOWN; libvirt relays them to its own clients, and
 * `virsh qemu-monitor-event --loop` prints each as one line:
 *
 *   event STOP at 1764634512.123456 for domain 'web01': <null>
 *   event RESET at 1764634513.000001 for domain 'web01': {"guest":false,"reason":"host-qmp-system-reset"}
 *
 * A child virsh is the whole transport (no native binding, no home-made RPC); its lines are parsed one by
 * one, bounded in length, and anything that does not parse is counted, not trusted.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { virshBinary } from './libvirt.js';
import type { QmpEvent } from './qmp.js';

/** Longest line taken from virsh; a longer one is cut off and counted as unparsed. */
const MAX_LINE = 64 * 1024;

const LINE_RE = /^event ([A-Z0-9_]{1,64}) at (\d{1,12})\.(\d{1,6}) for domain '([^']{1,64})': (.*)$/;

/** One line of `virsh qemu-monitor-event` as a QMP event (with its domain), or undefined. */
export function parseQemuMonitorEventLine(line: string): (QmpEvent & { domain: string }) | undefined {
  const m = LINE_RE.exec(line.replace(/\r$/, ''));
  if (!m) return undefined;
  const [, event, secs, micros, domain, rest] = m;
  let data: Record<string, unknown> | undefined;
  if (rest !== '<null>' && rest !== '') {
    try {
      const v: unknown = JSON.parse(rest!);
      if (v && typeof v === 'object' && !Array.isArray(v)) data = v as Record<string, unknown>;
    } catch {
      // details that are not JSON: the event still counts, without data
    }
  }
  return { event: event!, domain: domain!, timestamp: { seconds: Number(secs), microseconds: Number(micros!.padEnd(6, '0')) }, ...(data ? { data } : {}) };
}

/**
 * A running `virsh qemu-monitor-event --loop` for one domain. Emits 'event' (QmpEvent) per line and
 * 'close' (with the reason) when virsh ends; `close()` ends it.
 */
export class LibvirtEventStream extends EventEmitter {
  private child: ChildProcess | undefined;
  private buffered = '';
  private stderr = '';
  /** Lines that were not events of this domain (or too long). */
  unparsed = 0;
  events = 0;
  /** Why the stream ended, once it has. */
  ended: string | undefined;

  constructor(
    readonly uri: string,
    readonly domain: string,
  ) {
    super();
  }

  /** Starts virsh; resolves once it runs (rejects when it cannot be started). */
  start(): Promise<void> {
    const child = spawn(virshBinary(), ['-c', this.uri, 'qemu-monitor-event', '--domain', this.domain, '--loop'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LC_ALL: 'C' },
    });
    this.child = child;
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => this.take(chunk));
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => {
      if (this.stderr.length < 4096) this.stderr += chunk;
    });
    child.on('exit', (code, signal) => {
      const why = this.stderr.trim().split('\n')[0]?.replace(/^error:\s*/, '') || (signal ? `killed by ${signal}` : `exited ${code}`);
      this.finish(`virsh qemu-monitor-event ended: ${why}`);
    });
    return new Promise((resolve, reject) => {
      child.once('spawn', () => resolve());
      child.once('error', (e) => {
        this.finish(`${virshBinary()}: ${e.message}`);
        reject(e);
      });
    });
  }

  /** Ends virsh (idempotent). */
  close(): void {
    const child = this.child;
    this.child = undefined;
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    this.finish('closed');
  }

  private finish(why: string): void {
    if (this.ended !== undefined) return;
    this.ended = why;
    this.emit('close', why);
  }

  private take(chunk: string): void {
    this.buffered += chunk;
    for (;;) {
      const nl = this.buffered.indexOf('\n');
      if (nl < 0) break;
      const line = this.buffered.slice(0, nl);
      this.buffered = this.buffered.slice(nl + 1);
      this.line(line);
    }
    if (this.buffered.length > MAX_LINE) {
      this.unparsed++;
      this.buffered = '';
    }
  }

  private line(line: string): void {
    if (!line.trim()) return;
    const e = line.length > MAX_LINE ? undefined : parseQemuMonitorEventLine(line);
    if (!e || e.domain !== this.domain) {
      this.unparsed++;
      return;
    }
    this.events++;
    const { domain: _d, ...event } = e;
    this.emit('event', event satisfies QmpEvent);
  }
}
