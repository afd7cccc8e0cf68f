/**
 * The lab's registry of guests: one state directory per guest in the runtime
 * dir holding guest.json (the LabGuest record), QMP sockets, the console log
 * and QEMU's pidfile. A record is trusted only while its pid is still the
 * QEMU that was started for it (its command line names our pidfile); stale
 * records are cleaned, and only our own /dev/shm/vmsight-* files are removed.
 */
import fs from 'node:fs';
import path from 'node:path';
import { LabError, UsageError } from '../core/errors.js';
import { GUEST_NAME_RE, runDir } from './paths.js';

export type LabCpu = 'default' | 'max';
export type LabAccel = 'auto' | 'tcg' | 'kvm';

export interface LabGuest {
  name: string;
  pid: number;
  /** QMP socket for users and vmsight sources. */
  qmpSocket: string;
  /** Every user QMP socket: qmpSocket first, then the extra ones. QEMU serves one client per socket. */
  qmpSockets: string[];
  /** QMP socket reserved for the lab (shutdown, status). */
  labQmpSocket: string;
  /** The guest's /dev/ttyS1 as a unix socket: the channel of `lab exec` (absent in records of older guests). */
  execSocket?: string;
  /** Guest RAM file (memory-backend-file, share=on). */
  shmPath: string;
  memoryMiB: number;
  cpu: LabCpu;
  accel: 'tcg' | 'kvm';
  smp: number;
  kernel: { spec: string; package: string; version: string; release: string; vmlinuzPath: string; configPath: string; modulesDir: string };
  initramfsPath: string;
  /** Modules /init loads, in order. */
  modules: string[];
  append: string;
  gdbPort?: number;
  consolePath: string;
  stateDir: string;
  /** ISO time QEMU was started. */
  started: string;
  /** Milliseconds from exec of QEMU to VMI-BOOTED and VMI-READY on the console. */
  bootedMs?: number;
  readyMs?: number;
  qemuArgs: string[];
  /** Booted with anonymous RAM and no vmcoreinfo device (LabUpOptions.plain): no shm file. */
  plain?: boolean;
}

export interface LabListEntry {
  guest: LabGuest;
  alive: boolean;
}

export function guestDir(name: string): string {
  return path.join(runDir(), name);
}

export function recordPath(name: string): string {
  return path.join(guestDir(name), 'guest.json');
}

export function checkName(name: string): void {
  if (!GUEST_NAME_RE.test(name)) throw new UsageError(`guest name '${name}' is not allowed`, { hint: 'use letters, digits, ., _ and -, at most 48' });
}

/** Reads a guest record without checking whether it runs. */
export function readRecord(name: string): LabGuest | undefined {
  try {
    return JSON.parse(fs.readFileSync(recordPath(name), 'utf8')) as LabGuest;
  } catch {
    return undefined;
  }
}

/** True when `pid` runs and is the QEMU we started for this record (its cmdline names our pidfile). */
export function guestAlive(g: Pick<LabGuest, 'pid' | 'stateDir'>): boolean {
  if (!Number.isInteger(g.pid) || g.pid <= 1) return false;
  let cmdline: string;
  try {
    cmdline = fs.readFileSync(`/proc/${g.pid}/cmdline`, 'latin1');
  } catch {
    return false;
  }
  return cmdline.split('\0').includes(path.join(g.stateDir, 'qemu.pid'));
}

/** The pid of a live QEMU whose command line uses `shmPath` as guest RAM, if any (e.g. one started from another VMSIGHT_RUN). */
export function shmUser(shmPath: string): number | undefined {
  let pids: string[] = [];
  try {
    pids = fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p));
  } catch {
    return undefined;
  }
  const needle = `mem-path=${shmPath},`;
  for (const p of pids) {
    try {
      if (fs.readFileSync(`/proc/${p}/cmdline`, 'latin1').includes(needle)) return Number(p);
    } catch {
      /* gone or not ours to read */
    }
  }
  return undefined;
}

export function removeShm(shmPath: string): void {
  // Only ever our own files.
  if (path.dirname(shmPath) === '/dev/shm' && path.basename(shmPath).startsWith('vmsight-')) fs.rmSync(shmPath, { force: true });
}

export function cleanup(g: Pick<LabGuest, 'shmPath' | 'stateDir'>, keepConsole = false): void {
  removeShm(g.shmPath);
  if (keepConsole) {
    let files: string[] = [];
    try {
      files = fs.readdirSync(g.stateDir);
    } catch {
      /* gone */
    }
    for (const f of files) if (f === 'guest.json' || f === 'qemu.pid' || f.endsWith('.sock')) fs.rmSync(path.join(g.stateDir, f), { force: true });
  } else fs.rmSync(g.stateDir, { recursive: true, force: true });
}

/** The running guest of that name, or undefined (a stale record is cleaned). */
export function findGuest(name: string): LabGuest | undefined {
  checkName(name);
  const g = readRecord(name);
  if (!g) return undefined;
  if (guestAlive(g)) return g;
  cleanup(g);
  return undefined;
}

/** Every guest with a record; dead ones are cleaned and reported with alive=false. */
export function labList(): LabListEntry[] {
  let names: string[] = [];
  try {
    names = fs.readdirSync(runDir());
  } catch {
    return [];
  }
  const out: LabListEntry[] = [];
  for (const n of names.sort()) {
    if (!GUEST_NAME_RE.test(n)) continue;
    const g = readRecord(n);
    if (!g) continue;
    const alive = guestAlive(g);
    if (!alive) cleanup(g);
    out.push({ guest: g, alive });
  }
  return out;
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function killQemu(g: Pick<LabGuest, 'pid' | 'stateDir'>): Promise<void> {
  if (!guestAlive(g)) return;
  try {
    process.kill(g.pid, 'SIGTERM');
  } catch {
    return;
  }
  for (let i = 0; i < 50 && guestAlive(g); i++) await sleep(100);
  if (guestAlive(g)) {
    try {
      process.kill(g.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
    for (let i = 0; i < 50 && guestAlive(g); i++) await sleep(100);
  }
}

export function readConsole(g: Pick<LabGuest, 'consolePath'>): string {
  try {
    return fs.readFileSync(g.consolePath, 'latin1').replace(/\r/g, '');
  } catch (e) {
    throw new LabError(`cannot read console log ${g.consolePath}: ${(e as Error).message}`);
  }
}

/** The console path of a guest by name, also for guests whose boot failed (their log is kept). */
export function consolePathOf(name: string): string {
  checkName(name);
  return path.join(guestDir(name), 'console.log');
}
