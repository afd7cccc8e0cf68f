/**
 * `vmsight monitor <source>`: attaches to a live guest and streams change events until stopped (Ctrl-C,
 * SIGTERM, --for, or QEMU exiting). A readable line per event on a terminal, JSON Lines when piped or with
 * --jsonl; --out FILE and --store FILE (SQLite) in addition. Ctrl-C flushes and closes every sink.
 */
import { SourceError, UsageError } from '../../core/errors.js';
import { attachKernel } from '../../linux/attach.js';
import { HaltingMemory } from '../../memory/halting.js';
import { findNamedGuest, parseSourceSpec } from '../../memory/open.js';
import type { EventSink } from '../../monitor/events.js';
import { GuestLifecycle } from '../../monitor/lifecycle.js';
import { DEFAULT_LIBVIRT_URI, findDomainPid } from '../../qemu/libvirt.js';
import { DEFAULT_INTERVAL_MS, DEFAULT_OPTIMIZATIONS, Monitor, type EventHook, type Optimizations } from '../../monitor/monitor.js';
import { JsonlSink } from '../../monitor/sinks/jsonl.js';
import { EventStore } from '../../monitor/sinks/store.js';
import { TerminalSink } from '../../monitor/sinks/terminal.js';
import { DEFAULT_WATCHES, WATCH_NAMES, type WatchName } from '../../monitor/watches/index.js';
import type { Command, ParsedArgs } from '../command.js';
import { attachOptions, attachOptionSpec, parseDuration, requireSource, stringOption } from './common.js';

/** Switches that turn an optimization off; `--page-level` and `--object-turns` turn the ones that are off by default on. */
const OPTIMIZATION_FLAGS: Record<string, keyof Optimizations> = {
  'no-field-filter': 'fieldFilter',
  'no-incremental': 'incremental',
  'no-reuse': 'reuse',
  'no-qmp-wake': 'qmpWake',
};

const USAGE =
  '<source> [--for DURATION] [--interval MS | --rate HZ] [--watch LIST] [--policy FILE] [--store FILE] [--out FILE] [--jsonl] ' +
  '[--cpu-budget FRACTION] [--files-pid PIDS] [--page-level] [--no-field-filter] [--no-incremental] [--no-reuse] [--no-qmp-wake] [--object-turns]';

export function parseWatches(text: string | undefined): WatchName[] {
  if (text === undefined) return [...DEFAULT_WATCHES];
  const names = text.split(',').map((s) => s.trim()).filter(Boolean);
  if (names.includes('all')) return [...WATCH_NAMES];
  const bad = names.filter((n) => !(WATCH_NAMES as readonly string[]).includes(n));
  if (bad.length || !names.length)
    throw new UsageError(`--watch: unknown watch ${bad.map((b) => `'${b}'`).join(', ') || '(none given)'}`, { hint: `valid: ${WATCH_NAMES.join(', ')}, all` });
  return [...new Set(names)] as WatchName[];
}

function intervalOf(args: ParsedArgs): number {
  const interval = stringOption(args, 'interval');
  const rate = stringOption(args, 'rate');
  if (interval !== undefined && rate !== undefined) throw new UsageError('give --interval or --rate, not both');
  if (rate !== undefined) {
    const hz = Number(rate);
    if (!/^[0-9]+(\.[0-9]+)?$/.test(rate) || hz <= 0 || hz > 100_000) throw new UsageError(`--rate ${JSON.stringify(rate)}: expected passes per second, 0 < HZ ≤ 100000`);
    return 1000 / hz;
  }
  if (interval === undefined) return DEFAULT_INTERVAL_MS;
  const ms = parseDuration(interval.match(/^[0-9.]+$/) ? `${interval}ms` : interval, '--interval');
  if (ms > 60_000) throw new UsageError(`--interval ${interval}: at most 60 s`);
  return ms;
}

function filePids(args: ParsedArgs): number[] | undefined {
  const v = stringOption(args, 'files-pid');
  if (v === undefined) return undefined;
  const pids = v.split(',').map((s) => s.trim());
  if (pids.some((p) => !/^[0-9]{1,10}$/.test(p))) throw new UsageError(`--files-pid ${JSON.stringify(v)}: expected pids separated by commas`);
  return pids.map(Number);
}

function cpuBudget(args: ParsedArgs): number | undefined {
  const v = stringOption(args, 'cpu-budget');
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!/^[0-9.]+$/.test(v) || !(n > 0 && n <= 1)) throw new UsageError(`--cpu-budget ${JSON.stringify(v)}: expected a fraction of one core, 0 < F ≤ 1`);
  return n;
}

/** QMP sockets (or a libvirt domain) and pid the monitor may use for lifecycle events, from the source name. */
function lifecycleEndpoints(spec: string): { sockets: string[]; pid: number | undefined; libvirt?: { uri: string; domain: string } } {
  try {
    const t = parseSourceSpec(spec);
    if (t.libvirt) {
      const uri = t.params['uri'] || DEFAULT_LIBVIRT_URI;
      return { sockets: [], pid: findDomainPid(uri, t.libvirt).pid, libvirt: { uri, domain: t.libvirt } };
    }
    if (t.lab !== undefined) {
      const g = findNamedGuest(t.lab);
      return { sockets: t.qmp ? [t.qmp] : [...(g?.qmpSockets ?? [])], pid: t.pid ?? g?.pid };
    }
    return { sockets: t.qmp ? [t.qmp] : [], pid: t.pid };
  } catch {
    return { sockets: [], pid: undefined };
  }
}

