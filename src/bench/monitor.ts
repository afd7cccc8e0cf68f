/**
 * The monitor suite (issue 7 §5): what real-time monitoring of a live lab guest (live map) costs and how
 * fast it sees things, each figure a distribution or ratio from one run:
 *  - monitor-latency: guest action → event, against the guest's own CLOCK_MONOTONIC (monitor-clock.ts);
 *  - monitor-cpu: host CPU of the monitor on an idle guest at the default interval and at 10/100/1000 passes/s and flat out,
 *    next to a bare setTimeout(1) loop (the timer floor);
 *  - monitor-walk: an unchanged tick, TaskScanner.scan, a warm pslist, and an unchecked walk (the floor);
 *  - monitor-slowdown: in-guest cpu/mem/fork benches with the monitor off, on (live map), on (halting);
 *  - monitor-optimizations: ticks/s and CPU under a light steady workload with each optimization off.
 * Needs a lab guest (it drives actions through lab exec).
 *
 * Longer than ~400 lines on purpose: the five experiments of the issue share one guest, one clock map and one way of running a monitor; apart they would repeat that set-up five times.
 */
import { attachKernel, type AttachedKernel } from '../linux/attach.js';
import { AnomalySink } from '../linux/anomaly.js';
import type { Plugin } from '../linux/plugin.js';
import { plugins } from '../linux/plugins/index.js';
import { guestNow, labRun, labSpawn, parseBenchLine, runGuestBench, spawnAction, actionEvents, type GuestBenchKind } from '../lab/index.js';
import { PerformanceObserver } from 'node:perf_hooks';
import { DEFAULT_INTERVAL_MS, Monitor, OBJECT_SLICE, type MonitorStats, type Optimizations, type TickInfo, type WatchTiming } from '../monitor/monitor.js';
import type { EventSink, MonitorEvent } from '../monitor/events.js';
import { GuestView } from '../monitor/guest-view.js';
import { TaskScanner } from '../monitor/task-scan.js';
import type { WatchSet } from '../monitor/watch-set.js';
import { clockMap, GuestClock, hostNs, type ClockFix, type ClockMap } from './monitor-clock.js';
import { uncheckedWalker } from './monitor-floor.js';
import { median, type BenchTable } from './report.js';
import { seededRandom } from '../core/random.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const progress = (what: string) => process.stderr.write(`bench monitor: ${new Date().toISOString().slice(11, 19)} ${what}\n`);

/** Where an event's latency went: the tick that delivered it and the one before (performance.now() ms). */
interface TickShape {
  readonly emitMs: number;
  readonly tickMs: number;
  readonly previousTickMs: number;
  readonly previousBusyMs: number;
  readonly previousSleepMs: number;
  readonly previousSweeps: string;
  /** The sweep this tick ran before the look that delivered the event ('' when none). */
  readonly sweptBefore: string;
}

/** Keeps every event with the host hrtime it was handed over at (the moment the monitor saw it). */
class RecordingSink implements EventSink {
  readonly name = 'bench';
  readonly dropped = 0;
  /** Set once the monitor exists: the tick delivering events. */
  ticks: TickInfo | undefined;
  /** at: host hrtime ns; wall: host epoch ms (sub-ms), comparable with the event's window. */
  readonly seen: { e: MonitorEvent; at: number; wall: number; tick: TickShape | undefined }[] = [];
  write(e: MonitorEvent): boolean {
    const now = performance.now();
    const t = this.ticks;
    const tick = t
      ? { emitMs: now, tickMs: t.startedMs, previousTickMs: t.previousStartedMs, previousBusyMs: t.previousBusyMs, previousSleepMs: t.previousSleepMs, previousSweeps: t.previousSweeps, sweptBefore: t.sweptBefore }
      : undefined;
    this.seen.push({ e, at: hostNs(), wall: performance.timeOrigin + now, tick });
    return true;
  }
  async flush(): Promise<void> {}
  async close(): Promise<void> {}
}

interface Watched {
  readonly sink: RecordingSink;
  readonly stats: MonitorStats;
  readonly timings: Record<string, WatchTiming>;
  readonly monitor: Monitor;
  /** Garbage collections during the window (performance.now() ms). */
  readonly gcs: { start: number; ms: number }[];
  /** Host CPU (user+system) over the window between ready and stop, share of one core. */
  readonly cpu: number;
  readonly seconds: number;
}

