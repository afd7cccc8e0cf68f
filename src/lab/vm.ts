/**
 * The lab's QEMU launcher: q35, guest RAM in /dev/shm/vmsight-<name> (a
 * shared memory-backend-file, so vmsight can map it), -device vmcoreinfo,
 * serial console to a file, daemonized with a pidfile. QMP: `qmpSocket` (plus
 * optional extra ones) for users and vmsight sources, and `labQmpSocket` for
 * the lab itself, since QEMU serves one client per socket. `labUp` returns
 * once the guest printed VMI-READY (its ground truth is complete).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { LabError, UsageError } from '../core/errors.js';
import { ensureInitramfs, type ExtraModuleFile } from './initramfs.js';
import type { UserlandTool } from './userland.js';
import { DEFAULT_KERNEL, ensureKernel } from './kernels.js';
import {
  checkName,
  cleanup,
  findGuest,
  guestAlive,
  guestDir,
  killQemu,
  readRecord,
  recordPath,
  removeShm,
  shmUser,
  type LabAccel,
  type LabCpu,
  type LabGuest,
} from './guests.js';
import { withLock } from './lock.js';
import { runDir } from './paths.js';
import { monotonicMs } from '../core/clock.js';

export { consolePathOf, findGuest, guestAlive, labList, readConsole, type LabAccel, type LabCpu, type LabGuest, type LabListEntry } from './guests.js';

export interface LabUpOptions {
  /** Guest name (default `lab-<kernel>`); names the state dir, the shm file and the QEMU process. */
  name?: string;
  /** Kernel spec for ensureKernel ('6.1' default, '5.10', '6.12', '6.1-cloud', a package name). */
  kernel?: string;
  /** Guest RAM in MiB (default 256). */
  memory?: number;
  /** 'max' exposes la57 under TCG, so the guest runs 5-level paging. */
  cpu?: LabCpu;
  accel?: LabAccel;
  /** Open a gdbstub on a free 127.0.0.1 port. */
  gdb?: boolean;
  smp?: number;
  /** false appends `nokaslr`. */
  kaslr?: boolean;
  /** Extra kernel command line words. */
  append?: string;
  /** Out-of-tree modules to load after the scenario is up (before the ground truth). */
  extraModules?: readonly ExtraModuleFile[];
  /** Debian userland tools in the initramfs (`bpftool`, `nft`), for tests that ask the guest its own view. */
  tools?: readonly UserlandTool[];
  /** Extra user QMP sockets (qmp-1.sock…) so several clients can hold QMP at once (default 1: two user sockets). */
  extraQmpSockets?: number;
  /**
   * A QEMU as people start it by hand: anonymous RAM (memory-backend-ram: no
   * shm file to map) and no vmcoreinfo device (issue 11). Read it through
   * qmp: or pid:, not lab: (whose shm file does not exist).
   */
  plain?: boolean;
  /** Milliseconds to wait for VMI-READY (default 240000, env VMSIGHT_LAB_TIMEOUT_MS). */
  timeoutMs?: number;
  /**
   * Return the running guest of that name instead of failing when it already
   * runs, if it was booted from the same kernel, initramfs, memory, cpu and
   * smp (otherwise it is stopped and booted afresh).
   */
  reuse?: boolean;
}

const DEFAULT_TIMEOUT_MS = 240_000;

export function qemuBinary(): string {
  return process.env['VMSIGHT_QEMU'] || 'qemu-system-x86_64';
}

/** KVM only when /dev/kvm opens read-write and the CPU advertises hardware virtualization (vmx/svm). */
export function kvmUsable(): boolean {
  try {
    fs.accessSync('/dev/kvm', fs.constants.R_OK | fs.constants.W_OK);
  } catch {
    return false;
  }
  try {
    const flags = fs.readFileSync('/proc/cpuinfo', 'utf8').match(/^flags\s*:(.*)$/m)?.[1] ?? '';
    return /\b(vmx|svm)\b/.test(flags);
  } catch {
    return false;
  }
}

