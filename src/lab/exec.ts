/**
 * Runs commands inside a lab guest (lab and test tooling only: introspection
 * itself stays agentless). The channel is the guest's second serial port,
 * /dev/ttyS1, which QEMU serves as the unix socket `execSocket` in the
 * guest's state dir; the guest side is the vmi-exec agent in
 * scenario/vmi-helper.c.
 *
 * Why a serial port and not virtio-serial: the 8250 UART is built into every
 * Debian kernel, while virtio_console is a module that needs virtio and
 * virtio_ring loaded first (modules on Debian 6.1) and would change the
 * module list and PCI devices every plugin test compares with. QEMU does not
 * pace its UART by baud rate, so throughput is bounded by the 16-byte FIFO
 * interrupts (measured in the README), plenty for modules, scripts and logs.
 *
 * One session at a time per guest (a lock in the state dir; QEMU also serves
 * one client per socket). A session starts with a reset frame, so a command
 * left running by a host process that died is killed before the next runs.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { LabError } from '../core/errors.js';
import { encodeFrame, encodeU32Frame, FrameDecoder, type Frame } from './exec-frame.js';
import { findGuest, type LabGuest } from './guests.js';
import { withLock } from './lock.js';
import { monotonicMs } from '../core/clock.js';

export interface LabExecOptions {
  /** Bytes for the command's stdin (binary-safe); empty when absent. */
  stdin?: Uint8Array | AsyncIterable<Uint8Array>;
  /** Kill the guest command (SIGKILL to its process group) after this many milliseconds. */
  timeoutMs?: number;
  /** Receive stdout as it arrives instead of collecting it in the result. */
  onStdout?: (chunk: Buffer) => void;
  onStderr?: (chunk: Buffer) => void;
  /** Aborting kills the guest command, like a timeout. */
  signal?: AbortSignal;
  /** Kill the command and fail once it has sent more stdout and stderr than this (default 256 MiB): the guest is not trusted. */
  maxOutputBytes?: number;
}

export interface LabExecResult {
  stdout: Buffer;
  stderr: Buffer;
  /** The command's exit code, or null when a signal killed it. */
  exitCode: number | null;
  /** The signal that killed it, or null. */
  signal: number | null;
  /** True when timeoutMs (or the abort signal) had the command killed. */
  timedOut: boolean;
  /** Guest pid of the command. */
  pid: number;
}

export interface LabSpawnResult {
  /** Guest pid of the background command (re-parented to PID 1). */
  pid: number;
  /** Guest file holding its stdout and stderr. */
  logPath: string;
}

/** Milliseconds to wait for the agent to answer a reset, or to report an exit after a kill. */
const AGENT_ANSWER_MS = 20_000;
const STDIN_CHUNK = 16 * 1024;
const SIGKILL = 9;
const FLAG_DETACH = 1;
const DEFAULT_MAX_OUTPUT = 256 * 1024 * 1024;

function resolveGuest(target: LabGuest | string): LabGuest {
  const g = typeof target === 'string' ? findGuest(target) : target;
  if (!g) throw new LabError(`no running lab guest named '${String(target)}'`, { hint: "see 'vmsight lab list'" });
  if (!g.execSocket || !fs.existsSync(g.execSocket)) {
    throw new LabError(`lab guest '${g.name}' has no exec channel`, { hint: `it was booted by an older vmsight: restart it (vmsight lab down ${g.name}; vmsight lab up)` });
  }
  return g;
}

function checkArgv(argv: readonly string[]): void {
  if (argv.length === 0 || !argv[0]) throw new LabError('lab exec needs a command to run', { hint: 'e.g. vmsight lab exec NAME -- cat /proc/modules' });
  for (const a of argv) if (a.includes('\0')) throw new LabError('a command argument holds a NUL byte, which argv cannot carry');
}

/** A connection to the agent: frames in order, or the reason the channel failed. */
class Session {
  private readonly frames: Frame[] = [];
  private wake: (() => void) | undefined;
  private failure: Error | undefined;
  private readonly decoder = new FrameDecoder();

  private constructor(
    private readonly sock: net.Socket,
    readonly guest: LabGuest,
  ) {
    sock.on('data', (chunk: Buffer) => {
      for (const f of this.decoder.push(chunk)) this.frames.push(f);
      this.wake?.();
    });
    const fail = (why: string) => {
      this.failure ??= new LabError(`exec channel of guest '${guest.name}' ${why}`, { hint: `is the guest still running? (vmsight lab list)` });
      this.wake?.();
    };
    sock.on('error', (e) => fail(`failed: ${e.message}`));
    sock.on('close', () => fail('closed'));
  }

  static open(guest: LabGuest): Promise<Session> {
    return new Promise((resolve, reject) => {
      const sock = net.connect(guest.execSocket!);
      sock.once('connect', () => {
        sock.removeListener('error', reject);
        resolve(new Session(sock, guest));
      });
      sock.once('error', (e) =>
        reject(new LabError(`cannot connect to the exec channel of guest '${guest.name}': ${e.message}`, { hint: 'is another vmsight lab exec holding it?', cause: e })),
      );
    });
  }

