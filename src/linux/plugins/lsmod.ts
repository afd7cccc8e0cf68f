/**
 * lsmod: the kernel's `modules` list, with the values /proc/modules prints
 * (size, refcount, users, state, core address, taints).
 */
import { absent, definePlugin, type Absent } from '../plugin.js';
import { listModules, moduleUsers } from '../modules.js';

export interface LsmodRow {
  offset: bigint;
  name: string;
  size: number;
  refcount: number | Absent;
  users: string[];
  state: string;
  base: bigint;
  taints: string;
}

export default definePlugin<LsmodRow>()({
  name: 'lsmod',
  aliases: ['linux.lsmod', 'linux.lsmod.Lsmod'],
  version: '1.0.0',
  summary: 'Loaded kernel modules from the modules list (like /proc/modules)',
  requires: {
    symbols: ['modules'],
    fields: [
      ['module', 'list'],
      ['module', 'name'],
      ['module', 'state'],
    ],
    anyOf: [[['module', 'mem'], ['module', 'core_layout']]],
  },
  columns: [
    { key: 'offset', kind: 'hex' },
    { key: 'name', kind: 'str' },
    { key: 'size', kind: 'int' },
    { key: 'refcount', kind: 'int' },
    { key: 'users', kind: 'str' },
    { key: 'state', kind: 'str' },
    { key: 'base', kind: 'hex' },
    { key: 'taints', kind: 'str' },
  ],
  key: (r) => `${r.name}:${r.offset.toString(16)}`,
  *run(k, { anomalies }) {
    for (const m of listModules(k, anomalies)) {
      yield {
        offset: m.address,
        name: m.name,
        size: m.size,
        refcount: m.refcount ?? absent('not-available', 'kernel built without CONFIG_MODULE_UNLOAD'),
        users: moduleUsers(k, m.address, anomalies),
        state: m.state,
        base: m.base,
        taints: m.taints,
      };
    }
  },
});