/** Runs a monitor; `during` runs once it is ready and the monitor stops when it resolves. */
async function watch(kernel: AttachedKernel, intervalMs: number, during: () => Promise<void>, optimizations: Partial<Optimizations> = {}): Promise<Watched> {
  const sink = new RecordingSink();
  let ready!: () => void;
  const isReady = new Promise<void>((r) => (ready = r));
  // VMSIGHT_BENCH_LOOK_AFTER_SWEEP=0: the monitor looks for what changed during a sweep at the next tick only (for comparison).
  const lookAfterSweep = process.env['VMSIGHT_BENCH_LOOK_AFTER_SWEEP'] !== '0';
  const monitor = new Monitor(kernel, { sinks: [sink], intervalMs, optimizations, lookAfterSweep, onReady: () => ready() });
  sink.ticks = monitor.tickInfo;
  const gcs: { start: number; ms: number }[] = [];
  const gcWatch = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gcs.push({ start: e.startTime, ms: e.duration });
  });
  gcWatch.observe({ entryTypes: ['gc'] });
  const running = monitor.run();
  await Promise.race([isReady, running]);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let stats: MonitorStats;
  let timings: Record<string, WatchTiming>;
  const before = { ...monitor.stats };
  try {
    await during();
  } finally {
    monitor.stop();
    const result = await running;
    gcWatch.disconnect();
    stats = result.stats;
    timings = result.watchTimings;
    if (result.reason === 'error') throw new Error(`bench monitor: the monitor failed: ${result.detail}`);
  }
  const cpu = process.cpuUsage(cpu0);
  const seconds = (performance.now() - t0) / 1000;
  const delta = Object.fromEntries(Object.entries(stats).map(([k, v]) => [k, v - (before as unknown as Record<string, number>)[k]!])) as unknown as MonitorStats;
  return { sink, stats: delta, timings, monitor, gcs: gcs.filter((g) => g.start >= t0), cpu: (cpu.user + cpu.system) / 1e6 / seconds, seconds };
}

function quantile(xs: readonly number[], q: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
}

const r2 = (x: number) => +x.toFixed(2);
const r1 = (x: number) => +x.toFixed(1);

// ---------------------------------------------------------------- 1. detection latency

/**
 * One calibration: an upper bound on the offset from a few `vmi-helper now` round trips (the guest's t
 * is no earlier than the host's send), then the timekeeper's lower bound with the guest kept busy.
 */
async function calibrate(clock: GuestClock, guest: string): Promise<ReturnType<GuestClock['calibrate']>> {
  progress('calibrating the guest clock');
  let upper = Infinity;
  for (let i = 0; i < 5; i++) {
    const h0 = hostNs();
    const t = Number(await guestNow(guest));
    upper = Math.min(upper, t - h0);
  }
  await labSpawn(guest, ['/bin/vmi-helper', 'bench', 'cpu', '2']);
  await sleep(300);
  const fix = clock.calibrate(1000, upper);
  await sleep(1000);
  return fix;
}

function latencyRow(what: string, ms: number[], clock: ClockMap, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    what,
    n: ms.length,
    medianMs: r2(median(ms)),
    p90Ms: r2(quantile(ms, 0.9)),
    p99Ms: r2(quantile(ms, 0.99)),
    maxMs: r2(Math.max(...ms)),
    minMs: r2(Math.min(...ms)),
    clockSlackMs: +(clock.errorNs / 1e6).toFixed(2),
    driftPpm: r1(clock.driftPpm),
    ...extra,
  };
}

type Seen = RecordingSink['seen'][number];

