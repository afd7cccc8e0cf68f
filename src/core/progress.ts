/**
 * Progress of long operations (attaches over slow techniques, full scans, exports, acquire), reported by the
 * layer that does the work and drawn by whoever installed a renderer (the CLI draws it on a terminal's
 * stderr; a library user sees nothing unless it installs one). It lives in core/ so every layer can report
 * without importing the CLI; the default reporter does nothing and costs one call.
 */

/** What a renderer is told about one operation. */
export interface ProgressUpdate {
  /** The operation, e.g. 'attach', 'scan modules', 'acquire'. */
  readonly label: string;
  /** Units done, and out of how many (undefined: unknown, shown as a count). */
  readonly done: number;
  readonly total?: number;
  /** How `done`/`total` read: bytes are shown in MiB. */
  readonly unit: 'bytes' | 'items' | 'steps';
  /** The current step's name, when the operation is a sequence of named steps. */
  readonly step?: string;
}

/** One running operation. `end` is idempotent and must be called on every exit path (try/finally). */
export interface Progress {
  update(done: number, total?: number): void;
  /** Starts the next named step (for operations made of steps: done counts them). */
  step(name: string): void;
  end(): void;
}

/** Draws operations: begin returns the handle the reporting layer updates. */
export interface ProgressRenderer {
  begin(label: string, unit: ProgressUpdate['unit'], total?: number): Progress;
}

const SILENT: Progress = { update() {}, step() {}, end() {} };
const NONE: ProgressRenderer = { begin: () => SILENT };
let current: ProgressRenderer = NONE;

/** Installs the renderer every later `startProgress` goes to; returns the previous one (to restore it). */
export function setProgressRenderer(r: ProgressRenderer | undefined): ProgressRenderer {
  const prev = current;
  current = r ?? NONE;
  return prev;
}

/** Starts reporting one operation to the installed renderer (nothing is drawn when none is installed). */
export function startProgress(label: string, unit: ProgressUpdate['unit'] = 'items', total?: number): Progress {
  return current.begin(label, unit, total);
}

/**
 * Runs `fn` with a progress handle that is ended whatever happens (sync or async). The handle's updates
 * are the caller's business; this only guarantees the line is closed.
 */
export function withProgress<T>(label: string, unit: ProgressUpdate['unit'], total: number | undefined, fn: (p: Progress) => T): T {
  const p = startProgress(label, unit, total);
  let result: T;
  try {
    result = fn(p);
  } catch (e) {
    p.end();
    throw e;
  }
  if (result instanceof Promise) return result.finally(() => p.end()) as T;
  p.end();
  return result;
}
