/**
 * `vmsight translate <source> VA`: the page walk of one virtual address, each
 * level's table, index and entry, then the physical address, page size and
 * flags, or where the walk stopped.
 */
import { ExitCode, FaultError, hex, UsageError } from '../../core/errors.js';
import { flagNames, PTE, PTE_ADDR_MASK, type WalkStep } from '../../arch/x86-64/paging.js';
import type { Column } from '../render.js';
import type { Command } from '../command.js';
import { attachOptionSpec, profileOption, requireSource } from './common.js';
import { parseVirtual } from './info.js';
import { virtualSpace, withAddressSource } from './read.js';
import { gpa, gva } from '../../core/address.js';

const USAGE = 'translate <source> VA|SYMBOL[+OFF] [--pid PID | --dtb ADDR] [--levels 4|5] [--technique CLASS|NAME] [--json]';

/** The bits of one entry, named. */
export function entryFlags(entry: bigint): string[] {
  const lo = Number(entry & 0xfffn);
  if (!(lo & PTE.present)) return ['not-present'];
  const f = ['P', lo & PTE.writable ? 'RW' : 'RO', lo & PTE.user ? 'US' : 'SU'];
  if (lo & PTE.writeThrough) f.push('PWT');
  if (lo & PTE.cacheDisable) f.push('PCD');
  if (lo & PTE.accessed) f.push('A');
  if (lo & PTE.dirty) f.push('D');
  if (lo & PTE.pageSize) f.push('PS');
  if (lo & PTE.global) f.push('G');
  if (entry >> 63n) f.push('NX');
  return f;
}

const COLUMNS: readonly Column[] = [
  { key: 'level', kind: 'int' },
  { key: 'name', kind: 'str' },
  { key: 'index', kind: 'int' },
  { key: 'table', kind: 'hex' },
  { key: 'entryAddr', title: 'entry at', kind: 'hex' },
  { key: 'entry', kind: 'hex' },
  { key: 'next', title: 'points to', kind: 'hex' },
  { key: 'flags', kind: 'str' },
];

function stepRow(s: WalkStep): Record<string, unknown> {
  return {
    level: s.level,
    name: s.name,
    index: s.index,
    // Addresses as bigint so --json shows them in hex like every other address.
    table: BigInt(s.tableAddr),
    entryAddr: BigInt(s.entryAddr),
    entry: s.entry,
    next: s.entry & 1n ? s.entry & PTE_ADDR_MASK : undefined,
    flags: entryFlags(s.entry).join(' '),
  };
}

export const command: Command = {
  name: 'translate',
  summary: 'walk the page tables for a virtual address: every level, the physical address, page size, flags',
  usage: '<source> VA|SYMBOL[+OFF] [--pid PID | --dtb ADDR] [--levels 4|5] [--technique CLASS|NAME]',
  options: { ...attachOptionSpec, pid: { type: 'string' }, dtb: { type: 'string' }, levels: { type: 'string' } },
  async run(args, ctx) {
    const spec = requireSource(args, USAGE);
    const vaText = args.positionals[1];
    if (!vaText) throw new UsageError('missing the virtual address', { hint: `usage: vmsight ${USAGE}` });
    return withAddressSource(args, spec, async (memory, kernel) => {
      const { space, ks, how } = await virtualSpace(memory, args, kernel);
      const va = parseVirtual(vaText, ks, memory, profileOption(args));
      const { steps, result } = space.trace(gva(va));
      const fault = result instanceof FaultError ? result : undefined;
      const rows = steps.map(stepRow);
      if (ctx.out.format === 'table') {
        ctx.out.text(`virtual ${hex(BigInt.asUintN(64, va))} via ${how}`);
        if (rows.length) ctx.out.rows(COLUMNS, rows);
        if (fault) ctx.out.text(`fault: ${fault.message}`);
        else if (!(result instanceof FaultError)) {
          const size = result.pageSize === 4096 ? '4 KiB' : result.pageSize === 2 << 20 ? '2 MiB' : '1 GiB';
          ctx.out.text(`physical ${hex(result.pa)}  page ${size} (level ${result.level})  flags ${flagNames(result).join(' ')}`);
          if (space.directMapBase === undefined) space.findDirectMap();
          if (space.directMapBase !== undefined) ctx.out.text(`direct map alias ${hex(space.physToDirect(gpa(result.pa)))}`);
        }
      } else {
        ctx.out.record({
          va: BigInt.asUintN(64, va),
          dtb: BigInt(space.dtb),
          paging: space.mode.name,
          via: how,
          steps: rows,
          ...(fault
            ? { fault: { message: fault.message, level: fault.level, entry: fault.entry } }
            : result instanceof FaultError
              ? {}
              : { pa: BigInt(result.pa), pageSize: result.pageSize, level: result.level, flags: flagNames(result), nx: result.nx }),
        });
      }
      return fault ? ExitCode.analysis : ExitCode.ok;
    });
  },
};