function dist(what: string, xs: readonly number[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { what, n: xs.length, medianMs: r2(median(xs)), p90Ms: r2(quantile(xs, 0.9)), p99Ms: r2(quantile(xs, 0.99)), maxMs: r2(Math.max(...xs)), minMs: r2(Math.min(...xs)), ...extra };
}

/**
 * Where the latency of each process start went, from the tick that delivered it (host clock only): the
 * work in that tick before the event (walk, argv, namespace, event), and the gap since the previous look,
 * split into that tick's work, the sleep asked after it and the timer's lateness; then the starts whose
 * gap held a sweep (a periodic plugin pass) or a garbage collection, against the rest.
 */
function breakdown(starts: readonly Seen[], latency: readonly number[], w: Watched): Record<string, unknown>[] {
  const shaped = starts.map((s, i) => ({ s, ms: latency[i]!, t: s.tick })).filter((x) => x.t !== undefined) as { s: Seen; ms: number; t: TickShape }[];
  const inTick = shaped.map((x) => x.t.emitMs - x.t.tickMs);
  const gap = shaped.map((x) => x.t.tickMs - x.t.previousTickMs);
  const prevBusy = shaped.map((x) => x.t.previousBusyMs);
  const late = shaped.map((x) => x.t.tickMs - x.t.previousTickMs - x.t.previousBusyMs - x.t.previousSleepMs);
  const gcIn = (x: { t: TickShape }) => w.gcs.some((g) => g.start < x.t.emitMs && g.start + g.ms > x.t.previousTickMs);
  const sweptOf = (x: { t: TickShape }) => x.t.sweptBefore || x.t.previousSweeps;
  const swept = shaped.filter((x) => sweptOf(x) !== '');
  const gcd = shaped.filter((x) => sweptOf(x) === '' && gcIn(x));
  const clean = shaped.filter((x) => sweptOf(x) === '' && !gcIn(x));
  const rows = [
    dist('  breakdown: in the delivering tick, tick start → event (walk, argv, pid ns, event)', inTick),
    dist('  breakdown: gap between the two looks around the start', gap),
    dist('    of which the previous tick\'s work', prevBusy),
    dist('    of which the timer firing late (beyond the asked sleep)', late),
    dist('  starts after a sweep (in the tick before, or earlier in the same tick) (latency lower bound)', swept.map((x) => x.ms), { sweeps: [...new Set(swept.map(sweptOf))].join(',') }),
    dist('  starts with a GC in their gap (latency lower bound)', gcd.map((x) => x.ms)),
    dist('  the other starts (latency lower bound)', clean.map((x) => x.ms)),
  ];
  const gcMs = w.gcs.map((g) => g.ms);
  rows.push(dist('  garbage collections in the window (duration)', gcMs));
  for (const [name, t] of Object.entries(w.timings)) {
    if (t.updates) rows.push({ what: `  watch ${name}: update (µs→ms)`, n: t.updates, medianMs: '', p90Ms: '', p99Ms: '', maxMs: r2(t.updateMaxUs / 1000), minMs: '', meanMs: r2(t.updateUs / t.updates / 1000) });
    if (t.sweeps) rows.push({ what: `  watch ${name}: sweep`, n: t.sweeps, medianMs: '', p90Ms: '', p99Ms: '', maxMs: r2(t.sweepMaxUs / 1000), minMs: '', meanMs: r2(t.sweepUs / t.sweeps / 1000) });
  }
  return rows;
}

function startsIn(sink: RecordingSink, fromGuestNs: number): Seen[] {
  return sink.seen.filter((s) => s.e.type === 'process-start' && s.e.guestTimeNs !== undefined && s.e.guestTimeNs >= fromGuestNs);
}

/** The timekeeper's map raised by causality, a second lower bound on the offset: no task is seen before its start_time. */
function causalMap(before: ClockFix, after: ClockFix, starts: readonly Seen[]): { map: ClockMap; raise: number } {
  const tk = clockMap(before, after);
  const raise = Math.max(0, ...starts.map((s) => s.e.guestTimeNs! - tk.guestAt(s.at)));
  const up = (f: ClockFix): ClockFix => ({ ...f, offsetNs: f.offsetNs + raise, errorNs: Math.max(0, f.errorNs - raise) });
  return { map: clockMap(up(before), up(after)), raise };
}

/** Cred changes and listens: each action prints t= (guest CLOCK_MONOTONIC) right after its syscall. */
async function credAndListenLatency(guest: string, clock: GuestClock, kernel: AttachedKernel, optimizations: Partial<Optimizations>, label: string): Promise<Record<string, unknown>[]> {
  const N = 10;
  const before2 = await calibrate(clock, guest);
  const escalates: number[] = [];
  const listens: { pid: number; port: number }[] = [];
  progress(`cred changes and listens (${N} each${label})`);
  let from2 = 0;
  const w2 = await watch(
    kernel,
    DEFAULT_INTERVAL_MS,
    async () => {
      from2 = clock.read() ?? 0;
      for (let i = 0; i < N; i++) {
        escalates.push((await spawnAction(guest, 'escalate', [1500])).pid);
        listens.push({ pid: (await spawnAction(guest, 'listen', [9300 + i, 3])).pid, port: 9300 + i });
      }
      await sleep(2500);
    },
    optimizations,
  );
  const after2 = await calibrate(clock, guest);
  const { map: map2 } = causalMap(before2, after2, startsIn(w2.sink, from2));
  const credMs: number[] = [];
  const listenMs: number[] = [];
  let credMissing = 0;
  let listenMissing = 0;
  for (const pid of escalates) {
    const t = (await actionEvents(guest, pid)).find((a) => a.event === 'escalated')?.t;
    // The helper first drops to uid 1000 (a cred change too), then raises back to 0: match the raise.
    const ev = w2.sink.seen.find((s) => s.e.type === 'cred-change' && s.e.process?.pid === pid && s.e.after?.['uid'] === 0);
    if (t === undefined || !ev) credMissing++;
    else credMs.push((map2.guestAt(ev.at) - Number(t)) / 1e6);
  }
  for (const { pid, port } of listens) {
    const t = (await actionEvents(guest, pid)).find((a) => a.event === 'listen')?.t;
    const ev = w2.sink.seen.find((s) => s.e.type === 'socket-listen' && (s.e.data as Record<string, unknown> | undefined)?.['localPort'] === port);
    if (t === undefined || !ev) listenMissing++;
    else listenMs.push((map2.guestAt(ev.at) - Number(t)) / 1e6);
  }
  await labRun(guest, ['sh', '-c', `kill ${escalates.join(' ')} 2>/dev/null; true`]);
  return [
    latencyRow(`cred change (escalated t= → event)${label}`, credMs, map2, { missing: credMissing }),
    latencyRow(`listen (listen t= → event)${label}`, listenMs, map2, { missing: listenMissing }),
  ];
}

async function benchLatency(kernel: AttachedKernel, guest: string, clock: GuestClock): Promise<BenchTable> {
  const rows: Record<string, unknown>[] = [];
  const ITER = 130;
  // Process starts: one guest shell loop (started before the window, so lab exec is not in it) runs a helper
  // whose child lives 30 ms, every ~60 ms: two process starts per iteration, spaced.
  const script = `i=0; while [ $i -lt ${ITER} ]; do /bin/vmi-helper burst 1 30 >/dev/null; usleep 60000; i=$((i+1)); done`;
  let loopPid = 0;
  let from = 0;
  const before = await calibrate(clock, guest);
  progress(`process starts (${ITER * 2})`);
  const w = await watch(kernel, DEFAULT_INTERVAL_MS, async () => {
    from = clock.read() ?? 0;
    loopPid = (await labSpawn(guest, ['sh', '-c', script])).pid;
    for (let i = 0; i < 120; i++) {
      await sleep(1000);
      const alive = await labRun(guest, ['sh', '-c', `kill -0 ${loopPid} 2>/dev/null && echo y || echo n`]);
      if (alive.trim() === 'n') break;
    }
  });
  const after = await calibrate(clock, guest);
  // Every process started in the window: the loop's helpers and their children, and lab exec's probes.
  const starts = startsIn(w.sink, from);
  const { map, raise } = causalMap(before, after, starts);
  const ms = starts.map((s) => (map.guestAt(s.at) - s.e.guestTimeNs!) / 1e6);
  // Host-only cross-check, no clock map: the time since the monitor's previous look (the event's window.from,
  // host ms), an upper bound on the time since the task was linked if every look sees what is there.
  const sinceLook = starts.map((s) => s.wall - s.e.window.from);
  const unseen = w.sink.seen.filter((s) => s.e.type === 'unseen-starts').reduce((a, s) => a + Number((s.e.data as Record<string, unknown> | undefined)?.['count'] ?? 0), 0);
  rows.push(latencyRow('process start (task start_time → event)', ms, map, { unseenStarts: unseen, causalityRaiseMs: r2(raise / 1e6) }));
  rows.push(dist('process start: host time since the previous look (no clock map)', sinceLook));
  rows.push(...breakdown(starts, ms, w));

  // Cred changes and listens live in the objects' ranges (a task's cred pointer), compared every tick by
  // default: measured again with the objects in turns (--object-turns), to show what turns cost in latency.
  rows.push(...(await credAndListenLatency(guest, clock, kernel, {}, '')));
  rows.push(...(await credAndListenLatency(guest, clock, kernel, { objectTurns: true }, ', --object-turns')));
  return {
    name: 'monitor-latency',
    description:
      `guest action → monitor event at the default ${DEFAULT_INTERVAL_MS} ms interval, live map;` + ' host time of the event mapped to guest CLOCK_MONOTONIC by the largest ' +
      "proven lower bound on the offset (the guest's timekeeper polled in its memory before and after the window, raised by causalityRaiseMs so that no task " +
      'is seen before its start_time): latencies are lower bounds, the true ones at most clockSlackMs higher (from vmi-helper now round trips); driftPpm: guest vs host clock; ' +
      'window.from rows: host ms since the previous tick (1 ms granularity of the window)',
    columns: ['what', 'n', 'medianMs', 'p90Ms', 'p99Ms', 'maxMs', 'minMs', 'meanMs', 'clockSlackMs', 'driftPpm', 'causalityRaiseMs', 'unseenStarts', 'missing', 'sweeps'],
    rows,
  };
}

// ---------------------------------------------------------------- 2. host CPU

async function timerFloor(seconds: number, ms: number): Promise<{ cpu: number; ticksPerS: number }> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let ticks = 0;
  while (performance.now() - t0 < seconds * 1000) {
    await sleep(ms);
    ticks++;
  }
  const c = process.cpuUsage(cpu0);
  const s = (performance.now() - t0) / 1000;
  return { cpu: (c.user + c.system) / 1e6 / s, ticksPerS: ticks / s };
}

