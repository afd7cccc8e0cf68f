/**
 * Kernel modules: load and unload, from the modules list (lsmod's rows). Wakes on the list head and on
 * every module's own list node (an unload from the middle of the list rewrites only its neighbours).
 */
import lsmod, { type LsmodRow } from '../../linux/plugins/lsmod.js';
import { hexAddress, type EventDraft } from '../events.js';
import { PluginWatch, rangesOf } from './plugin-watch.js';

export function modulesWatch(): PluginWatch<LsmodRow> {
  let listOffset: bigint | undefined;
  return new PluginWatch<LsmodRow>({
    name: 'modules',
    plugin: lsmod,
    emits: ['module-load', 'module-unload'],
    sentinels: (ctx) => rangesOf(ctx, ctx.kernel.symbol('modules'), 16),
    rowRanges(ctx, row) {
      listOffset ??= BigInt(ctx.kernel.types.offsetOf('module', 'list'));
      return rangesOf(ctx, row.offset + listOffset, 16);
    },
    diff(prev, next) {
      const out: EventDraft[] = [];
      const facts = (r: LsmodRow) => ({ name: r.name, size: r.size, base: hexAddress(r.base), taints: r.taints, state: r.state, module: hexAddress(r.offset) });
      for (const [key, r] of next) if (!prev.has(key)) out.push({ type: 'module-load', watch: 'modules', key, data: facts(r) });
      for (const [key, r] of prev) if (!next.has(key)) out.push({ type: 'module-unload', watch: 'modules', key, data: facts(r) });
      return out;
    },
  });
}
