/**
 * A readable live line per event: local time HH:MM:SS.mmm, type, pid/comm and the event's key facts
 * (summary.ts). Colour only on a TTY and only when NO_COLOR is unset (https://no-color.org).
 */
import type { Writable } from 'node:stream';
import type { EventType, MonitorEvent, Severity } from '../events.js';
import { StreamSink } from './stream-sink.js';
import { eventSummary, processText } from './summary.js';

const RESET = '\x1b[0m';
const COLOURS = { red: '\x1b[31m', boldRed: '\x1b[1;31m', green: '\x1b[32m', yellow: '\x1b[33m', blue: '\x1b[34m', magenta: '\x1b[35m', cyan: '\x1b[36m', dim: '\x1b[2m' };
type Colour = keyof typeof COLOURS;

const SEVERITY_COLOUR: Record<Severity, Colour> = { info: 'dim', low: 'cyan', medium: 'yellow', high: 'red', critical: 'boldRed' };

function typeColour(type: EventType): Colour {
  if (type.startsWith('process-') || type.startsWith('thread-') || type === 'unseen-starts') return 'green';
  if (type.startsWith('module-')) return 'yellow';
  if (type.startsWith('socket-')) return 'cyan';
  if (type.startsWith('file-')) return 'blue';
  if (type === 'cred-change' || type === 'syscall-hook' || type === 'idt-change' || type === 'hidden-process' || type === 'hidden-module') return 'magenta';
  if (type === 'anomaly' || type === 'dropped') return 'yellow';
  return 'dim';
}

/** Local wall-clock time of an ISO timestamp as HH:MM:SS.mmm ("??:??:??.???" when it is not a time). */
export function localClock(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '??:??:??.???';
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

/** Whether colour is wanted on this stream: a TTY, and NO_COLOR unset or empty. */
export function wantsColour(stream: Writable, env: NodeJS.ProcessEnv = process.env): boolean {
  if (env['NO_COLOR'] !== undefined && env['NO_COLOR'] !== '') return false;
  return (stream as Writable & { isTTY?: boolean }).isTTY === true;
}

/** Replaces control characters (guest-controlled text: comm, argv, log lines) so they cannot drive the terminal. */
export function printable(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\x00-\x1f\x7f-\x9f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** One event as one terminal line (no newline). */
export function terminalLine(event: MonitorEvent, colour = false): string {
  const paint = (c: Colour, s: string) => (colour ? `${COLOURS[c]}${s}${RESET}` : s);
  const type = event.type.padEnd(15);
  const who = printable(processText(event)).padEnd(20);
  const summary = printable(eventSummary(event));
  const typeColoured = event.type === 'alert' ? paint(SEVERITY_COLOUR[event.severity ?? 'high'] ?? 'red', type) : paint(typeColour(event.type), type);
  return `${paint('dim', localClock(event.time))} ${typeColoured} ${who} ${summary}`.trimEnd();
}

export class TerminalSink extends StreamSink {
  readonly name = 'terminal';
  private readonly colour: boolean;

  constructor(stream: Writable = process.stdout, options: { colour?: boolean } = {}) {
    super(stream);
    this.colour = options.colour ?? wantsColour(stream);
  }

  protected format(event: MonitorEvent): string {
    return terminalLine(event, this.colour) + '\n';
  }
}
