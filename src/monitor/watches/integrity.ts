/**
 * Kernel integrity: a changed sys_call_table entry (ia32/x32 tables too, where they exist) and a changed
 * IDT gate, each with the handler before and after, resolved to symbols. The tables themselves are the
 * watched ranges: they are a few KiB, compared each tick, and change only when something patches them.
 */
import checkIdt, { type CheckIdtRow } from '../../linux/plugins/check_idt.js';
import checkSyscall, { type CheckSyscallRow } from '../../linux/plugins/check_syscall.js';
import { syscallTables, GATE_SIZE } from '../../linux/integrity.js';
import { isAbsent } from '../../linux/plugin.js';
import { hexAddress, type EventDraft } from '../events.js';
import { PluginWatch, rangesOf } from './plugin-watch.js';

const sym = (v: string | { absent: string } | unknown): string | null => (isAbsent(v) ? null : String(v));

export function syscallsWatch(): PluginWatch<CheckSyscallRow> {
  return new PluginWatch<CheckSyscallRow>({
    name: 'syscalls',
    plugin: checkSyscall,
    options: { all: true },
    emits: ['syscall-hook'],
    sentinels: (ctx) => syscallTables(ctx.kernel).flatMap((t) => rangesOf(ctx, t.address, t.entries * 8)),
    diff(prev, next) {
      const out: EventDraft[] = [];
      for (const [key, r] of next) {
        const b = prev.get(key);
        if (!b || b.address === r.address) continue;
        out.push({
          type: 'syscall-hook',
          watch: 'syscalls',
          key,
          severity: r.suspicious ? 'critical' : 'high',
          before: { address: hexAddress(b.address), symbol: sym(b.symbol), verdict: b.verdict },
          after: { address: hexAddress(r.address), symbol: sym(r.symbol), verdict: r.verdict, module: sym(r.module) },
          data: { table: r.table, index: r.index, suspicious: r.suspicious },
        });
      }
      return out;
    },
  });
}

export function idtWatch(): PluginWatch<CheckIdtRow> {
  return new PluginWatch<CheckIdtRow>({
    name: 'idt',
    plugin: checkIdt,
    emits: ['idt-change'],
    sentinels: (ctx) => rangesOf(ctx, ctx.kernel.symbol('idt_table'), 256 * GATE_SIZE),
    diff(prev, next) {
      const out: EventDraft[] = [];
      for (const [key, r] of next) {
        const b = prev.get(key);
        if (!b || (b.address === r.address && b.present === r.present && b.dpl === r.dpl && b.type === r.type && b.ist === r.ist)) continue;
        out.push({
          type: 'idt-change',
          watch: 'idt',
          key,
          severity: r.suspicious ? 'critical' : 'high',
          before: { address: hexAddress(b.address), symbol: sym(b.symbol), present: b.present, dpl: b.dpl },
          after: { address: hexAddress(r.address), symbol: sym(r.symbol), present: r.present, dpl: r.dpl, module: sym(r.module) },
          data: { vector: r.vector, suspicious: r.suspicious },
        });
      }
      return out;
    },
  });
}