interface IdleTicks {
  /** detect µs per tick in the loop: flat out, and at the default interval. */
  readonly flatUs: number;
  readonly defaultUs: number;
  readonly monitor: Monitor | undefined;
}

async function benchCpu(kernel: AttachedKernel): Promise<{ table: BenchTable; idle: IdleTicks }> {
  const rows: Record<string, unknown>[] = [];
  const SECONDS = 4;
  for (const ms of [1, DEFAULT_INTERVAL_MS]) {
    const floor = await timerFloor(SECONDS, ms);
    rows.push({ setting: `setTimeout(${ms}) loop (timer floor)`, cpuPct: r1(floor.cpu * 100), ticksPerS: Math.round(floor.ticksPerS), passesPerS: '', detectUsPerTick: '' });
  }
  let idleTickUs = NaN;
  let defaultTickUs = NaN;
  let idleMonitor: Monitor | undefined;
  const settings: { setting: string; intervalMs: number }[] = [
    { setting: `default (--interval ${DEFAULT_INTERVAL_MS})`, intervalMs: DEFAULT_INTERVAL_MS },
    { setting: '--rate 10', intervalMs: 100 },
    { setting: '--rate 100', intervalMs: 10 },
    { setting: '--rate 1000', intervalMs: 1 },
    { setting: '--interval 0 (highest rate)', intervalMs: 0 },
  ];
  for (const { setting, intervalMs } of settings) {
    const w = await watch(kernel, intervalMs, () => sleep(SECONDS * 1000));
    const detect = w.stats.detectUs / Math.max(1, w.stats.ticks);
    if (intervalMs === 0) {
      idleTickUs = detect;
      idleMonitor = w.monitor;
    }
    if (intervalMs === DEFAULT_INTERVAL_MS) defaultTickUs = detect;
    rows.push({
      setting,
      cpuPct: r1(w.cpu * 100),
      ticksPerS: Math.round(w.stats.ticks / w.seconds),
      passesPerS: r1(w.stats.passes / w.seconds),
      detectUsPerTick: r2(detect),
    });
  }
  return {
    table: {
      name: 'monitor-cpu',
      description: `host CPU of the monitor (process.cpuUsage, user+system, share of one core, nothing subtracted) on the idle guest, ${SECONDS} s each; passes = ticks that found a change`,
      columns: ['setting', 'cpuPct', 'ticksPerS', 'passesPerS', 'detectUsPerTick'],
      rows,
    },
    idle: { flatUs: idleTickUs, defaultUs: defaultTickUs, monitor: idleMonitor },
  };
}