/** Loads a --policy file into an event hook; the policy module is loaded only when one is given. */
async function policyHook(file: string | undefined): Promise<EventHook | undefined> {
  if (file === undefined) return undefined;
  const { loadPolicy } = await import('../../monitor/policy/index.js');
  const policy = loadPolicy(file);
  return (event) => policy.evaluate(event);
}

export const command: Command = {
  name: 'monitor',
  summary: 'watch a live guest and stream change events (processes, modules, sockets, creds, hooks, …)',
  usage: USAGE,
  options: {
    ...attachOptionSpec,
    for: { type: 'string' },
    interval: { type: 'string' },
    rate: { type: 'string' },
    watch: { type: 'string' },
    policy: { type: 'string' },
    store: { type: 'string' },
    out: { type: 'string' },
    'cpu-budget': { type: 'string' },
    'files-pid': { type: 'string' },
    ...Object.fromEntries([...Object.keys(OPTIMIZATION_FLAGS), 'page-level', 'object-turns'].map((f) => [f, { type: 'boolean' as const }])),
  },
  async run(args, ctx) {
    const spec = requireSource(args, `vmsight monitor ${USAGE}`);
    const watches = parseWatches(stringOption(args, 'watch'));
    const intervalMs = intervalOf(args);
    const forText = stringOption(args, 'for');
    const durationMs = forText === undefined ? undefined : parseDuration(forText, '--for');
    const optimizations: { -readonly [K in keyof Optimizations]?: boolean } = {};
    for (const [flag, key] of Object.entries(OPTIMIZATION_FLAGS)) if (args.values[flag]) optimizations[key] = false;
    if (args.values['page-level']) optimizations.pageLevel = true;
    if (args.values['object-turns']) optimizations.objectTurns = true;
    const budget = cpuBudget(args);
    const pids = filePids(args);
    const hook = await policyHook(stringOption(args, 'policy'));

    // Every sink is opened (and refused) before anything attaches.
    const sinks: EventSink[] = [];
    const storePath = stringOption(args, 'store');
    const outPath = stringOption(args, 'out');
    try {
      const machine = ctx.out.format !== 'table' || !process.stdout.isTTY;
      sinks.push(machine ? new JsonlSink(process.stdout, { name: 'stdout' }) : new TerminalSink(process.stdout));
      if (outPath !== undefined) sinks.push(JsonlSink.open(outPath));
      if (storePath !== undefined) sinks.push(EventStore.open(storePath));
    } catch (e) {
      for (const s of sinks) await s.close().catch(() => undefined);
      throw e;
    }

    const kernel = await attachKernel(spec, attachOptions(args)).catch(async (e: unknown) => {
      for (const s of sinks) await s.close().catch(() => undefined);
      throw e;
    });
    const endpoints = lifecycleEndpoints(spec);
    // A guest-halting source's own stops and resumes are not the guest pausing.
    const own = kernel.memory instanceof HaltingMemory ? { own: kernel.memory } : {};
    const lifecycle = endpoints.libvirt
      ? await GuestLifecycle.openLibvirt(endpoints.libvirt.uri, endpoints.libvirt.domain, endpoints.pid, own)
      : await GuestLifecycle.open(endpoints.sockets, endpoints.pid, own);
    const abort = new AbortController();
    const onSignal = () => abort.abort();
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    const monitor = new Monitor(kernel, {
      watches,
      intervalMs,
      ...(durationMs !== undefined ? { durationMs } : {}),
      optimizations: { ...DEFAULT_OPTIMIZATIONS, ...optimizations },
      sinks,
      ...(hook ? { hooks: [hook] } : {}),
      lifecycle,
      signal: abort.signal,
      ...(budget !== undefined ? { cpuBudget: budget } : {}),
      ...(pids ? { filePids: pids } : {}),
    });
    let result;
    try {
      result = await monitor.run();
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      const failures = await monitor.closeSinks();
      for (const f of failures) process.stderr.write(`vmsight: monitor: sink ${f}\n`);
      await lifecycle.close();
      await monitor.current.close().catch(() => undefined);
    }
    if (ctx.debug) process.stderr.write(`vmsight: monitor: ${JSON.stringify(result.stats)}\n`);
    if (result.reason === 'qemu-exited') {
      throw new SourceError(kernel.memory.technique.class, spec, `QEMU exited while being monitored (${result.lastSeq} events streamed${storePath ? `, store ${storePath} closed cleanly` : ''})`);
    }
    if (result.reason === 'reboot-timeout') throw new SourceError(kernel.memory.technique.class, spec, 'the guest rebooted and its kernel did not come up again in time');
    if (result.reason === 'error') throw new SourceError(kernel.memory.technique.class, spec, `monitoring stopped: ${result.detail ?? 'unknown error'}`);
  },
};
