/**
 * libvirt as a transport to QEMU, through its own client `virsh` (no home-made RPC). libvirtd holds the
 * domain's only QMP session, so every monitor command goes through `virsh qemu-monitor-command` (libvirt
 * serialises them with its own; the domain is marked "tainted: custom-monitor"). Pausing and resuming go
 * through `virsh suspend`/`resume`, so libvirt's idea of the domain state stays true.
 *
 * Nothing here is held between calls: a second vmsight process (or virt-manager) works beside us.
 */
import { execFile, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { QemuError } from '../core/errors.js';
import type { QemuMonitor } from './qmp.js';

export const DEFAULT_LIBVIRT_URI = 'qemu:///system';
/** libvirt domain names vmsight accepts (what libvirt accepts, minus '/' and control characters). */
export const DOMAIN_NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_.+:-]{0,63}$/;
/** Longest answer we take from virsh (an `info mtree -f` of a big machine is ~100 KiB). */
const MAX_OUTPUT = 16 << 20;

export function virshBinary(): string {
  return process.env['VMSIGHT_VIRSH'] || 'virsh';
}

function label(uri: string, domain?: string): string {
  return `libvirt ${uri}${domain ? ` domain ${domain}` : ''}`;
}

/** The first line of virsh's complaint, without its `error: ` prefixes. */
function complaint(stderr: string): string {
  const lines = stderr
    .split('\n')
    .map((l) => l.replace(/^error:\s*/, '').trim())
    .filter(Boolean);
  return lines.slice(0, 2).join(': ') || 'failed';
}

/** What to do about a virsh failure, when we can tell. */
function hintFor(text: string, uri: string, domain?: string): string | undefined {
  if (/Failed to connect socket|No such file or directory.*libvirt|libvirt-sock/i.test(text))
    return `is libvirtd running? start it (virtlogd --daemon; libvirtd --daemon, or systemctl start libvirtd), or check the URI ${uri}`;
  if (/Domain not found|failed to get domain/i.test(text))
    return `list domains with \`virsh -c ${uri} list --all\` or \`vmsight sources libvirt:\``;
  if (/not running|domain is not running/i.test(text)) return domain ? `start it with \`virsh -c ${uri} start ${domain}\`` : undefined;
  if (/authentication|Permission denied|access denied|system bus connection|polkit/i.test(text)) return `run as root or as a member of the libvirt group to use ${uri}`;
  return undefined;
}

/** Runs virsh against `uri`; resolves with stdout, rejects with a QemuError naming the domain. */
export function virsh(uri: string, args: readonly string[], options: { domain?: string; timeoutMs?: number } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      virshBinary(),
      ['-q', '-c', uri, ...args],
      { encoding: 'utf8', maxBuffer: MAX_OUTPUT, timeout: options.timeoutMs ?? 60_000, env: { ...process.env, LC_ALL: 'C' } },
      (err, stdout, stderr) => {
        if (!err) return resolve(stdout);
        const e = err as NodeJS.ErrnoException & { killed?: boolean };
        if (e.code === 'ENOENT') {
          return reject(new QemuError(label(uri, options.domain), `${virshBinary()} not found`, { hint: 'install libvirt-clients (it ships virsh)', cause: err }));
        }
        const what = e.killed ? `virsh ${args[0]} did not finish within ${options.timeoutMs ?? 60_000} ms` : `virsh ${args[0]}: ${complaint(stderr)}`;
        const hint = hintFor(stderr, uri, options.domain);
        reject(new QemuError(label(uri, options.domain), what, { ...(hint ? { hint } : {}), cause: err }));
      },
    );
  });
}

/** The synchronous twin of `virsh`, for exit handlers (which cannot wait for a promise). Best effort. */
export function virshSync(uri: string, args: readonly string[], timeoutMs = 10_000): boolean {
  const r = spawnSync(virshBinary(), ['-q', '-c', uri, ...args], { stdio: 'ignore', timeout: timeoutMs });
  return r.status === 0;
}