// ---------------------------------------------------------------- 3. walks

/** Median µs per call over batches (a batch amortizes the clock read). */
function timeIt(fn: () => unknown, batches = 30, perBatch = 50): number {
  for (let i = 0; i < perBatch * 3; i++) fn();
  const xs: number[] = [];
  for (let b = 0; b < batches; b++) {
    const t0 = performance.now();
    for (let i = 0; i < perBatch; i++) fn();
    xs.push(((performance.now() - t0) * 1000) / perBatch);
  }
  return median(xs);
}

/**
 * Median µs per call of `a` and of `b`, timed in alternating batches, and the median of the per-round
 * ratios a/b: a change of load during the measurement weighs on both sides of the ratio alike.
 */
function timePair(a: () => unknown, b: () => unknown, rounds = 40, perBatch = 50): { aUs: number; bUs: number; ratio: number } {
  for (let i = 0; i < perBatch * 3; i++) a(), b();
  const as: number[] = [];
  const bs: number[] = [];
  const ratios: number[] = [];
  const batch = (fn: () => unknown): number => {
    const t0 = performance.now();
    for (let i = 0; i < perBatch; i++) fn();
    return ((performance.now() - t0) * 1000) / perBatch;
  };
  for (let r = 0; r < rounds; r++) {
    // Alternate which goes first, so neither always runs right after the other warmed the caches.
    let x: number;
    let y: number;
    if (r % 2) {
      x = batch(a);
      y = batch(b);
    } else {
      y = batch(b);
      x = batch(a);
    }
    as.push(x);
    bs.push(y);
    ratios.push(x / y);
  }
  return { aUs: median(as), bUs: median(bs), ratio: median(ratios) };
}

/** Touches 32 MiB so the next call finds none of its bytes in the caches (what happens between two ticks). */
const evictor = new Uint8Array(32 << 20);
function evictCaches(): void {
  for (let i = 0; i < evictor.length; i += 64) evictor[i] = (evictor[i]! + 1) & 0xff;
}

/** µs of one detect() after evicting the caches, median over `n` (the eviction is outside the timing). */
function coldDetectUs(ws: WatchSet, objectSlice: number, n = 30): number {
  const xs: number[] = [];
  for (let i = 0; i < n; i++) {
    evictCaches();
    const t0 = performance.now();
    ws.detect({ pageLevel: false, fieldFilter: true, objectSlice });
    xs.push((performance.now() - t0) * 1000);
  }
  return median(xs);
}

