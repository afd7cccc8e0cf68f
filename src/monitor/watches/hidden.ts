/**
 * Hidden modules: a module in sysfs kobjects or carved from module memory but missing from the modules
 * list (hidden_modules' cross-view). Unlinking itself from the list is what a rootkit does right after it
 * loads, so the modules list head and every module's list node wake this watch, and a slow sweep catches a
 * module hidden before the monitor attached. (Hidden processes are reported by the processes watch, which
 * sees a task leave the task list while it is still alive.)
 */
import hiddenModules, { type HiddenModuleRow } from '../../linux/plugins/hidden_modules.js';
import { hexAddress, type EventDraft } from '../events.js';
import { PluginWatch, rangesOf } from './plugin-watch.js';

export function hiddenModulesWatch(sweepMs = 2000): PluginWatch<HiddenModuleRow> {
  const reported = new Set<string>();
  let listOffset: bigint | undefined;
  let first = true;
  return new PluginWatch<HiddenModuleRow>({
    name: 'hidden',
    plugin: hiddenModules,
    emits: ['hidden-module'],
    sweepMs,
    reportInitial: true,
    sentinels: (ctx) => rangesOf(ctx, ctx.kernel.symbol('modules'), 16),
    rowRanges(ctx, row) {
      if (!row.inList) return [];
      listOffset ??= BigInt(ctx.kernel.types.offsetOf('module', 'list'));
      return rangesOf(ctx, row.offset + listOffset, 16);
    },
    diff(_prev, next) {
      const out: EventDraft[] = [];
      for (const [key, r] of next) {
        if (!r.hidden || reported.has(key)) continue;
        reported.add(key);
        out.push({
          type: 'hidden-module',
          watch: 'hidden',
          key,
          severity: 'critical',
          data: { name: r.name, module: hexAddress(r.offset), base: hexAddress(r.base), size: r.size, inSysfs: r.inSysfs, carved: r.carved, atAttach: first },
        });
      }
      first = false;
      return out;
    },
  });
}
