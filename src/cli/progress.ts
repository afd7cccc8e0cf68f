/**
 * The progress line the CLI draws on stderr: only on a terminal, never with --quiet, and only for an
 * operation still running after `delayMs` (a fast attach prints nothing). One line, redrawn in place at most
 * every `intervalMs`, cleared when the operation ends; nested operations show the innermost (the outer one
 * is redrawn when it ends). Piped or redirected stderr gets nothing, so logs stay clean.
 */
import type { Progress, ProgressRenderer, ProgressUpdate } from '../core/progress.js';
import { monotonicMs } from '../core/clock.js';

/** The part of a stream the renderer needs (process.stderr, or a test's recorder). */
export interface ProgressStream {
  readonly isTTY?: boolean;
  write(s: string): unknown;
}

export interface TerminalProgressOptions {
  readonly quiet?: boolean;
  /** Draw an operation only once it has run this long (default 1000 ms). */
  readonly delayMs?: number;
  /** Least time between two redraws (default 100 ms). */
  readonly intervalMs?: number;
  /** The clock (tests pass their own). */
  readonly now?: () => number;
}

const MiB = 1 << 20;
const BAR = 30;
/** Carriage return, then erase to the end of the line. */
const CLEAR = '\r\x1b[K';

/** One progress line's text (no control characters). */
export function progressLine(u: ProgressUpdate): string {
  const step = u.step !== undefined ? `: ${u.step}` : '';
  if (u.unit === 'steps') return `${u.label}${step}${u.total ? ` (${Math.min(u.done + 1, u.total)}/${u.total})` : ''}`;
  const amount = (n: number) => (u.unit === 'bytes' ? (n / MiB).toFixed(0) : String(n));
  const suffix = u.unit === 'bytes' ? ' MiB' : '';
  if (!u.total) return `${u.label}${step} ${amount(u.done)}${suffix}`;
  const pct = Math.min(100, Math.floor((u.done / u.total) * 100));
  const bar = '#'.repeat(Math.round((pct / 100) * BAR)).padEnd(BAR, '.');
  return `${u.label}${step} [${bar}] ${amount(u.done)}/${amount(u.total)}${suffix} (${pct}%)`;
}

interface Op {
  label: string;
  unit: ProgressUpdate['unit'];
  total: number | undefined;
  done: number;
  step: string | undefined;
  started: number;
  ended: boolean;
}

/** A renderer for `stream`; a silent one when the stream is not a terminal or --quiet was given. */
export function terminalProgress(stream: ProgressStream, options: TerminalProgressOptions = {}): ProgressRenderer {
  const enabled = stream.isTTY === true && options.quiet !== true;
  const delay = options.delayMs ?? 1000;
  const interval = options.intervalMs ?? 100;
  const now = options.now ?? (() => monotonicMs());
  const active: Op[] = [];
  let shown = false;
  let lastDraw = -Infinity;

  const draw = (force: boolean) => {
    const top = active[active.length - 1];
    const t = now();
    // The delay counts from the outermost operation: an inner step of a slow attach shows at once.
    if (!top || t - active[0]!.started < delay) return;
    if (!force && t - lastDraw < interval) return;
    lastDraw = t;
    shown = true;
    stream.write(CLEAR + progressLine({ label: top.label, unit: top.unit, done: top.done, ...(top.total !== undefined ? { total: top.total } : {}), ...(top.step !== undefined ? { step: top.step } : {}) }));
  };

  return {
    begin(label, unit, total): Progress {
      if (!enabled) return { update() {}, step() {}, end() {} };
      const op: Op = { label, unit, total, done: 0, step: undefined, started: now(), ended: false };
      active.push(op);
      return {
        update(done, newTotal) {
          if (op.ended) return;
          op.done = done;
          if (newTotal !== undefined) op.total = newTotal;
          draw(false);
        },
        step(name) {
          if (op.ended) return;
          if (op.step !== undefined) op.done++;
          op.step = name;
          draw(true);
        },
        end() {
          if (op.ended) return;
          op.ended = true;
          const i = active.indexOf(op);
          if (i >= 0) active.splice(i, 1);
          if (shown) {
            stream.write(CLEAR);
            shown = false;
          }
          draw(true);
        },
      };
    },
  };
}
