/**
 * `vmsight lab up|down|list|console|truth|kernel`: the built-in guest lab.
 */
import fs from 'node:fs';
import { LabError, UsageError } from '../../core/errors.js';
import {
  consolePathOf,
  defaultGuestName,
  ensureKernel,
  findGuest,
  labDown,
  labExec,
  labList,
  labSpawn,
  labUp,
  libvirtLabDown,
  libvirtLabUp,
  readGroundTruth,
  readLibvirtRecord,
  USERLAND_TOOLS,
  type UserlandTool,
  type LibvirtLabBacking,
  type LabAccel,
  type LabCpu,
  type LabGuest,
} from '../../lab/index.js';
import type { Command, ParsedArgs } from '../command.js';
import { toJson, type Output } from '../render.js';

const USAGE = `up [name] [--kernel 6.1|5.10|6.12|<spec>] [--memory MiB] [--smp N] [--cpu default|max] [--accel auto|tcg|kvm] [--gdb] [--no-kaslr] [--tools bpftool,nft] [--plain]
                                   (--plain: anonymous RAM, no vmcoreinfo device, as a QEMU vmsight did not set up)
       lab up NAME --libvirt [--backing anon|memfd|file] [--no-acpi] [--on-reboot destroy|restart] [--uri URI]
                                   (the same guest as a transient libvirt domain; read it as libvirt:NAME)
       lab down [name|--all]
       lab list
       lab console [name] [--follow]
       lab truth [name]            (the guest's ground truth as JSON)
       lab kernel [spec]           (download and describe a Debian kernel)
       lab exec NAME [--timeout SECONDS] [--detach] -- CMD [ARG...]
                                   (run CMD in the guest: stdin passed through, exit code returned;
                                    --detach starts it in the background and prints its pid)`;

function str(args: ParsedArgs, key: string): string | undefined {
  const v = args.values[key];
  return typeof v === 'string' ? v : undefined;
}

function intOption(args: ParsedArgs, key: string): number | undefined {
  const s = str(args, key);
  if (s === undefined) return undefined;
  if (!/^\d+$/.test(s)) throw new UsageError(`--${key} ${s}: expected a positive integer`);
  return Number(s);
}

/** The named guest, or the only running one when no name is given. */
function pickGuest(name: string | undefined): LabGuest {
  if (name) {
    const g = findGuest(name);
    if (!g) throw new LabError(`no running lab guest named '${name}'`, { hint: "see 'vmsight lab list'" });
    return g;
  }
  const alive = labList().filter((e) => e.alive);
  if (alive.length === 1) return alive[0]!.guest;
  if (alive.length === 0) throw new LabError('no lab guest is running', { hint: "start one with 'vmsight lab up'" });
  throw new UsageError(`${alive.length} lab guests run: name one (${alive.map((e) => e.guest.name).join(', ')})`);
}

function guestFacts(g: LabGuest): Record<string, unknown> {
  return {
    name: g.name,
    pid: g.pid,
    kernel: g.kernel.release,
    package: `${g.kernel.package} ${g.kernel.version}`,
    memoryMiB: g.memoryMiB,
    cpu: g.cpu,
    accel: g.accel,
    shm: g.shmPath,
    qmp: g.qmpSocket,
    labQmp: g.labQmpSocket,
    exec: g.execSocket,
    gdb: g.gdbPort ? `127.0.0.1:${g.gdbPort}` : undefined,
    console: g.consolePath,
    started: g.started,
    readyMs: g.readyMs,
  };
}

async function upLibvirt(args: ParsedArgs, out: Output): Promise<void> {
  const name = args.positionals[1];
  if (!name) throw new UsageError('lab up --libvirt needs a domain name', { hint: 'vmsight lab up web01 --libvirt --backing memfd' });
  const backing = str(args, 'backing') ?? 'anon';
  if (!['anon', 'memfd', 'file'].includes(backing)) throw new UsageError(`--backing ${backing}: use anon, memfd or file`);
  const memory = intOption(args, 'memory');
  const uri = str(args, 'uri');
  const onReboot = str(args, 'on-reboot');
  if (onReboot !== undefined && onReboot !== 'destroy' && onReboot !== 'restart') throw new UsageError(`--on-reboot ${onReboot}: use destroy or restart`);
  const g = await libvirtLabUp({
    name,
    backing: backing as LibvirtLabBacking,
    acpi: args.values['no-acpi'] !== true,
    ...(onReboot ? { onReboot } : {}),
    ...(str(args, 'kernel') ? { kernel: str(args, 'kernel')! } : {}),
    ...(memory !== undefined ? { memory } : {}),
    ...(uri ? { uri } : {}),
  });
  out.record({ ...g, kernel: g.kernel.release, source: `libvirt:${g.name}${uri ? `?uri=${uri}` : ''}` });
}