  write(frame: Buffer): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve) => {
      if (this.sock.write(frame)) resolve();
      else this.sock.once('drain', resolve);
    });
  }

  /** The next frame, or undefined once `deadline` (monotonicMs() ms) passes. */
  async next(deadline = Infinity): Promise<Frame | undefined> {
    for (;;) {
      const f = this.frames.shift();
      if (f) return f;
      if (this.failure) throw this.failure;
      const wait = deadline - monotonicMs();
      if (wait <= 0) return undefined;
      await new Promise<void>((resolve) => {
        const timer = Number.isFinite(wait) ? setTimeout(resolve, wait) : undefined;
        this.wake = () => {
          if (timer) clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }

  /** Decoder complaints since the last call (bytes that were not frames). */
  takeErrors(): string[] {
    return this.decoder.errors.splice(0);
  }

  /** Kills whatever a dead host process left running and waits for the agent to confirm. */
  async reset(): Promise<void> {
    const nonce = crypto.randomBytes(4).readUInt32LE(0);
    await this.write(encodeFrame('A', nonce));
    const deadline = monotonicMs() + AGENT_ANSWER_MS;
    for (;;) {
      const f = await this.next(deadline);
      if (!f) {
        throw new LabError(`exec agent of guest '${this.guest.name}' did not answer within ${AGENT_ANSWER_MS / 1000} s`, {
          hint: `the guest may be paused or hung: check 'vmsight lab console ${this.guest.name}'`,
        });
      }
      if (f.type === 'a' && f.id === nonce) break; // what came before is left over from an earlier session
    }
    this.takeErrors();
  }

  close(): void {
    this.sock.destroy();
  }
}

async function withSession<T>(guest: LabGuest, fn: (s: Session) => Promise<T>): Promise<T> {
  return withLock(path.join(guest.stateDir, 'exec.lock'), async () => {
    const s = await Session.open(guest);
    try {
      await s.reset();
      return await fn(s);
    } finally {
      s.close();
    }
  });
}

function requestFrame(id: number, flags: number, argv: readonly string[]): Buffer {
  const head = Buffer.alloc(4);
  head.writeUInt32LE(flags, 0);
  return encodeFrame('R', id, Buffer.concat([head, ...argv.map((a) => Buffer.from(`${a}\0`, 'utf8'))]));
}

function newId(): number {
  return (crypto.randomBytes(4).readUInt32LE(0) | 1) >>> 0;
}

function agentFailure(g: LabGuest, f: Frame): LabError {
  return new LabError(`exec agent of guest '${g.name}': ${f.body.toString('utf8')}`);
}

async function* chunksOf(input: Uint8Array | AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  const sources = input instanceof Uint8Array ? [input] : input;
  for await (const c of sources) {
    for (let o = 0; o < c.length; o += STDIN_CHUNK) yield c.subarray(o, Math.min(c.length, o + STDIN_CHUNK));
  }
}

/** Runs `argv` in the guest (PATH=/bin; use ['sh', '-c', …] for a shell line) and returns its output and status. */
export async function labExec(target: LabGuest | string, argv: readonly string[], opts: LabExecOptions = {}): Promise<LabExecResult> {
  const guest = resolveGuest(target);
  checkArgv(argv);
  if (opts.timeoutMs !== undefined && !(opts.timeoutMs > 0)) throw new LabError(`timeout ${opts.timeoutMs} ms must be positive`);
  return withSession(guest, async (s) => {
    const id = newId();
    await s.write(requestFrame(id, 0, argv));
    const startDeadline = monotonicMs() + AGENT_ANSWER_MS;
    let start: Frame | undefined;
    while (!start) {
      const f = await s.next(startDeadline);
      if (!f) throw new LabError(`exec agent of guest '${guest.name}' did not start '${argv[0]}' within ${AGENT_ANSWER_MS / 1000} s`);
      if (f.id !== id) continue; // F id 0: bytes of an abandoned session the agent skipped
      if (f.type === 'F') throw agentFailure(guest, f);
      if (f.type !== 'S' || f.body.length < 8) throw new LabError(`exec agent of guest '${guest.name}' answered a request with a '${f.type}' frame`);
      start = f;
    }
    const pid = start.body.readUInt32LE(0);
    let credit = start.body.readUInt32LE(4);
    let creditWake: (() => void) | undefined;
    let finished = false;
    const out: Buffer[] = [];
    const err: Buffer[] = [];

    // stdin goes out no faster than the agent grants credit, so the guest's tty buffers never overflow.
    let sent = 0;
    const pump = (async () => {
      if (opts.stdin) {
        for await (const chunk of chunksOf(opts.stdin)) {
          let rest = chunk;
          while (rest.length && !finished) {
            while (credit === 0 && !finished) await new Promise<void>((r) => (creditWake = r));
            if (finished) return;
            const n = Math.min(credit, rest.length);
            credit -= n;
            await s.write(encodeFrame('I', id, rest.subarray(0, n)));
            sent += n;
            rest = rest.subarray(n);
          }
          if (finished) return;
        }
      }
      // The end of stdin carries its length: the agent kills the command rather than run it on damaged input.
      if (!finished) await s.write(encodeU32Frame('Z', id, sent % 2 ** 32, Math.floor(sent / 2 ** 32)));
    })();
    pump.catch(() => undefined); // a failed pump shows as a failed session below

    let timedOut = false;
    let killDeadline = Infinity;
    const maxOutput = opts.maxOutputBytes ?? DEFAULT_MAX_OUTPUT;
    let outputBytes = 0;
    let overflowed = false;
    const kill = () => {
      if (timedOut || finished) return;
      timedOut = true;
      killDeadline = monotonicMs() + AGENT_ANSWER_MS;
      s.write(encodeU32Frame('K', id, SIGKILL)).catch(() => undefined);
    };
    const timer = opts.timeoutMs !== undefined ? setTimeout(kill, opts.timeoutMs) : undefined;
    opts.signal?.addEventListener('abort', kill, { once: true });
    try {
      for (;;) {
        const f = await s.next(killDeadline);
        if (!f) throw new LabError(`guest '${guest.name}' did not report the end of pid ${pid} after it was killed`, { hint: 'the guest may be hung' });
        // After the reset every byte from the guest belongs to this session, so a frame the decoder had
        // to skip is lost output. Bytes the agent skipped (F with id 0) are left-overs of an abandoned
        // session; damage to this command's stdin is caught by the length check at its end.
        const bad = s.takeErrors();
        if (bad.length) throw new LabError(`output of '${argv[0]}' from guest '${guest.name}' damaged in transit: ${bad.join('; ')}`);
        if (f.type === 'F' && f.id === id) throw agentFailure(guest, f);
        if (f.id !== id) continue;
        if (f.type === 'O' || f.type === 'E') {
          outputBytes += f.body.length;
          if (outputBytes > maxOutput && !overflowed) {
            overflowed = true;
            kill();
          }
          if (overflowed) continue;
          if (f.type === 'O') (opts.onStdout ? opts.onStdout(f.body) : out.push(f.body));
          else opts.onStderr ? opts.onStderr(f.body) : err.push(f.body);
        }
        else if (f.type === 'C' && f.body.length >= 4) {
          credit += f.body.readUInt32LE(0);
          creditWake?.();
        } else if (f.type === 'X' && f.body.length >= 8) {
          if (overflowed) {
            throw new LabError(`'${argv[0]}' in guest '${guest.name}' sent more than ${maxOutput} bytes of output and was killed`, {
              hint: 'redirect its output to a file in the guest, or raise maxOutputBytes',
            });
          }
          const signaled = f.body.readUInt32LE(0) === 1;
          const value = f.body.readUInt32LE(4);
          return {
            stdout: Buffer.concat(out),
            stderr: Buffer.concat(err),
            exitCode: signaled ? null : value,
            signal: signaled ? value : null,
            timedOut,
            pid,
          };
        }
      }
    } finally {
      finished = true;
      creditWake?.();
      if (timer) clearTimeout(timer);
      opts.signal?.removeEventListener('abort', kill);
    }
  });
}

/**
 * Starts `argv` in the background in the guest (its own session, stdin
 * /dev/null, stdout and stderr to /tmp/vmi-exec/<pid>.log) and returns its
 * pid at once. Stop it with labExec(g, ['kill', String(pid)]).
 */
export async function labSpawn(target: LabGuest | string, argv: readonly string[]): Promise<LabSpawnResult> {
  const guest = resolveGuest(target);
  checkArgv(argv);
  return withSession(guest, async (s) => {
    const id = newId();
    await s.write(requestFrame(id, FLAG_DETACH, argv));
    const deadline = monotonicMs() + AGENT_ANSWER_MS;
    for (;;) {
      const f = await s.next(deadline);
      if (!f) throw new LabError(`exec agent of guest '${guest.name}' did not start '${argv[0]}' within ${AGENT_ANSWER_MS / 1000} s`);
      if (f.type === 'F' && f.id === id) throw agentFailure(guest, f);
      if (f.type === 'D' && f.id === id && f.body.length >= 4) {
        const pid = f.body.readUInt32LE(0);
        return { pid, logPath: `/tmp/vmi-exec/${pid}.log` };
      }
    }
  });
}

/** labExec that throws unless the command exits 0; returns its stdout as text. */
export async function labRun(target: LabGuest | string, argv: readonly string[], opts: LabExecOptions = {}): Promise<string> {
  const r = await labExec(target, argv, opts);
  if (r.exitCode !== 0) {
    const how = r.timedOut ? 'timed out' : r.signal !== null ? `was killed by signal ${r.signal}` : `exited ${r.exitCode}`;
    const why = r.stderr.toString('utf8').trim().split('\n').slice(-1)[0] ?? '';
    throw new LabError(`guest command '${argv.join(' ')}' ${how}${why ? `: ${why}` : ''}`);
  }
  return r.stdout.toString('utf8');
}