async function benchWalk(kernel: AttachedKernel, idle: IdleTicks): Promise<BenchTable> {
  const idleTickUs = idle.flatUs;
  const scanner = new TaskScanner(kernel, new GuestView(kernel));
  const floor = uncheckedWalker(kernel);
  const scanned = scanner.scan(new AnomalySink(), true);
  const floored = floor();
  const walks = timePair(() => scanner.scan(new AnomalySink(), true), floor);
  const scanUs = walks.aUs;
  const floorUs = walks.bUs;
  const ws = idle.monitor?.watched;
  const shape = ws?.shape;
  // The default compares every object every tick; --object-turns compares OBJECT_SLICE of them a tick.
  const warmUs = ws ? timeIt(() => ws.detect({ pageLevel: false, fieldFilter: true, objectSlice: Infinity }), 30, 200) : NaN;
  const coldUs = ws ? coldDetectUs(ws, Infinity) : NaN;
  const coldTurnsUs = ws ? coldDetectUs(ws, OBJECT_SLICE) : NaN;
  const perRange = (us: number) => (shape ? { ranges: shape.pieces, words: shape.words, nsPerRange: Math.round((us * 1000) / shape.pieces), nsPerWord: Math.round((us * 1000) / Math.max(1, shape.words)) } : {});
  const pslist = plugins.find((p) => p.name === 'pslist') as Plugin<any>;
  const warm = await kernel.pass();
  const pslistUs = timeIt(() => warm.run(pslist), 40, 5);
  warm.end();
  // With the refresh a pass makes (what a monitor tick using the plugin would pay).
  const xs: number[] = [];
  for (let i = 0; i < 40; i++) {
    const t0 = performance.now();
    const pass = await kernel.pass();
    pass.run(pslist);
    pass.end();
    if (i >= 5) xs.push((performance.now() - t0) * 1000);
  }
  const pslistPassUs = median(xs);
  const row = (what: string, us: number, tasks: number | string, extra: Record<string, unknown> = {}) => ({ what, us: r2(us), tasks, vsFloor: r2(us / floorUs), ...extra });
  return {
    name: 'monitor-walk',
    description:
      'µs per call on the live guest (live map), median of batches; vsFloor = time / the unchecked walk (for the scan: the median of 40 per-round ratios, ' +
      'scan and floor timed in alternating batches); pslist/scan is how much faster the scanner is than the plugin',
    columns: ['what', 'us', 'tasks', 'vsFloor', 'pslistOverScan', 'ranges', 'words', 'nsPerRange', 'nsPerWord', 'target'],
    rows: [
      row('monitor tick over the unchanged guest, in the loop flat out (watch-set compare)', idleTickUs, '', { target: '≤ 20 µs', ...perRange(idleTickUs) }),
      row(`  the same at the default --interval ${DEFAULT_INTERVAL_MS}`, idle.defaultUs, '', { target: '≤ 20 µs', ...perRange(idle.defaultUs) }),
      row('  the same compare in a tight loop (warm caches)', warmUs, '', perRange(warmUs)),
      row('  the same compare after evicting the caches (32 MiB touched first)', coldUs, '', perRange(coldUs)),
      row(`  the same, objects in turns of ${OBJECT_SLICE} (--object-turns)`, coldTurnsUs, '', perRange(coldTurnsUs)),
      { ...row('TaskScanner.scan (threads on, every pslist fact)', scanUs, scanned.tasks.length, { target: '≤ 100 µs, ≤ 3× floor' }), vsFloor: r2(walks.ratio) },
      row('unchecked walk of the same facts (floor, bench only)', floorUs, floored.length),
      row('pslist plugin, warm pass', pslistUs, '', { pslistOverScan: r2(pslistUs / scanUs) }),
      row('pslist plugin, pass with refresh', pslistPassUs, '', { pslistOverScan: r2(pslistPassUs / scanUs) }),
    ],
  };
}

// ---------------------------------------------------------------- 4. guest slowdown

/**
 * One in-guest bench with a guest-halting monitor running: the bench is started detached first (lab exec
 * cannot reach a guest that the monitor holds paused), the halting source is attached (which pauses the
 * guest), the monitor runs for `seconds`, the source is closed (which resumes the guest) and the bench's
 * line is read from its log once it ends. The guest's clock stands still while QEMU has it stopped, so the
 * bench's own rate hides the pauses; the wall rate adds the time the source held the guest paused.
 */
async function haltingRun(source: string, guest: string, kind: GuestBenchKind, seconds: number): Promise<{ guestRate: number; wallRate: number; pausedShare: number }> {
  const spawned = await labSpawn(guest, ['/bin/vmi-helper', 'bench', kind, String(seconds)]);
  await sleep(200);
  const halting = await attachKernel(source, { halting: true });
  let pausedMs = 0;
  const t0 = performance.now();
  try {
    await watch(halting, DEFAULT_INTERVAL_MS, () => sleep(seconds * 1000));
    pausedMs = (halting.memory as unknown as { stats?: { pausedMs?: number } }).stats?.pausedMs ?? NaN;
  } finally {
    await halting.close();
  }
  const wall = performance.now() - t0;
  for (let i = 0; i < 120; i++) {
    const log = await labRun(guest, ['cat', spawned.logPath]).catch(() => '');
    const r = parseBenchLine(log);
    if (r) return { guestRate: r.rate, wallRate: (r.rate * r.seconds) / (r.seconds + pausedMs / 1000), pausedShare: pausedMs / wall };
    await sleep(500);
  }
  throw new Error(`bench monitor: the guest bench ${kind} under the halting monitor did not finish`);
}

