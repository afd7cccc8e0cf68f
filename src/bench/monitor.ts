/**
 * The monitor suite (issue 7 §5): what real-time monitoring of a live lab guest (live map) costs and how
 * fast it sees things, each figure a distribution or ratio from one run:
 *  - monitor-latency: guest action → event, against the guest's own CLOCK_MONOTONIC (monitor-clock.ts);
 *  - monitor-cpu: host CPU of the monitor on an idle guest at 1 ms and at 10/100/1000 passes/s and flat out,
 *    next to a bare setTimeout(1) loop (the timer floor);
 *  - monitor-walk: an unchanged tick, TaskScanner.scan, a warm pslist, and an unchecked walk (the floor);
 *  - monitor-slowdown: in-guest cpu/mem/fork benches with the monitor off, on (live map), on (halting);
 *  - monitor-optimizations: ticks/s and CPU under a light steady workload with each optimization off.
 * Needs a lab guest (it drives actions through lab exec).
 */
import { attachKernel, type AttachedKernel } from '../linux/attach.js';
import { AnomalySink } from '../linux/anomaly.js';
import type { Plugin } from '../linux/plugin.js';
import { plugins } from '../linux/plugins/index.js';
import { guestNow, labRun, labSpawn, runGuestBench, spawnAction, actionEvents, type GuestBenchKind } from '../lab/index.js';
import { Monitor, type MonitorStats, type Optimizations } from '../monitor/monitor.js';
import type { EventSink, MonitorEvent } from '../monitor/events.js';
import { GuestView } from '../monitor/guest-view.js';
import { TaskScanner } from '../monitor/task-scan.js';
import { clockMap, GuestClock, hostNs, type ClockMap } from './monitor-clock.js';
import { uncheckedWalker } from './monitor-floor.js';
import { median, type BenchTable } from './report.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Keeps every event with the host hrtime it was handed over at (the moment the monitor saw it). */
class RecordingSink implements EventSink {
  readonly name = 'bench';
  readonly dropped = 0;
  readonly seen: { e: MonitorEvent; at: number }[] = [];
  write(e: MonitorEvent): boolean {
    this.seen.push({ e, at: hostNs() });
    return true;
  }
  async flush(): Promise<void> {}
  async close(): Promise<void> {}
}

interface Watched {
  readonly sink: RecordingSink;
  readonly stats: MonitorStats;
  /** Host CPU (user+system) over the window between ready and stop, share of one core. */
  readonly cpu: number;
  readonly seconds: number;
}