async function up(args: ParsedArgs, out: Output): Promise<void> {
  if (args.values['libvirt'] === true) return upLibvirt(args, out);
  if (args.values['backing'] !== undefined || args.values['no-acpi'] === true || args.values['on-reboot'] !== undefined)
    throw new UsageError('--backing, --no-acpi and --on-reboot go with --libvirt');
  const kernel = str(args, 'kernel') ?? '6.1';
  const cpu = str(args, 'cpu') ?? 'default';
  if (cpu !== 'default' && cpu !== 'max') throw new UsageError(`--cpu ${cpu}: use default or max`);
  const accel = str(args, 'accel') ?? 'auto';
  if (!['auto', 'tcg', 'kvm'].includes(accel)) throw new UsageError(`--accel ${accel}: use auto, tcg or kvm`);
  const memory = intOption(args, 'memory');
  const smp = intOption(args, 'smp');
  const name = args.positionals[1] ?? defaultGuestName(kernel);
  const tools = (str(args, 'tools') ?? '').split(',').filter(Boolean);
  const unknownTool = tools.find((t) => !(t in USERLAND_TOOLS));
  if (unknownTool !== undefined) throw new UsageError(`--tools ${unknownTool}: use ${Object.keys(USERLAND_TOOLS).join(', ')} (comma-separated)`);
  const g = await labUp({
    name,
    kernel,
    cpu: cpu as LabCpu,
    accel: accel as LabAccel,
    gdb: args.values['gdb'] === true,
    ...(memory !== undefined ? { memory } : {}),
    ...(smp !== undefined ? { smp } : {}),
    ...(args.values['no-kaslr'] === true ? { kaslr: false } : {}),
    ...(tools.length ? { tools: tools as UserlandTool[] } : {}),
    ...(args.values['plain'] === true ? { plain: true } : {}),
  });
  out.record(guestFacts(g));
}

async function down(args: ParsedArgs, out: Output): Promise<void> {
  const wanted = args.positionals[1];
  // A libvirt lab domain (lab up --libvirt) of that name: destroy it through libvirt.
  if (wanted && !findGuest(wanted) && (args.values['libvirt'] === true || readLibvirtRecord(wanted))) {
    const uri = str(args, 'uri');
    out.rows([{ key: 'name', kind: 'str' }, { key: 'stopped', kind: 'bool' }], [{ name: wanted, stopped: await libvirtLabDown(wanted, uri) }]);
    return;
  }
  const names = args.values['all'] === true ? labList().map((e) => e.guest.name) : [pickGuest(wanted).name];
  const rows = [];
  for (const n of names) rows.push({ name: n, stopped: await labDown(n) });
  out.rows(
    [
      { key: 'name', kind: 'str' },
      { key: 'stopped', kind: 'bool' },
    ],
    rows,
  );
}

function list(out: Output): void {
  const rows = labList().map(({ guest: g, alive }) => ({
    name: g.name,
    alive,
    pid: g.pid,
    kernel: g.kernel.release,
    memory: g.memoryMiB,
    cpu: g.cpu,
    accel: g.accel,
    gdb: g.gdbPort ?? null,
    shm: g.shmPath,
    qmp: g.qmpSocket,
  }));
  out.rows(
    [
      { key: 'name', kind: 'str' },
      { key: 'alive', kind: 'bool' },
      { key: 'pid', kind: 'int' },
      { key: 'kernel', kind: 'str' },
      { key: 'memory', title: 'MiB', kind: 'int' },
      { key: 'cpu', kind: 'str' },
      { key: 'accel', kind: 'str' },
      { key: 'gdb', kind: 'int' },
      { key: 'shm', kind: 'str' },
      { key: 'qmp', kind: 'str' },
    ],
    rows,
  );
}

async function consoleCmd(args: ParsedArgs): Promise<void> {
  const name = args.positionals[1];
  // A failed boot leaves its console behind without a record: allow reading it by name.
  const path = name && !findGuest(name) ? consolePathOf(name) : pickGuest(name).consolePath;
  if (!fs.existsSync(path)) throw new LabError(`no console log at ${path}`);
  let offset = 0;
  const pump = (): void => {
    const size = fs.statSync(path).size;
    if (size <= offset) return;
    const fd = fs.openSync(path, 'r');
    try {
      const buf = Buffer.alloc(size - offset);
      const n = fs.readSync(fd, buf, 0, buf.length, offset);
      offset += n;
      process.stdout.write(buf.subarray(0, n).toString('latin1').replace(/\r/g, ''));
    } finally {
      fs.closeSync(fd);
    }
  };
  pump();
  if (args.values['follow'] !== true) return;
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      try {
        pump();
      } catch {
        clearInterval(timer);
        resolve();
      }
      if (name && !findGuest(name)) {
        clearInterval(timer);
        resolve();
      }
    }, 250);
    process.once('SIGINT', () => {
      clearInterval(timer);
      resolve();
    });
  });
}