export function chooseAccel(accel: LabAccel = 'auto'): 'tcg' | 'kvm' {
  if (accel === 'tcg') return 'tcg';
  if (accel === 'kvm') {
    if (!fs.existsSync('/dev/kvm')) throw new LabError('--accel kvm asked but /dev/kvm does not exist', { hint: 'use --accel tcg or auto' });
    return 'kvm';
  }
  return kvmUsable() ? 'kvm' : 'tcg';
}

export function defaultGuestName(kernel: string = DEFAULT_KERNEL): string {
  return `lab-${kernel.replace(/^linux-image-/, '').replace(/[^A-Za-z0-9_.-]/g, '_')}`.slice(0, 48);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => (port ? resolve(port) : reject(new Error('no port'))));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function consoleTail(p: string, lines = 12): string {
  try {
    const t = fs.readFileSync(p, 'latin1').replace(/\r/g, '').trimEnd().split('\n');
    return t.slice(-lines).join(' | ');
  } catch {
    return '(no console output)';
  }
}

function runQemu(args: string[], logPath: string): Promise<{ code: number | null; log: string }> {
  return new Promise((resolve, reject) => {
    const fd = fs.openSync(logPath, 'w');
    let child;
    try {
      child = spawn(qemuBinary(), args, { stdio: ['ignore', fd, fd] });
    } finally {
      fs.closeSync(fd);
    }
    child.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') reject(new LabError(`${qemuBinary()} not found`, { hint: 'install qemu-system-x86 (or set VMSIGHT_QEMU)' }));
      else reject(e);
    });
    child.on('exit', (code) => {
      let log = '';
      try {
        log = fs.readFileSync(logPath, 'utf8');
      } catch {
        /* none */
      }
      resolve({ code, log });
    });
  });
}

/** Kills a guest's QEMU (only if it is ours) and waits for it to go. */
interface ConsoleState {
  booted: boolean;
  ready: boolean;
  panic?: string;
}

function scanConsole(text: string): ConsoleState {
  const panic = /Kernel panic - not syncing[^\n]*/.exec(text)?.[0];
  return { booted: text.includes('VMI-BOOTED'), ready: /^VMI-READY/m.test(text), ...(panic ? { panic } : {}) };
}