/** A domain as `virsh list --all` and `domstate` see it. */
export interface LibvirtDomainState {
  readonly name: string;
  /** 'running', 'paused', 'shut off', … */
  readonly state: string;
}

export async function listDomains(uri: string): Promise<LibvirtDomainState[]> {
  const names = (await virsh(uri, ['list', '--all', '--name']))
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .slice(0, 10_000);
  const out: LibvirtDomainState[] = [];
  for (const name of names) out.push({ name, state: await domainState(uri, name).catch(() => 'unknown') });
  return out;
}

export async function domainState(uri: string, domain: string): Promise<string> {
  return (await virsh(uri, ['domstate', domain], { domain })).trim().split('\n')[0]!.trim();
}

/** The memory backing asked for in the domain XML: what libvirt will give QEMU. */
export type LibvirtBacking = 'anonymous' | 'memfd' | 'file' | 'hugepages';

/** Reads `<memoryBacking>` of a domain XML (only the elements vmsight cares about). */
export function backingOfXml(xml: string): { backing: LibvirtBacking; shared: boolean; acpi: boolean; vmcoreinfo: boolean } {
  const mb = /<memoryBacking>([\s\S]*?)<\/memoryBacking>/.exec(xml)?.[1] ?? '';
  const source = /<source\s+type=['"](\w+)['"]/.exec(mb)?.[1];
  const backing: LibvirtBacking = /<hugepages/.test(mb) ? 'hugepages' : source === 'memfd' ? 'memfd' : source === 'file' ? 'file' : 'anonymous';
  const features = /<features>([\s\S]*?)<\/features>/.exec(xml)?.[1] ?? '';
  return {
    backing,
    shared: /<access\s+mode=['"]shared['"]/.test(mb),
    acpi: /<acpi\s*\/?>/.test(features),
    vmcoreinfo: /<vmcoreinfo\s+state=['"]on['"]/.test(features),
  };
}

function qemuCmdlineHasGuest(pid: number, domain: string): boolean {
  try {
    const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0');
    const i = argv.indexOf('-name');
    return i >= 0 && new RegExp(`^guest=${domain.replace(/[.+]/g, '\\$&')}(,|$)`).test(argv[i + 1] ?? '');
  } catch {
    return false;
  }
}

/**
 * The QEMU process of a running domain: libvirt's pid file (/run/libvirt/qemu/NAME.pid for qemu:///system,
 * $XDG_RUNTIME_DIR/libvirt/qemu/run/NAME.pid for qemu:///session), checked against QEMU's `-name guest=NAME`;
 * else the QEMU whose command line names the guest.
 */
export function findDomainPid(uri: string, domain: string): { pid?: number; reason: string } {
  const files = [`/run/libvirt/qemu/${domain}.pid`];
  if (process.env['XDG_RUNTIME_DIR']) files.push(`${process.env['XDG_RUNTIME_DIR']}/libvirt/qemu/run/${domain}.pid`);
  for (const f of uri.includes('session') ? files.reverse() : files) {
    let text: string;
    try {
      text = fs.readFileSync(f, 'utf8').trim();
    } catch {
      continue;
    }
    if (!/^\d{1,10}$/.test(text)) continue;
    const pid = Number(text);
    if (qemuCmdlineHasGuest(pid, domain)) return { pid, reason: `${f} names process ${pid}` };
  }
  let seen = 0;
  for (const e of safeReaddir('/proc')) {
    if (!/^\d+$/.test(e) || ++seen > 20_000) continue;
    if (qemuCmdlineHasGuest(Number(e), domain)) return { pid: Number(e), reason: `process ${e} runs QEMU with -name guest=${domain}` };
  }
  return { reason: `no QEMU process of domain ${domain} is visible here (no pid file in /run/libvirt/qemu, none with -name guest=${domain})` };
}

function safeReaddir(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

/**
 * The monitor of a libvirt domain, spoken through `virsh qemu-monitor-command`: the same `execute`/`hmp`
 * as a QMP client, one virsh process per command (~20 ms each once libvirtd is warm).
 */
export class LibvirtMonitor implements QemuMonitor {
  readonly endpoint: string;
  private closedFlag = false;

  constructor(
    readonly uri: string,
    readonly domain: string,
  ) {
    this.endpoint = uri === DEFAULT_LIBVIRT_URI ? `libvirt:${domain}` : `libvirt:${domain}?uri=${uri}`;
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  async execute<T = unknown>(command: string, args?: Record<string, unknown>, timeoutMs = 30_000): Promise<T> {
    if (this.closedFlag) throw new QemuError(label(this.uri, this.domain), `${command} after close`);
    const json = JSON.stringify(args ? { execute: command, arguments: args } : { execute: command });
    const text = await virsh(this.uri, ['qemu-monitor-command', this.domain, json], { domain: this.domain, timeoutMs });
    let reply: { return?: unknown; error?: { class?: string; desc?: string } };
    try {
      reply = JSON.parse(text) as typeof reply;
    } catch {
      throw new QemuError(label(this.uri, this.domain), `${command}: virsh answered no JSON (${JSON.stringify(text.slice(0, 80))})`);
    }
    if (reply.error) {
      throw new QemuError(label(this.uri, this.domain), `${command} failed: ${reply.error.desc ?? 'unknown error'}`, {
        ...(reply.error.class ? { errorClass: reply.error.class } : {}),
      });
    }
    return reply.return as T;
  }

  hmp(commandLine: string, timeoutMs = 30_000): Promise<string> {
    return this.execute<string>('human-monitor-command', { 'command-line': commandLine }, timeoutMs);
  }

  async close(): Promise<void> {
    this.closedFlag = true;
  }
}


/** The libvirt domain whose monitor socket `socketPath` is (libvirt's own layout), if it is one. */
export function libvirtDomainOfSocket(socketPath: string): string | undefined {
  return /\/libvirt\/qemu\/(?:[^/]+\/)*domain-\d+-([^/]+)\/monitor\.sock$/.exec(socketPath)?.[1];
}

/** Who holds the QMP session at `socketPath`, as far as `ss -xp` can tell (peer of QEMU's accepted socket). */
function ssHolder(socketPath: string): string | undefined {
  const r = spawnSync('ss', ['-xpn'], { encoding: 'utf8', timeout: 3000 });
  if (r.status !== 0 || !r.stdout) return undefined;
  const lines = r.stdout.split('\n').slice(1, 100_000).map((l) => l.trim().split(/\s+/));
  // Netid State Recv-Q Send-Q Local Port Peer Port [Process]
  const served = lines.filter((f) => f[1] === 'ESTAB' && f[4] === socketPath).map((f) => f[7]);
  for (const peer of served) {
    const holder = lines.find((f) => f[5] === peer);
    const m = holder && /\("([^"]+)",pid=(\d+)/.exec(holder.slice(8).join(' '));
    if (!m) continue;
    let cmd = '';
    try {
      cmd = fs.readFileSync(`/proc/${m[2]}/cmdline`, 'latin1').split('\0').join(' ');
    } catch {
      // gone
    }
    return /vmsight/.test(cmd) ? `another vmsight (pid ${m[2]})` : `${m[1]} (pid ${m[2]})`;
  }
  return undefined;
}

/**
 * One line saying who holds a busy QMP socket and the way out: `libvirt:NAME` when libvirtd does, else
 * the holding process when visible, and a second `-qmp` socket.
 */
export function qmpHolderHint(socketPath: string): string {
  const domain = libvirtDomainOfSocket(socketPath);
  if (domain) return `libvirtd holds this monitor (domain ${domain}): read the guest as libvirt:${domain}, which goes through virsh`;
  const who = ssHolder(socketPath);
  return `${who ? `${who} holds this QMP socket` : 'another client holds this QMP socket'}; QEMU serves one client per socket: close it, or give QEMU a second -qmp unix:PATH,server=on,wait=off and use that`;
}
