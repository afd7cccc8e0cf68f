/**
 * `vmsight read <source> --pa ADDR | --va ADDR --len N`: a hexdump like
 * `xxd` (or --json with hex). Virtual addresses go through the kernel address
 * space found by the bootstrap, or through --dtb ADDR [--levels 4|5].
 * Unreadable ranges are zero-filled and listed; reading nothing is an error.
 */
import { ExitCode, FaultError, hex, UsageError } from '../../core/errors.js';
import type { PhysicalMemory } from '../../memory/types.js';
import { AddressSpace } from '../../arch/address-space.js';
import { pagingMode } from '../../arch/x86-64/paging.js';
import { bootstrapKernelSpace, type KernelSpace } from '../../profile/kernel-space.js';
import type { Command, ParsedArgs } from '../command.js';
import { attachKernel, type AttachedKernel } from '../../linux/attach.js';
import { parseOnePid, processAddressSpace } from '../../linux/process-space.js';
import { attachOptions, attachOptionSpec, profileOption, requireSource, stringOption, withSource } from './common.js';
import { parsePhysical, parseVirtual } from './info.js';
import { gpa, gva } from '../../core/address.js';

/** Largest read the command accepts (it prints every byte). */
export const MAX_READ = 64 << 20;

const USAGE = 'read <source> (--pa ADDR | --va ADDR|SYMBOL[+OFF]) --len N [--pid PID | --dtb ADDR] [--levels 4|5] [--technique T] [--json]';

/** One `xxd` line: address, 16 bytes in 2-byte groups, printable text. */
export function hexdumpLines(address: bigint, bytes: Uint8Array, width = 16): string[] {
  const lines: string[] = [];
  const digits = Math.max(8, (address + BigInt(bytes.length)).toString(16).length);
  for (let off = 0; off < bytes.length; off += width) {
    const row = bytes.subarray(off, Math.min(off + width, bytes.length));
    let hexPart = '';
    for (let i = 0; i < width; i++) {
      hexPart += i < row.length ? row[i]!.toString(16).padStart(2, '0') : '  ';
      if (i % 2 === 1) hexPart += ' ';
    }
    let text = '';
    for (const b of row) text += b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.';
    lines.push(`${(address + BigInt(off)).toString(16).padStart(digits, '0')}: ${hexPart} ${text}`);
  }
  return lines;
}

function parseLength(args: ParsedArgs): number {
  const text = stringOption(args, 'len') ?? '256';
  const t = text.trim();
  const n = /^0x[0-9a-f]+$/i.test(t) ? Number.parseInt(t.slice(2), 16) : /^[0-9]+$/.test(t) ? Number(t) : NaN;
  if (!Number.isSafeInteger(n) || n <= 0 || n > MAX_READ) throw new UsageError(`--len ${text}: expected 1..${MAX_READ} bytes`);
  return n;
}

function parseLevels(args: ParsedArgs): 4 | 5 | undefined {
  const l = stringOption(args, 'levels');
  if (l === undefined) return undefined;
  if (l !== '4' && l !== '5') throw new UsageError(`--levels ${l}: expected 4 or 5`);
  return Number(l) as 4 | 5;
}

/**
 * The address space for --va: --dtb when given (levels from --levels, else the
 * vCPU's CR4.LA57, else 4), otherwise the bootstrapped kernel space.
 */
export async function virtualSpace(mem: PhysicalMemory, args: ParsedArgs, kernel?: AttachedKernel): Promise<{ space: AddressSpace; ks?: KernelSpace; how: string }> {
  const dtbText = stringOption(args, 'dtb');
  const levels = parseLevels(args);
  if (kernel) return pidSpace(kernel, parseOnePid(stringOption(args, 'pid') ?? ''), levels);
  if (dtbText !== undefined) {
    const dtb = parsePhysical(dtbText, '--dtb');
    let l = levels;
    let how = `--dtb ${hex(dtb)}`;
    if (l === undefined) {
      const cpus = (await mem.hints?.().catch(() => undefined))?.cpus ?? [];
      const cr4 = cpus.find((c) => c.cr4 !== undefined)?.cr4;
      l = cr4 !== undefined && (cr4 & (1n << 12n)) !== 0n ? 5 : 4;
      how += cr4 !== undefined ? `, ${l}-level from CR4.LA57` : ', 4-level (default; use --levels 5 for LA57)';
    } else how += `, ${l}-level`;
    return { space: new AddressSpace(mem, dtb - (dtb % 4096), pagingMode(l), { name: `dtb ${hex(dtb)}` }), how };
  }
  const ks = await bootstrapKernelSpace(mem, { bannerScan: 'none' });
  if (levels !== undefined && levels !== ks.levels) {
    throw new UsageError(`--levels ${levels} contradicts the kernel's ${ks.levels}-level paging`, { hint: 'give --dtb too to walk other tables' });
  }
  return { space: ks.space, ks, how: `kernel DTB ${hex(ks.dtb)} (${ks.levels}-level)` };
}