function truth(args: ParsedArgs, out: Output): void {
  const name = args.positionals[1];
  const lv = name && !findGuest(name) ? readLibvirtRecord(name) : undefined;
  const g = lv ?? pickGuest(name);
  const t = readGroundTruth(g);
  const facts = { ...t, details: Object.fromEntries(t.details) } as unknown as Record<string, unknown>;
  // JSON whatever the format asked (README): the truth is nested data that tests and scripts compare against.
  if (out.format === 'json' || out.format === 'jsonl') out.record(facts);
  else out.text(toJson(facts, 2), true);
}

async function kernel(args: ParsedArgs, out: Output): Promise<void> {
  const k = await ensureKernel(args.positionals[1] ?? '6.1');
  out.record({ ...k });
}

/** `lab exec`: the guest command's stdout and stderr go to ours; its exit code (128+signal if killed) is ours. */
async function execCmd(args: ParsedArgs): Promise<number> {
  const name = args.positionals[1];
  const argv = args.positionals.slice(2);
  const usage = 'usage: vmsight lab exec NAME [--timeout SECONDS] [--detach] -- CMD [ARG...]';
  if (!name || argv.length === 0) throw new UsageError(name ? 'lab exec needs a command after the guest name' : 'lab exec needs a guest name and a command', { hint: usage });
  const t = str(args, 'timeout');
  let timeoutMs: number | undefined;
  if (t !== undefined) {
    if (!/^\d+(\.\d+)?$/.test(t) || !(Number(t) > 0)) throw new UsageError(`--timeout ${t}: expected a positive number of seconds`);
    timeoutMs = Number(t) * 1000;
  }
  const g = pickGuest(name);
  if (args.values['detach'] === true) {
    const r = await labSpawn(g, argv);
    process.stdout.write(`${r.pid}\n`);
    process.stderr.write(`vmsight: pid ${r.pid} runs in the background in guest '${g.name}'; its output goes to ${r.logPath}\n`);
    return 0;
  }
  const abort = new AbortController();
  const onSignal = (): void => abort.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const r = await labExec(g, argv, {
      ...(process.stdin.isTTY ? {} : { stdin: process.stdin }),
      ...(timeoutMs !== undefined ? { timeoutMs } : {}),
      onStdout: (c) => process.stdout.write(c),
      onStderr: (c) => process.stderr.write(c),
      signal: abort.signal,
    });
    if (r.timedOut) {
      const why = abort.signal.aborted ? 'interrupted' : `timed out after ${t} s`;
      process.stderr.write(`vmsight: guest command ${why} and was killed (pid ${r.pid} in guest '${g.name}')\n`);
    }
    return r.exitCode ?? 128 + (r.signal ?? 0);
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    // The command may finish before reading all its stdin: stop reading ours so we can exit.
    if (!process.stdin.isTTY) process.stdin.destroy();
  }
}

export const command: Command = {
  name: 'lab',
  summary: 'the built-in guest lab: boot, list, stop and inspect QEMU guests with a known scenario',
  usage: USAGE,
  options: {
    kernel: { type: 'string' },
    memory: { type: 'string' },
    smp: { type: 'string' },
    cpu: { type: 'string' },
    accel: { type: 'string' },
    gdb: { type: 'boolean' },
    'no-kaslr': { type: 'boolean' },
    tools: { type: 'string' },
    all: { type: 'boolean' },
    follow: { type: 'boolean', short: 'f' },
    timeout: { type: 'string' },
    detach: { type: 'boolean' },
    libvirt: { type: 'boolean' },
    backing: { type: 'string' },
    'no-acpi': { type: 'boolean' },
    'on-reboot': { type: 'string' },
    plain: { type: 'boolean' },
    uri: { type: 'string' },
  },
  async run(args, ctx) {
    const sub = args.positionals[0];
    switch (sub) {
      case 'up':
        return up(args, ctx.out);
      case 'down':
        return down(args, ctx.out);
      case 'list':
      case 'ls':
        return list(ctx.out);
      case 'console':
        return consoleCmd(args);
      case 'truth':
        return truth(args, ctx.out);
      case 'kernel':
        return kernel(args, ctx.out);
      case 'exec':
        return execCmd(args);
      default:
        throw new UsageError(sub ? `unknown lab subcommand '${sub}'` : 'lab needs a subcommand', { hint: `usage: vmsight lab ${USAGE.split('\n')[0]}` });
    }
  },
};