/** Runs a monitor; `during` runs once it is ready and the monitor stops when it resolves. */
async function watch(kernel: AttachedKernel, intervalMs: number, during: () => Promise<void>, optimizations: Partial<Optimizations> = {}): Promise<Watched> {
  const sink = new RecordingSink();
  let ready!: () => void;
  const isReady = new Promise<void>((r) => (ready = r));
  const monitor = new Monitor(kernel, { sinks: [sink], intervalMs, optimizations, onReady: () => ready() });
  const running = monitor.run();
  await Promise.race([isReady, running]);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let stats: MonitorStats;
  const before = { ...monitor.stats };
  try {
    await during();
  } finally {
    monitor.stop();
    const result = await running;
    stats = result.stats;
    if (result.reason === 'error') throw new Error(`bench monitor: the monitor failed: ${result.detail}`);
  }
  const cpu = process.cpuUsage(cpu0);
  const seconds = (performance.now() - t0) / 1000;
  const delta = Object.fromEntries(Object.entries(stats).map(([k, v]) => [k, v - (before as unknown as Record<string, number>)[k]!])) as unknown as MonitorStats;
  return { sink, stats: delta, cpu: (cpu.user + cpu.system) / 1e6 / seconds, seconds };
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

async function benchLatency(kernel: AttachedKernel, guest: string, clock: GuestClock): Promise<BenchTable> {
  const rows: Record<string, unknown>[] = [];
  const ITER = 130;
  // Process starts: one guest shell loop (started before the window, so lab exec is not in it) runs a helper
  // whose child lives 30 ms, every ~60 ms: two process starts per iteration, spaced.
  const script = `i=0; while [ $i -lt ${ITER} ]; do /bin/vmi-helper burst 1 30 >/dev/null; usleep 60000; i=$((i+1)); done`;
  let loopPid = 0;
  let from = 0;
  const before = await calibrate(clock, guest);
  const w = await watch(kernel, 1, async () => {
    from = clock.read() ?? 0;
    loopPid = (await labSpawn(guest, ['sh', '-c', script])).pid;
    for (let i = 0; i < 120; i++) {
      await sleep(1000);
      const alive = await labRun(guest, ['sh', '-c', `kill -0 ${loopPid} 2>/dev/null && echo y || echo n`]);
      if (alive.trim() === 'n') break;
    }
  });
  const after = await calibrate(clock, guest);
  const map = clockMap(before, after);
  const ms: number[] = [];
  for (const { e, at } of w.sink.seen) {
    // Every process started in the window: the loop's helpers and their children, and lab exec's probes.
    if (e.type !== 'process-start' || e.guestTimeNs === undefined || e.guestTimeNs < from) continue;
    ms.push((map.guestAt(at) - e.guestTimeNs) / 1e6);
  }
  const unseen = w.sink.seen.filter((s) => s.e.type === 'unseen-starts').reduce((a, s) => a + Number((s.e.data as Record<string, unknown> | undefined)?.['count'] ?? 0), 0);
  rows.push(latencyRow('process start (task start_time → event)', ms, map, { unseenStarts: unseen }));

  // Cred changes and listens: each action prints t= (guest CLOCK_MONOTONIC) right after its syscall.
  const N = 10;
  const before2 = await calibrate(clock, guest);
  const escalates: number[] = [];
  const listens: { pid: number; port: number }[] = [];
  const w2 = await watch(kernel, 1, async () => {
    for (let i = 0; i < N; i++) {
      escalates.push((await spawnAction(guest, 'escalate', [1500])).pid);
      listens.push({ pid: (await spawnAction(guest, 'listen', [9300 + i, 3])).pid, port: 9300 + i });
    }
    await sleep(2500);
  });
  const after2 = await calibrate(clock, guest);
  const map2 = clockMap(before2, after2);
  const credMs: number[] = [];
  const listenMs: number[] = [];
  let credMissing = 0;
  let listenMissing = 0;
  for (const pid of escalates) {
    const t = (await actionEvents(guest, pid)).find((a) => a.event === 'escalated')?.t;
    const ev = w2.sink.seen.find((s) => s.e.type === 'cred-change' && s.e.process?.pid === pid);
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
  rows.push(latencyRow('cred change (escalated t= → event)', credMs, map2, { missing: credMissing }));
  rows.push(latencyRow('listen (listen t= → event)', listenMs, map2, { missing: listenMissing }));
  return {
    name: 'monitor-latency',
    description:
      'guest action → monitor event at the default 1 ms interval, live map; host time of the event mapped to guest CLOCK_MONOTONIC by the largest ' +
      "lower bound from polling the guest's timekeeper in its memory, before and after the window (clockSlackMs: true latency is at most this much " +
      'higher, from vmi-helper now round trips; driftPpm: guest vs host clock)',
    columns: ['what', 'n', 'medianMs', 'p90Ms', 'p99Ms', 'maxMs', 'minMs', 'clockSlackMs', 'driftPpm', 'unseenStarts', 'missing'],
    rows,
  };
}

// ---------------------------------------------------------------- 2. host CPU

async function timerFloor(seconds: number): Promise<{ cpu: number; ticksPerS: number }> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let ticks = 0;
  while (performance.now() - t0 < seconds * 1000) {
    await sleep(1);
    ticks++;
  }
  const c = process.cpuUsage(cpu0);
  const s = (performance.now() - t0) / 1000;
  return { cpu: (c.user + c.system) / 1e6 / s, ticksPerS: ticks / s };
}

async function benchCpu(kernel: AttachedKernel): Promise<{ table: BenchTable; idleTickUs: number }> {
  const rows: Record<string, unknown>[] = [];
  const SECONDS = 4;
  const floor = await timerFloor(SECONDS);
  rows.push({ setting: 'setTimeout(1) loop (timer floor)', cpuPct: r1(floor.cpu * 100), ticksPerS: Math.round(floor.ticksPerS), passesPerS: '', detectUsPerTick: '' });
  let idleTickUs = NaN;
  const settings: { setting: string; intervalMs: number }[] = [
    { setting: 'default (--interval 1)', intervalMs: 1 },
    { setting: '--rate 10', intervalMs: 100 },
    { setting: '--rate 100', intervalMs: 10 },
    { setting: '--rate 1000', intervalMs: 1 },
    { setting: '--interval 0 (highest rate)', intervalMs: 0 },
  ];
  for (const { setting, intervalMs } of settings) {
    const w = await watch(kernel, intervalMs, () => sleep(SECONDS * 1000));
    const detect = w.stats.detectUs / Math.max(1, w.stats.ticks);
    if (intervalMs === 0) idleTickUs = detect;
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
    idleTickUs,
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

async function benchWalk(kernel: AttachedKernel, idleTickUs: number): Promise<BenchTable> {
  const scanner = new TaskScanner(kernel, new GuestView(kernel));
  const floor = uncheckedWalker(kernel);
  const scanned = scanner.scan(new AnomalySink(), true);
  const floored = floor();
  const scanUs = timeIt(() => scanner.scan(new AnomalySink(), true));
  const floorUs = timeIt(floor);
  const pslist = plugins.find((p) => p.name === 'pslist') as Plugin<any>;
  const warm = await kernel.pass();
  const pslistUs = timeIt(() => warm.run(pslist), 20, 5);
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
    description: 'µs per call on the live guest (live map), median of batches; vsFloor = time / the unchecked walk; pslist/scan is how much faster the scanner is than the plugin',
    columns: ['what', 'us', 'tasks', 'vsFloor', 'pslistOverScan', 'target'],
    rows: [
      row('monitor tick over the unchanged guest (watch-set compare, flat out)', idleTickUs, '', { target: '≤ 20 µs' }),
      row('TaskScanner.scan (threads on, every pslist fact)', scanUs, scanned.tasks.length, { target: '≤ 100 µs, ≤ 3× floor' }),
      row('unchecked walk (floor, bench only)', floorUs, floored.length),
      row('pslist plugin, warm pass', pslistUs, '', { pslistOverScan: r2(pslistUs / scanUs) }),
      row('pslist plugin, pass with refresh', pslistPassUs, '', { pslistOverScan: r2(pslistPassUs / scanUs) }),
    ],
  };
}

// ---------------------------------------------------------------- 4. guest slowdown

async function benchSlowdown(live: AttachedKernel, halting: AttachedKernel | undefined, guest: string, haltingWhy: string): Promise<BenchTable> {
  const KINDS: GuestBenchKind[] = ['cpu', 'mem', 'fork'];
  const RUNS = 3;
  const SECONDS = 3;
  const rows: Record<string, unknown>[] = [];
  for (const kind of KINDS) {
    const off: number[] = [];
    const on: number[] = [];
    const halt: number[] = [];
    let unit = '';
    for (let r = 0; r < RUNS; r++) {
      const base = await runGuestBench(guest, kind, SECONDS);
      unit = base.unit;
      off.push(base.rate);
      let rate = 0;
      await watch(live, 1, async () => void (rate = (await runGuestBench(guest, kind, SECONDS)).rate));
      on.push(rate);
      if (halting) {
        await watch(halting, 1, async () => void (rate = (await runGuestBench(guest, kind, SECONDS)).rate));
        halt.push(rate);
      }
    }
    // Slowdown of each monitored run against the off run of the same round (rounds alternate off/on).
    const slow = (xs: number[]) => xs.map((x, i) => (1 - x / off[i]!) * 100);
    const s = slow(on);
    const h = slow(halt);
    rows.push({
      workload: kind,
      unit,
      offRate: r1(median(off)),
      liveMapRate: r1(median(on)),
      liveMapSlowdownPct: r1(median(s)),
      liveMapSpread: `${r1(Math.min(...s))}…${r1(Math.max(...s))}`,
      haltingRate: halt.length ? r1(median(halt)) : 'n/a',
      haltingSlowdownPct: halt.length ? r1(median(h)) : 'n/a',
      haltingSpread: halt.length ? `${r1(Math.min(...h))}…${r1(Math.max(...h))}` : haltingWhy,
    });
  }
  return {
    name: 'monitor-slowdown',
    description: `in-guest benches (${SECONDS} s each, ${RUNS} rounds of off / on live map / on halting, alternating) with the monitor at 1 ms; slowdown % = 1 − on/off of the same round, median and min…max`,
    columns: ['workload', 'unit', 'offRate', 'liveMapRate', 'liveMapSlowdownPct', 'liveMapSpread', 'haltingRate', 'haltingSlowdownPct', 'haltingSpread'],
    rows,
  };
}

// ---------------------------------------------------------------- 5. optimizations

async function benchOptimizations(kernel: AttachedKernel, guest: string): Promise<BenchTable> {
  const SECONDS = 3;
  const configs: { config: string; off: Partial<Optimizations> }[] = [
    { config: 'all on', off: {} },
    { config: '--no-page-level', off: { pageLevel: false } },
    { config: '--no-field-filter', off: { fieldFilter: false } },
    { config: '--no-incremental', off: { incremental: false } },
    { config: '--no-reuse', off: { reuse: false } },
  ];
  // A steady light workload: one guest shell loop starting a process every ~100 ms (lab exec stays outside the windows).
  const loop = await labSpawn(guest, ['sh', '-c', 'while :; do /bin/vmi-helper burst 1 50 >/dev/null; usleep 100000; done']);
  const rows: Record<string, unknown>[] = [];
  try {
    await sleep(500);
    let allOn: { tps: number; cpu: number } | undefined;
    for (const { config, off } of configs) {
      const flat = await watch(kernel, 0, () => sleep(SECONDS * 1000), off);
      const def = await watch(kernel, 1, () => sleep(SECONDS * 1000), off);
      const tps = flat.stats.ticks / flat.seconds;
      allOn ??= { tps, cpu: def.cpu };
      rows.push({
        config,
        maxTicksPerS: Math.round(tps),
        vsAllOn: r2(tps / allOn.tps),
        usPerTick: r1((flat.seconds * 1e6) / Math.max(1, flat.stats.ticks)),
        cpuPctAt1ms: r1(def.cpu * 100),
        ticksPerSAt1ms: Math.round(def.stats.ticks / def.seconds),
        passesPerSAt1ms: r1(def.stats.passes / def.seconds),
        falseSharingPerS: r1(def.stats.falseSharing / def.seconds),
        events: def.stats.events,
      });
    }
  } finally {
    await labRun(guest, ['kill', String(loop.pid)]).catch(() => '');
  }
  return {
    name: 'monitor-optimizations',
    description: `what each optimization buys under a steady light workload (a process start every ~100 ms): ticks/s flat out (--interval 0) and host CPU at the default 1 ms, ${SECONDS} s each`,
    columns: ['config', 'maxTicksPerS', 'vsAllOn', 'usPerTick', 'cpuPctAt1ms', 'ticksPerSAt1ms', 'passesPerSAt1ms', 'falseSharingPerS', 'events'],
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
    const cpu = await benchCpu(live);
    tables.push(await benchLatency(live, guest, clock));
    tables.push(cpu.table);
    tables.push(await benchWalk(live, cpu.idleTickUs));
    let halting: AttachedKernel | undefined;
    let why = '';
    try {
      halting = await attachKernel(source, { halting: true });
    } catch (e) {
      why = `no halting technique: ${(e as Error).message}`;
    }
    try {
      tables.push(await benchSlowdown(live, halting, guest, why));
    } finally {
      await halting?.close();
    }
    tables.push(await benchOptimizations(live, guest));
  } finally {
    await live.close();
  }
  return tables;
}