/** Boots a lab guest and waits until its scenario is up and its ground truth printed. */
export async function labUp(opts: LabUpOptions = {}): Promise<LabGuest> {
  const spec = opts.kernel ?? DEFAULT_KERNEL;
  const name = opts.name ?? defaultGuestName(spec);
  checkName(name);
  const memoryMiB = opts.memory ?? 256;
  if (!Number.isInteger(memoryMiB) || memoryMiB < 128 || memoryMiB > 65536) throw new UsageError(`--memory ${opts.memory} must be an integer MiB between 128 and 65536`);
  const smp = opts.smp ?? 1;
  if (!Number.isInteger(smp) || smp < 1 || smp > 64) throw new UsageError(`--smp ${opts.smp} must be between 1 and 64`);
  const cpu: LabCpu = opts.cpu ?? 'default';
  if (cpu !== 'default' && cpu !== 'max') throw new UsageError(`--cpu ${String(cpu)}: use default or max`);
  const accel = chooseAccel(opts.accel ?? 'auto');
  const extraQmp = opts.extraQmpSockets ?? 1;
  if (!Number.isInteger(extraQmp) || extraQmp < 0 || extraQmp > 16) throw new UsageError(`extraQmpSockets ${extraQmp} must be between 0 and 16`);
  const append = ['console=ttyS0', 'panic=-1', 'loglevel=4', ...(opts.kaslr === false ? ['nokaslr'] : []), ...(opts.append ? [opts.append] : [])].join(' ');
  const timeoutMs = opts.timeoutMs ?? (Number(process.env['VMSIGHT_LAB_TIMEOUT_MS']) || DEFAULT_TIMEOUT_MS);

  fs.mkdirSync(runDir(), { recursive: true, mode: 0o700 });
  return withLock(path.join(runDir(), `.${name}.lock`), async () => {
    const existing = findGuest(name);
    if (existing && !opts.reuse) {
      throw new LabError(`lab guest '${name}' already runs (pid ${existing.pid})`, { hint: `use it, or stop it with: vmsight lab down ${name}` });
    }
    const shmPath = `/dev/shm/vmsight-${name}`;
    const other = existing ? undefined : shmUser(shmPath);
    if (other !== undefined) {
      throw new LabError(`${shmPath} is the RAM of another running QEMU (pid ${other})`, {
        hint: 'a guest of this name runs under another VMSIGHT_RUN directory; pick another name',
      });
    }
    const kernel = await ensureKernel(spec);
    const initrd = await ensureInitramfs({ kernel, ...(opts.extraModules ? { extraModules: opts.extraModules } : {}), ...(opts.tools ? { tools: opts.tools } : {}) });
    if (existing) {
      // Reuse only a guest booted from exactly what we would boot now (same kernel, image and shape).
      const same =
        existing.initramfsPath === initrd.path &&
        existing.kernel.package === kernel.package &&
        existing.kernel.version === kernel.version &&
        existing.memoryMiB === memoryMiB &&
        existing.cpu === cpu &&
        existing.smp === smp &&
        existing.append === append &&
        existing.execSocket !== undefined &&
        (existing.plain ?? false) === (opts.plain ?? false) &&
        (existing.qmpSockets?.length ?? 1) >= 1 + extraQmp &&
        (!opts.gdb || existing.gdbPort !== undefined);
      if (same) return existing;
      await killQemu(existing);
      cleanup(existing);
    }

    const stateDir = guestDir(name);
    fs.rmSync(stateDir, { recursive: true, force: true });
    fs.mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    const qmpSocket = path.join(stateDir, 'qmp.sock');
    const qmpSockets = [qmpSocket, ...Array.from({ length: extraQmp }, (_, i) => path.join(stateDir, `qmp-${i + 1}.sock`))];
    const labQmpSocket = path.join(stateDir, 'lab-qmp.sock');
    if (Buffer.byteLength(labQmpSocket) > 100) {
      throw new LabError(`socket path ${labQmpSocket} is too long for a unix socket`, { hint: 'set VMSIGHT_RUN to a shorter directory' });
    }
    const execSocket = path.join(stateDir, 'exec.sock');
    const consolePath = path.join(stateDir, 'console.log');
    const pidFile = path.join(stateDir, 'qemu.pid');
    removeShm(shmPath);

    let lastError = '';
    for (let attempt = 0; attempt < 3; attempt++) {
      const gdbPort = opts.gdb ? await freePort() : undefined;
      const args = [
        '-name', `vmsight-${name}`,
        '-accel', accel,
        ...(cpu === 'max' ? ['-cpu', 'max'] : accel === 'kvm' ? ['-cpu', 'host'] : []),
        '-smp', String(smp),
        '-m', `${memoryMiB}M`,
        '-no-reboot',
        '-kernel', kernel.vmlinuzPath,
        '-initrd', initrd.path,
        '-append', append,
        '-display', 'none',
        '-serial', `file:${consolePath}`,
        // COM2 (/dev/ttyS1 in the guest) carries `lab exec` (exec.ts), apart from the ground-truth console.
        '-serial', `unix:${execSocket},server=on,wait=off`,
        '-monitor', 'none',
        ...qmpSockets.flatMap((sock) => ['-qmp', `unix:${sock},server=on,wait=off`]),
        '-qmp', `unix:${labQmpSocket},server=on,wait=off`,
        ...(gdbPort ? ['-gdb', `tcp:127.0.0.1:${gdbPort}`] : []),
        '-pidfile', pidFile,
        '-daemonize',
        ...(opts.plain
          ? ['-object', `memory-backend-ram,id=mem,size=${memoryMiB}M`]
          : ['-device', 'vmcoreinfo', '-object', `memory-backend-file,id=mem,size=${memoryMiB}M,mem-path=${shmPath},share=on`]),
        '-machine', 'q35,memory-backend=mem',
      ];
      const t0 = monotonicMs();
      const started = new Date().toISOString();
      const { code, log } = await runQemu(args, path.join(stateDir, 'qemu.log'));
      if (code !== 0) {
        lastError = log.trim().split('\n').slice(-2).join(' | ') || `exit code ${code}`;
        removeShm(shmPath);
        if (gdbPort && /address already in use|Failed to bind/i.test(log)) continue; // the port got taken: pick another
        throw new LabError(`QEMU failed to start guest '${name}': ${lastError}`, { hint: `command line in ${path.join(stateDir, 'cmdline.txt')}` });
      }
      fs.writeFileSync(path.join(stateDir, 'cmdline.txt'), [qemuBinary(), ...args].map((a) => (/[\s']/.test(a) ? `'${a}'` : a)).join(' ') + '\n');
      const pid = Number.parseInt(fs.readFileSync(pidFile, 'utf8'), 10);
      const guest: LabGuest = {
        name,
        pid,
        qmpSocket,
        qmpSockets,
        labQmpSocket,
        execSocket,
        shmPath,
        memoryMiB,
        cpu,
        accel,
        smp,
        kernel: {
          spec,
          package: kernel.package,
          version: kernel.version,
          release: kernel.release,
          vmlinuzPath: kernel.vmlinuzPath,
          configPath: kernel.configPath,
          modulesDir: kernel.modulesDir,
        },
        initramfsPath: initrd.path,
        modules: initrd.modules,
        append,
        ...(gdbPort ? { gdbPort } : {}),
        consolePath,
        stateDir,
        started,
        qemuArgs: args,
        ...(opts.plain ? { plain: true } : {}),
      };
      fs.writeFileSync(recordPath(name), JSON.stringify(guest, null, 2) + '\n');
      try {
        await waitReady(guest, t0, timeoutMs);
      } catch (e) {
        await killQemu(guest);
        cleanup(guest, true);
        throw e;
      }
      fs.writeFileSync(recordPath(name), JSON.stringify(guest, null, 2) + '\n');
      return guest;
    }
    throw new LabError(`QEMU failed to start guest '${name}': ${lastError}`);
  });
}

async function waitReady(g: LabGuest, t0: number, timeoutMs: number): Promise<void> {
  const deadline = t0 + timeoutMs;
  let offset = 0;
  let text = '';
  for (;;) {
    // Read only what was appended since the last poll.
    try {
      const fd = fs.openSync(g.consolePath, 'r');
      try {
        const size = fs.fstatSync(fd).size;
        if (size > offset) {
          const buf = Buffer.alloc(size - offset);
          const n = fs.readSync(fd, buf, 0, buf.length, offset);
          text += buf.toString('latin1', 0, n);
          offset += n;
        }
      } finally {
        fs.closeSync(fd);
      }
    } catch {
      /* not created yet */
    }
    const st = scanConsole(text);
    if (st.booted && g.bootedMs === undefined) g.bootedMs = Math.round(monotonicMs() - t0);
    if (st.ready) {
      g.readyMs = Math.round(monotonicMs() - t0);
      return;
    }
    if (st.panic) throw new LabError(`guest '${g.name}' kernel panicked: ${st.panic}`, { hint: `console: ${consoleTail(g.consolePath)}` });
    if (!guestAlive(g)) {
      throw new LabError(`QEMU of guest '${g.name}' (pid ${g.pid}) exited before VMI-READY`, { hint: `console tail: ${consoleTail(g.consolePath)}` });
    }
    if (monotonicMs() > deadline) {
      throw new LabError(`guest '${g.name}' not ready after ${Math.round(timeoutMs / 1000)} s`, {
        hint: `console tail: ${consoleTail(g.consolePath)} (set VMSIGHT_LAB_TIMEOUT_MS for a slower machine)`,
      });
    }
    await sleep(100);
  }
}

/** Stops a guest: kills its QEMU (only after checking the pid is ours), removes its shm file and state. */
export async function labDown(name: string): Promise<boolean> {
  checkName(name);
  return withLock(path.join(runDir(), `.${name}.lock`), async () => {
    const g = readRecord(name);
    if (!g) return false;
    await killQemu(g);
    if (guestAlive(g)) throw new LabError(`could not stop QEMU pid ${g.pid} of guest '${name}'`, { hint: `kill -9 ${g.pid}` });
    cleanup(g);
    return true;
  });
}

/** The guest's serial console log so far. */