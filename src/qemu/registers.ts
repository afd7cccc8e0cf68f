/**
 * vCPU control registers from the monitor (`info registers -a`): CR3 gives
 * the page-table root, CR4 bit 12 (LA57) says 5-level paging, EFER.LMA long
 * mode. Every vCPU is parsed: CR3 differs per CPU (each runs its own task).
 */
import { FormatError } from '../core/errors.js';
import type { CpuState } from '../core/phys.js';
import type { QemuMonitor } from './qmp.js';

export const CR4_LA57 = 1n << 12n;
export const CR4_PAE = 1n << 5n;
export const CR0_PG = 1n << 31n;
export const EFER_LMA = 1n << 10n;

/** CpuState plus the instruction pointer and whether the vCPU sat in HLT. */
export interface VcpuRegisters extends CpuState {
  readonly rip?: bigint;
  readonly halted?: boolean;
}

const MAX_CPUS = 4096;

function reg(chunk: string, name: string): bigint | undefined {
  const m = new RegExp(`(?:^|[\\s])${name}\\s*=([0-9a-fA-F]{1,16})\\b`).exec(chunk);
  return m ? BigInt(`0x${m[1]}`) : undefined;
}

/** Parses `info registers -a` (or plain `info registers`, which is one vCPU). */
export function parseRegisters(text: string): VcpuRegisters[] {
  const parts = text.split(/^CPU#(\d+)\s*$/m);
  const chunks: Array<[number, string]> = [];
  if (parts.length === 1) chunks.push([0, text]);
  for (let i = 1; i + 1 < parts.length && chunks.length < MAX_CPUS; i += 2) chunks.push([Number(parts[i]), parts[i + 1]!]);
  const out: VcpuRegisters[] = [];
  for (const [index, chunk] of chunks) {
    const cr3 = reg(chunk, 'CR3');
    if (cr3 === undefined) continue;
    const cpu: { -readonly [K in keyof VcpuRegisters]: VcpuRegisters[K] } = { index, cr3 };
    const cr0 = reg(chunk, 'CR0');
    const cr4 = reg(chunk, 'CR4');
    const efer = reg(chunk, 'EFER');
    const rip = reg(chunk, 'RIP');
    if (cr0 !== undefined) cpu.cr0 = cr0;
    if (cr4 !== undefined) cpu.cr4 = cr4;
    if (efer !== undefined) cpu.efer = efer;
    if (rip !== undefined) cpu.rip = rip;
    const hlt = /\bHLT=([01])\b/.exec(chunk);
    if (hlt) cpu.halted = hlt[1] === '1';
    out.push(cpu);
  }
  if (!out.length) throw new FormatError('info registers', 'no vCPU with a CR3 value in the output');
  return out;
}

/** Paging levels a vCPU uses (0 = paging off, 4 or 5 in long mode, 2/3 in legacy modes). */
export function pagingLevels(cpu: CpuState): 0 | 2 | 3 | 4 | 5 {
  if (cpu.cr0 !== undefined && (cpu.cr0 & CR0_PG) === 0n) return 0;
  const cr4 = cpu.cr4 ?? 0n;
  if (cpu.efer !== undefined && (cpu.efer & EFER_LMA) !== 0n) return (cr4 & CR4_LA57) !== 0n ? 5 : 4;
  return (cr4 & CR4_PAE) !== 0n ? 3 : 2;
}

/** Reads every vCPU's registers through the monitor. */
export async function readCpuStates(qmp: QemuMonitor): Promise<VcpuRegisters[]> {
  return parseRegisters(await qmp.hmp('info registers -a'));
}
