/**
 * Open files (opt-in: `--watch files`): a file opened or closed by a watched process (lsof's rows). An fd
 * table is not one range we can watch cheaply, so this watch re-reads on a sweep and whenever processes
 * come or go; its cost is the price of opting in (see the monitor benchmark).
 */
import lsof, { type LsofRow } from '../../linux/plugins/lsof.js';
import { hexAddress, type EventDraft } from '../events.js';
import { PluginWatch } from './plugin-watch.js';

export function filesWatch(sweepMs = 200, pids?: readonly number[]): PluginWatch<LsofRow> {
  return new PluginWatch<LsofRow>({
    name: 'files',
    plugin: lsof,
    ...(pids?.length ? { options: { pid: pids.map(String) } } : {}),
    emits: ['file-open', 'file-close'],
    sweepMs,
    sentinels: () => [],
    diff(prev, next) {
      const out: EventDraft[] = [];
      const facts = (r: LsofRow) => ({ fd: r.fd, path: r.path, kind: r.kind, flags: r.flags, file: hexAddress(r.file) });
      for (const [key, r] of next)
        if (!prev.has(key)) out.push({ type: 'file-open', watch: 'files', key, process: { pid: r.pid, comm: r.comm }, data: facts(r) });
      for (const [key, r] of prev)
        if (!next.has(key)) out.push({ type: 'file-close', watch: 'files', key, process: { pid: r.pid, comm: r.comm }, data: facts(r) });
      return out;
    },
  });
}
