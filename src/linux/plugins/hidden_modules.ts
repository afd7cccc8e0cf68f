/**
 * hidden_modules: modules the `modules` list lacks but another view has — the
 * sysfs kobjects of module_kset (/sys/module) or a struct module carved from
 * the module mapping area (found by its mkobj.mod back-pointer).
 */
import { definePlugin } from '../plugin.js';
import { crossViewModules } from '../modules.js';

export interface HiddenModuleRow {
  offset: bigint;
  name: string;
  inList: boolean;
  inSysfs: boolean;
  carved: boolean;
  hidden: boolean;
  state: string;
  base: bigint;
  size: number;
  taints: string;
}

export default definePlugin<HiddenModuleRow>()({
  name: 'hidden_modules',
  aliases: ['linux.hidden_modules', 'linux.hidden_modules.Hidden_modules'],
  version: '1.0.0',
  summary: 'Modules missing from the modules list but present in sysfs kobjects or carved from module memory',
  requires: {
    symbols: ['modules', 'module_kset'],
    fields: [
      ['module', 'list'],
      ['module', 'mkobj'],
      ['module_kobject', 'mod'],
      ['kset', 'list'],
      ['kobject', 'entry'],
    ],
  },
  options: { all: { type: 'boolean', description: 'every module seen by any view, not only the hidden ones', byDefault: 'hidden modules only' } },
  columns: [
    { key: 'offset', kind: 'hex' },
    { key: 'name', kind: 'str' },
    { key: 'inList', title: 'list', kind: 'bool' },
    { key: 'inSysfs', title: 'sysfs', kind: 'bool' },
    { key: 'carved', kind: 'bool' },
    { key: 'hidden', kind: 'bool' },
    { key: 'state', kind: 'str' },
    { key: 'base', kind: 'hex' },
    { key: 'size', kind: 'int' },
    { key: 'taints', kind: 'str' },
  ],
  key: (r) => `${r.name}:${r.offset.toString(16)}`,
  *run(k, { options, anomalies }) {
    const all = options['all'] === true;
    for (const v of crossViewModules(k, anomalies)) {
      const hidden = !v.inList;
      if (!hidden && !all) continue;
      yield {
        offset: v.address,
        name: v.name,
        inList: v.inList,
        inSysfs: v.inSysfs,
        carved: v.carved,
        hidden,
        state: v.info?.state ?? '?',
        base: v.info?.base ?? 0n,
        size: v.info?.size ?? 0,
        taints: v.info?.taints ?? '',
      };
    }
  },
});