/** The median and a 95 % bootstrap interval of the median (2,000 resamples). */
function medianCi(xs: readonly number[]): { median: number; lo: number; hi: number } {
  const rnd = seededRandom(xs.length * 7919); // the same data gives the same interval
  const meds: number[] = [];
  for (let i = 0; i < 2000; i++) meds.push(median(Array.from({ length: xs.length }, () => xs[Math.floor(rnd() * xs.length)]!)));
  return { median: median(xs), lo: quantile(meds, 0.025), hi: quantile(meds, 0.975) };
}

const ci = (c: { median: number; lo: number; hi: number }) => `${r2(c.median)} [${r2(c.lo)}, ${r2(c.hi)}]`;

/**
 * Guest slowdown, measured so the noise floor shows: many short rounds, each `off A, on, off B` (the
 * order of the two offs alternates), the slowdown of `on` against the mean of its two offs, and beside it
 * the same statistic for the two offs against each other (a control pair with nothing changed: the noise
 * floor of the method on this machine). Medians with 95 % bootstrap intervals. A slowdown is resolved only
 * when its interval lies outside the control's.
 */
async function benchSlowdown(live: AttachedKernel, source: string, guest: string): Promise<BenchTable> {
  const KINDS: GuestBenchKind[] = ['cpu', 'mem', 'fork'];
  const ROUNDS = Number(process.env['VMSIGHT_BENCH_SLOWDOWN_ROUNDS']) || 8;
  const SECONDS = 1;
  const HALT_ROUNDS = 2;
  const rows: Record<string, unknown>[] = [];
  for (const kind of KINDS) {
    const slow: number[] = [];
    const control: number[] = [];
    const offs: number[] = [];
    const ons: number[] = [];
    let unit = '';
    for (let r = 0; r < ROUNDS; r++) {
      progress(`guest slowdown: ${kind} round ${r + 1}/${ROUNDS}`);
      const a = await runGuestBench(guest, kind, SECONDS);
      unit = a.unit;
      let on = 0;
      await watch(live, DEFAULT_INTERVAL_MS, async () => void (on = (await runGuestBench(guest, kind, SECONDS)).rate));
      const b = await runGuestBench(guest, kind, SECONDS);
      // Alternate which off run is the reference, so a drift within a round does not lean one way.
      const [first, second] = r % 2 ? [b.rate, a.rate] : [a.rate, b.rate];
      slow.push((1 - on / ((a.rate + b.rate) / 2)) * 100);
      control.push((1 - second / first) * 100);
      offs.push(a.rate, b.rate);
      ons.push(on);
    }
    const haltWall: number[] = [];
    const haltGuest: number[] = [];
    const paused: number[] = [];
    for (let r = 0; r < HALT_ROUNDS; r++) {
      progress(`guest slowdown: ${kind} under guest-halting, round ${r + 1}/${HALT_ROUNDS}`);
      const base = await runGuestBench(guest, kind, SECONDS * 2);
      const h = await haltingRun(source, guest, kind, SECONDS * 2);
      haltWall.push((1 - h.wallRate / base.rate) * 100);
      haltGuest.push((1 - h.guestRate / base.rate) * 100);
      paused.push(h.pausedShare);
    }
    const s = medianCi(slow);
    const c = medianCi(control);
    const resolved = s.lo > c.hi || s.hi < c.lo;
    rows.push({
      workload: kind,
      unit,
      rounds: ROUNDS,
      offRate: r1(median(offs)),
      liveMapRate: r1(median(ons)),
      liveMapSlowdownPct: ci(s),
      controlOffOffPct: ci(c),
      resolved: resolved ? 'yes' : 'no: within the noise floor',
      spreadPct: `${r1(Math.min(...slow))}…${r1(Math.max(...slow))}`,
      haltingWallSlowdownPct: r1(median(haltWall)),
      haltingGuestClockSlowdownPct: r1(median(haltGuest)),
      haltingPausedPct: r1(median(paused) * 100),
    });
  }
  return {
    name: 'monitor-slowdown',
    description:
      `in-guest benches, ${ROUNDS} rounds per workload of off A / on (live map, monitor at the default ${DEFAULT_INTERVAL_MS} ms) / off B, ${SECONDS} s each; ` +
      'slowdown % = 1 − on / mean(off A, off B); control = the same statistic for off B against off A (nothing changed: the noise floor); median [95 % bootstrap interval]; ' +
      "resolved when the two intervals do not overlap. Halting (2 rounds of 2 s against an off run): wall = ops over guest time plus the time the source held the guest paused; guestClock = the bench's own rate " +
      '(the guest clock stops while QEMU is stopped, so it hides the pauses); pausedPct = share of the monitor window the guest was paused',
    columns: ['workload', 'unit', 'rounds', 'offRate', 'liveMapRate', 'liveMapSlowdownPct', 'controlOffOffPct', 'resolved', 'spreadPct', 'haltingWallSlowdownPct', 'haltingGuestClockSlowdownPct', 'haltingPausedPct'],
    rows,
  };
}