/** The page tables of process `pid` (task->mm->pgd), found through the kernel's task list. */
function pidSpace(kernel: AttachedKernel, pid: number, levels: 4 | 5 | undefined): { space: AddressSpace; how: string } {
  if (levels !== undefined && levels !== kernel.report.kernelSpace.levels) {
    throw new UsageError(`--levels ${levels} contradicts the kernel's ${kernel.report.kernelSpace.levels}-level paging`);
  }
  const p = processAddressSpace(kernel, pid);
  return { space: p.space, how: `pid ${p.pid} (${p.comm}) mm->pgd ${hex(p.pgd)}, table ${hex(p.space.dtb)}` };
}

/**
 * Opens the source for read/translate: with --pid the kernel profile is
 * attached too (the task list names the process's page tables), else only
 * the memory is opened. The source is always closed.
 */
export async function withAddressSource<T>(args: ParsedArgs, spec: string, fn: (memory: PhysicalMemory, kernel?: AttachedKernel) => Promise<T>): Promise<T> {
  const pidText = stringOption(args, 'pid');
  if (pidText === undefined) return withSource(args, spec, ({ memory }) => fn(memory));
  parseOnePid(pidText); // a bad value fails before attaching
  if (stringOption(args, 'dtb') !== undefined) throw new UsageError('give --pid or --dtb, not both', { hint: '--pid walks the page tables of that process (its mm->pgd)' });
  const kernel = await attachKernel(spec, attachOptions(args));
  try {
    return await fn(kernel.memory, kernel);
  } finally {
    await kernel.close();
  }
}

export const command: Command = {
  name: 'read',
  summary: 'hexdump guest memory at a physical or virtual address',
  usage: '<source> (--pa ADDR | --va ADDR|SYMBOL[+OFF]) --len N [--pid PID | --dtb ADDR] [--levels 4|5] [--technique CLASS|NAME]',
  options: {
    ...attachOptionSpec,
    pid: { type: 'string' },
    pa: { type: 'string' },
    va: { type: 'string' },
    len: { type: 'string' },
    dtb: { type: 'string' },
    levels: { type: 'string' },
  },
  async run(args, ctx) {
    const spec = requireSource(args, USAGE);
    const pa = stringOption(args, 'pa');
    const va = stringOption(args, 'va');
    if ((pa === undefined) === (va === undefined)) throw new UsageError('give exactly one of --pa and --va', { hint: `usage: vmsight ${USAGE}` });
    const len = parseLength(args);
    const physAddr = pa !== undefined ? parsePhysical(pa, '--pa') : undefined;
    if (pa !== undefined && stringOption(args, 'pid') !== undefined) throw new UsageError('--pid selects a process address space: give it with --va, not --pa');
    return withAddressSource(args, spec, async (memory, kernel) => {
      let address: bigint;
      let bytes: Uint8Array;
      let failures: { address: bigint; len: number; reason: string }[];
      let space: 'physical' | 'virtual';
      let via: string | undefined;
      if (physAddr !== undefined) {
        space = 'physical';
        address = BigInt(physAddr);
        const op = { addr: gpa(physAddr), len, dst: new Uint8Array(len) };
        failures = memory.readv([op]).map((f) => ({ address: BigInt(f.addr), len: f.len, reason: f.reason }));
        bytes = op.dst;
      } else {
        space = 'virtual';
        const vs = await virtualSpace(memory, args, kernel);
        via = vs.how;
        address = parseVirtual(va!, vs.ks, memory, profileOption(args));
        const op = { va: gva(address), len, dst: new Uint8Array(len) };
        failures = vs.space.readv([op]).map((f) => ({ address: f.va, len: f.len, reason: f.reason }));
        bytes = op.dst;
      }
      const unread = failures.reduce((n, f) => n + f.len, 0);
      if (unread >= len) {
        const f = failures[0]!;
        throw new FaultError(space, f.address, f.reason);
      }
      if (ctx.out.format === 'table') {
        if (via) ctx.out.text(`# ${va} = ${hex(address)} via ${via}`);
        for (const line of hexdumpLines(address, bytes)) ctx.out.text(line);
        for (const f of failures) ctx.out.text(`# unreadable (zero-filled): ${hex(f.address)}+${hex(f.len)}: ${f.reason}`);
      } else {
        ctx.out.record({ space, address, len, ...(via ? { via } : {}), hex: bytes, failures });
      }
      return failures.length ? ExitCode.analysis : ExitCode.ok;
    });
  },
};
