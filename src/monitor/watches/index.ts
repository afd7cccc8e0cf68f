/**
 * The built-in watches, by their `--watch` names. `processes`, `threads` and `creds` are one watch over the
 * task list (one walk serves all three); the others each wrap a plugin.
 */
import type { Watch } from '../watcher.js';
import { filesWatch } from './files.js';
import { hiddenModulesWatch } from './hidden.js';
import { idtWatch, syscallsWatch } from './integrity.js';
import { kmsgWatch } from './kmsg.js';
import { modulesWatch } from './modules.js';
import { ProcessWatch } from './processes.js';
import { socketsWatch } from './sockets.js';

export const WATCH_NAMES = ['processes', 'threads', 'creds', 'modules', 'sockets', 'files', 'syscalls', 'idt', 'hidden', 'kmsg'] as const;
export type WatchName = (typeof WATCH_NAMES)[number];

/** What `vmsight monitor` watches without --watch (files is opt-in: it costs a sweep of every fd table). */
export const DEFAULT_WATCHES: readonly WatchName[] = ['processes', 'threads', 'creds', 'modules', 'sockets', 'syscalls', 'idt', 'hidden', 'kmsg'];

export interface WatchBuildOptions {
  /** Pids whose files are watched (default: every process). */
  readonly filePids?: readonly number[];
}

export function buildWatches(names: readonly WatchName[], opts: WatchBuildOptions = {}): Watch[] {
  const on = new Set(names);
  const out: Watch[] = [];
  if (on.has('processes') || on.has('threads') || on.has('creds'))
    out.push(new ProcessWatch({ processes: on.has('processes'), threads: on.has('threads'), creds: on.has('creds') }));
  if (on.has('modules')) out.push(modulesWatch());
  if (on.has('sockets')) out.push(socketsWatch());
  if (on.has('files')) out.push(filesWatch(200, opts.filePids));
  if (on.has('syscalls')) out.push(syscallsWatch());
  if (on.has('idt')) out.push(idtWatch());
  if (on.has('hidden')) out.push(hiddenModulesWatch());
  if (on.has('kmsg')) out.push(kmsgWatch());
  return out;
}