// ---------------------------------------------------------------- 5. optimizations

async function benchOptimizations(kernel: AttachedKernel, guest: string): Promise<BenchTable> {
  const SECONDS = 3;
  // Each config switches one optimization from its default (`--page-level`, `--object-turns`: on; the rest: off).
  const configs: { config: string; set: Partial<Optimizations> }[] = [
    { config: 'default (page level and object turns off)', set: {} },
    { config: '--page-level', set: { pageLevel: true } },
    { config: '--page-level --no-field-filter', set: { pageLevel: true, fieldFilter: false } },
    { config: '--no-incremental', set: { incremental: false } },
    { config: '--no-reuse', set: { reuse: false } },
    { config: '--object-turns', set: { objectTurns: true } },
  ];
  // A steady light workload: one guest shell loop starting a process every ~100 ms (lab exec stays outside the windows).
  const loop = await labSpawn(guest, ['sh', '-c', 'while :; do /bin/vmi-helper burst 1 50 >/dev/null; usleep 100000; done']);
  const rows: Record<string, unknown>[] = [];
  try {
    await sleep(500);
    let allOn: { tps: number; cpu: number } | undefined;
    for (const { config, set } of configs) {
      const flat = await watch(kernel, 0, () => sleep(SECONDS * 1000), set);
      const def = await watch(kernel, DEFAULT_INTERVAL_MS, () => sleep(SECONDS * 1000), set);
      const tps = flat.stats.ticks / flat.seconds;
      allOn ??= { tps, cpu: def.cpu };
      rows.push({
        config,
        maxTicksPerS: Math.round(tps),
        vsAllOn: r2(tps / allOn.tps),
        usPerTick: r1((flat.seconds * 1e6) / Math.max(1, flat.stats.ticks)),
        cpuPctAtDefault: r1(def.cpu * 100),
        ticksPerSAtDefault: Math.round(def.stats.ticks / def.seconds),
        passesPerSAtDefault: r1(def.stats.passes / def.seconds),
        falseSharingPerS: r1(def.stats.falseSharing / def.seconds),
        events: def.stats.events,
      });
    }
  } finally {
    await labRun(guest, ['kill', String(loop.pid)]).catch(() => '');
  }
  return {
    name: 'monitor-optimizations',
    description: `what each optimization buys under a steady light workload (a process start every ~100 ms): ticks/s flat out (--interval 0) and host CPU at the default ${DEFAULT_INTERVAL_MS} ms interval, ${SECONDS} s each`,
    columns: ['config', 'maxTicksPerS', 'vsAllOn', 'usPerTick', 'cpuPctAtDefault', 'ticksPerSAtDefault', 'passesPerSAtDefault', 'falseSharingPerS', 'events'],
    rows,
  };
}

// ---------------------------------------------------------------- the suite

export async function benchMonitor(source: string, guestName: string | undefined): Promise<BenchTable[]> {
  const guest = guestName ?? /^lab:([^?]+)/.exec(source)?.[1];
  if (!guest) throw new Error('bench monitor drives actions in a lab guest: give --source lab:NAME or no --source');
  const spec = `${source}${source.includes('?') ? '&' : '?'}technique=live-map`;
  const live = await attachKernel(spec);
  const tables: BenchTable[] = [];
  try {
    const clock = new GuestClock(live);
    // VMSIGHT_BENCH_MONITOR_PARTS=latency,cpu,walk,slowdown,optimizations runs only those (for development).
    const parts = process.env['VMSIGHT_BENCH_MONITOR_PARTS']?.split(',');
    const want = (p: string) => !parts || parts.includes(p);
    let idle: IdleTicks = { flatUs: NaN, defaultUs: NaN, monitor: undefined };
    let cpu: BenchTable | undefined;
    if (want('cpu') || want('walk')) {
      progress('host CPU on the idle guest');
      const c = await benchCpu(live);
      cpu = c.table;
      idle = c.idle;
    }
    if (want('latency')) {
      progress('detection latency');
      tables.push(await benchLatency(live, guest, clock));
    }
    if (cpu) tables.push(cpu);
    if (want('walk')) {
      progress('walks');
      tables.push(await benchWalk(live, idle));
    }
    if (want('slowdown')) {
      progress('guest slowdown');
      tables.push(await benchSlowdown(live, source, guest));
    }
    if (want('optimizations')) {
      progress('optimizations');
      tables.push(await benchOptimizations(live, guest));
    }
  } finally {
    await live.close();
  }
  return tables;
}
