/**
 * Processes, threads and credentials: starts, exits, execs, credential changes without exec, processes
 * that vanish from the task list while alive (hidden), and — what polling alone would lose — the starts no
 * pass could see individually, counted by the kernel's own counters (`total_forks`, the pid allocator's
 * cursor `init_pid_ns.idr.idr_next`).
 *
 * Wake-ups: the sentinels total_forks, nr_threads, the cursor and init_task.tasks are link ranges (any
 * fork or exit moves one of them: re-walk); each task's tasks/thread_node links likewise; its comm, mm and
 * cred pointer are field ranges (exec and commit_creds write them: re-read that task only).
 *
 * Torn reads: a walk that meets a broken link or a cycle is retried; if it stays torn, starts are still
 * reported but no exit is inferred from it (no phantom start/exit pairs), and the pass carries the anomaly.
 *
 * Longer than ~400 lines on purpose: starts, exits, execs, credential changes, hidden tasks and the miss accounting all read one task walk and one state.
 */
import { globalRef } from '../../profile/globals.js';
import { MAX_ARGS_BYTES, processArgv, splitNul } from '../../linux/user-memory.js';
import { isAbsent } from '../../linux/plugin.js';
import { taskNamespaces } from '../../linux/namespaces.js';
import type { EventDraft, EventProcess, EventType, Severity } from '../events.js';
import { hexAddress } from '../events.js';
import { MAX_TASKS, TaskScanner, type CredFacts, type TaskFacts } from '../task-scan.js';
import type { Watch, WatchChange, WatchContext } from '../watcher.js';
import type { WatchRange } from '../watch-set.js';
import { monotonicMs } from '../../core/clock.js';

const NAME = 'processes';
/** Walk attempts before a torn task list is accepted as torn for this pass. */
const WALK_ATTEMPTS = 3;
/** Largest pid list carried by one unseen-starts event. */
const MAX_UNSEEN_PIDS = 64;
/**
 * Known tasks beyond which a torn walk tracks no new ones: torn walks infer no exits, so a list kept torn
 * (a hostile guest, a storm) would grow the map without end. A complete walk is bounded by MAX_TASKS and
 * prunes, so the map holds at most twice that; a deferred start is reported by the next complete walk.
 */
export const MAX_KNOWN_TASKS = MAX_TASKS;
/** How long an exec whose comm has not changed yet waits for it. */
const EXEC_SETTLE_MS = 20;

export interface ProcessWatchOptions {
  readonly processes: boolean;
  readonly threads: boolean;
  readonly creds: boolean;
  /** Known tasks beyond which a torn walk tracks no new ones (default MAX_KNOWN_TASKS). */
  readonly maxKnownTasks?: number;
}

interface Known {
  facts: TaskFacts;
  creds: CredFacts | undefined;
  argv?: readonly string[];
  hidden: boolean;
  /** An exec seen half-way (new mm, old comm), and what the task was before it. */
  execPending?: { since: number; comm: string; argv?: readonly string[]; creds: CredFacts | undefined } | undefined;
}

/** The event key of a task: its address and start time (a reused pid gets a new key). */
export const taskKey = (t: Pick<TaskFacts, 'task' | 'startNs'>): string => `${t.task.toString(16)}:${t.startNs}`;

/**
 * Byte offsets for what a start event adds to the task facts — argv (mm->arg_start..arg_end through mm->pgd)
 * and the pid namespace (thread_pid->numbers[level].ns->ns.inum) — so a start reads the few words it needs
 * through the guest view instead of decoding whole mm_struct and task_struct objects (measured: ~1.4 ms and
 * ~2.9 ms per start on the loaded 2-core machine that way). Undefined pieces fall back to the typed reads.
 */
export interface EnrichPlan {
  readonly argv?: { readonly pgd: number; readonly start: number; readonly end: number; readonly levels: number } | undefined;
  readonly pidns?: { readonly threadPid: number; readonly level: number; readonly numbers: number; readonly upid: number; readonly upidNs: number; readonly inum: number } | undefined;
}

/** Bytes of argv a start event reads in its hot path (the rest is the kernel's business: argv beyond is rare). */
const ARGV_HOT_BYTES = 4096;
/** Deepest pid namespace nesting accepted (the kernel's MAX_PID_NS_LEVEL is 32). */
const MAX_PID_NS_LEVEL = 32;

export function compileEnrichPlan(ctx: Pick<WatchContext, "kernel">): EnrichPlan {
  const db = ctx.kernel.types;
  const tryOff = (fn: () => number): number | undefined => {
    try {
      return fn();
    } catch {
      return undefined;
    }
  };
  const levels = ctx.kernel.profile.pagingLevels === 5 ? 5 : 4;
  const pgd = tryOff(() => db.offsetOf('mm_struct', 'pgd'));
  const start = tryOff(() => db.offsetOf('mm_struct', 'arg_start'));
  const end = tryOff(() => db.offsetOf('mm_struct', 'arg_end'));
  const threadPid = db.hasMember('task_struct', 'thread_pid') ? tryOff(() => db.offsetOf('task_struct', 'thread_pid')) : undefined;
  const level = tryOff(() => db.offsetOf('pid', 'level'));
  const numbers = tryOff(() => db.offsetOf('pid', 'numbers'));
  const upid = tryOff(() => db.sizeOf('upid'));
  const upidNs = tryOff(() => db.offsetOf('upid', 'ns'));
  const inum = tryOff(() => db.offsetOf('pid_namespace', 'ns') + db.offsetOf('ns_common', 'inum'));
  return {
    argv: pgd !== undefined && start !== undefined && end !== undefined ? { pgd, start, end, levels } : undefined,
    pidns:
      threadPid !== undefined && level !== undefined && numbers !== undefined && upid !== undefined && upidNs !== undefined && inum !== undefined
        ? { threadPid, level, numbers, upid, upidNs, inum }
        : undefined,
  };
}

export class ProcessWatch implements Watch {
  readonly name = NAME;
  readonly emits: readonly EventType[] = [
    'process-start',
    'process-exit',
    'process-exec',
    'thread-start',
    'thread-exit',
    'unseen-starts',
    'cred-change',
    'hidden-process',
  ];
  private scanner!: TaskScanner;
  private enrich: EnrichPlan = {};
  private known = new Map<string, Known>();
  private sentinels!: { forks: bigint; nrThreads: bigint; cursor: bigint | undefined };
  /** Counters at the last complete walk, and the starts seen since (complete or torn walks alike). */
  private last = { forks: 0, cursor: 0 };
  private seenSince = { count: 0, pids: new Set<number>() };
  /**
   * Starts seen before the counters counted them (≤ 0): the counters are read before a walk, and a task
   * forked during the walk is seen by it; the next span's fork delta includes it. Carried, not clamped,
   * so seen + unseen adds up to total_forks' delta exactly.
   */
  private carry = 0;
  private forksAtInit = 0;
  private mayHavePending = false;
  private counters = { walks: 0, rereads: 0, torn: 0, unseen: 0, tasks: 0, deferred: 0 };

  constructor(private readonly opts: ProcessWatchOptions) {}

  init(ctx: WatchContext): void {
    this.scanner = new TaskScanner(ctx.kernel, ctx.view);
    this.enrich = compileEnrichPlan(ctx);
    const k = ctx.kernel;
    const cursor = this.cursorAddress(ctx);
    this.sentinels = {
      forks: k.symbol('total_forks'),
      nrThreads: k.symbol('nr_threads'),
      cursor,
    };
    const scan = this.walk(ctx);
    for (const t of scan.tasks) this.recheck(ctx, this.track(ctx, t, this.scanner.creds(t.cred)));
    this.declareSentinels(ctx);
    this.last = { forks: this.readForks(ctx), cursor: this.readCursor(ctx) };
    this.forksAtInit = this.last.forks;
  }

  update(ctx: WatchContext, change: WatchChange): void {
    if (change.structural || !ctx.incremental) {
      this.rewalk(ctx);
      return;
    }
    for (const key of change.dirty) {
      const k = this.known.get(key);
      if (!k) continue;
      this.counters.rereads++;
      const now = this.scanner.readAt(k.facts.pa, ctx.anomalies);
      if (!now || now.id !== key) {
        // The object is gone or reused: only a walk can say what happened.
        this.rewalk(ctx);
        return;
      }
      now.ppid = k.facts.ppid;
      this.compare(ctx, key, k, now);
    }
  }

  /**
   * `forksCounted` (total_forks' delta from attach to the last complete walk) = starts seen up to that walk
   * (`startsSeen − pendingSeen`) + unseen + carry: the accounting identity the storm test checks.
   */
  stats(): Record<string, number> {
    return { ...this.counters, tasks: this.known.size, forksCounted: this.last.forks - this.forksAtInit, pendingSeen: this.seenSince.count, carry: this.carry };
  }

  // ------------------------------------------------------------------ walks and diffs

  private walk(ctx: WatchContext): ReturnType<TaskScanner['scan']> {
    let scan = this.scanner.scan(ctx.anomalies, true);
    this.counters.walks++;
    for (let i = 1; i < WALK_ATTEMPTS && !scan.complete; i++) {
      this.counters.torn++;
      scan = this.scanner.scan(ctx.anomalies, true);
      this.counters.walks++;
    }
    return scan;
  }

  private rewalk(ctx: WatchContext): void {
    const forks = this.readForks(ctx);
    const cursor = this.readCursor(ctx);
    const scan = this.walk(ctx);
    const present = new Map<string, TaskFacts>();
    for (const t of scan.tasks) present.set(t.id, t);
    const started: TaskFacts[] = [];
    for (const [key, t] of present) {
      const k = this.known.get(key);
      if (!k) {
        started.push(t);
        continue;
      }
      if (k.hidden) {
        k.hidden = false; // back on the list
      }
      t.ppid = t.ppid >= 0 ? t.ppid : k.facts.ppid;
      this.compare(ctx, key, k, t);
    }
    // Starts, parents first (list order is creation order for processes).
    for (const t of started) {
      if (!scan.complete && this.known.size >= (this.opts.maxKnownTasks ?? MAX_KNOWN_TASKS)) {
        this.counters.deferred++;
        continue;
      }
      this.seenSince.count++;
      this.seenSince.pids.add(t.pid);
      const creds = this.scanner.creds(t.cred);
      const k = this.track(ctx, t, creds);
      if (t.leader ? this.opts.processes : this.opts.threads) ctx.emit(this.startEvent(ctx, t, k));
      this.recheck(ctx, k);
    }
    // Exits: only from a complete walk, and only for tasks that are really gone.
    if (scan.complete) {
      for (const [key, k] of this.known) {
        if (present.has(key)) continue;
        const now = this.scanner.readAt(k.facts.pa, ctx.anomalies);
        const alive = now !== undefined && now.id === key && now.exitState === 0 && now.pid === k.facts.pid;
        if (alive && k.hidden) continue; // still hidden, still alive: reported once
        if (alive && k.facts.leader) {
          k.hidden = true;
          ctx.emit({
            type: 'hidden-process',
            watch: NAME,
            key: taskKey(k.facts),
            process: this.processOf(k.facts, k),
            severity: 'critical',
            data: { view: 'task list', detail: 'alive (exit_state 0) but unlinked from init_task.tasks' },
          });
          continue;
        }
        // An exec between two passes by a task that then exited: its task_struct, not yet freed, still
        // shows the new name.
        if (now && now.id === key && (now.comm !== k.facts.comm || k.execPending)) {
          now.ppid = k.facts.ppid;
          this.emitExec(ctx, k, now, k.creds);
          k.facts = now;
        }
        this.untrack(ctx, key, k);
        if (k.facts.leader ? this.opts.processes : this.opts.threads) {
          ctx.emit({
            type: k.facts.leader ? 'process-exit' : 'thread-exit',
            watch: NAME,
            key: taskKey(k.facts),
            process: this.processOf(k.facts, k),
            data: { startTimeNs: Number(k.facts.startNs) },
          });
        }
      }
      this.account(ctx, forks, cursor);
      this.last = { forks, cursor };
    } else {
      ctx.emit({
        type: 'anomaly',
        watch: NAME,
        data: { what: 'task list torn in every attempt; exits not inferred this pass', attempts: WALK_ATTEMPTS, counts: { ...ctx.anomalies.counts } },
      });
      // The counters stay at the last complete walk: the next one accounts for this span too.
    }
  }

  /** Starts the kernel counted but no walk saw: the difference, with the pids the cursor gave out. */
  private account(ctx: WatchContext, forks: number, cursor: number): void {
    const delta = forks - this.last.forks;
    const seen = this.seenSince.count - this.carry;
    const seenPids = this.seenSince.pids;
    this.seenSince = { count: 0, pids: new Set() };
    const unseen = delta - seen;
    this.carry = Math.min(0, unseen);
    if (unseen <= 0) return;
    this.counters.unseen += unseen;
    const pids: number[] = [];
    if (cursor > this.last.cursor) {
      for (let p = this.last.cursor; p < cursor && pids.length < MAX_UNSEEN_PIDS; p++) if (!seenPids.has(p)) pids.push(p);
    }
    ctx.emit({
      type: 'unseen-starts',
      watch: NAME,
      data: {
        count: unseen,
        forks: delta,
        seen,
        ...(cursor > this.last.cursor ? { pidFrom: this.last.cursor, pidTo: cursor - 1 } : {}),
        pids,
      },
    });
  }

  private compare(ctx: WatchContext, key: string, k: Known, now: TaskFacts): void {
    const before = k.facts;
    const commChanged = now.comm !== before.comm;
    const mmChanged = now.mm !== before.mm && before.mm >= 0 && now.mm >= 0;
    let creds = k.creds;
    if (now.cred !== before.cred) creds = this.scanner.creds(now.cred);
    if (mmChanged && !commChanged && !k.execPending) {
      // exec replaces the mm, then sets comm microseconds later: wait for the comm (or a short timeout)
      // so one exec is one event with its final name.
      this.mayHavePending = true;
      k.execPending = { since: monotonicMs(), comm: before.comm, ...(k.argv ? { argv: k.argv } : {}), creds: k.creds };
    } else if (commChanged || (k.execPending && mmChanged)) {
      this.emitExec(ctx, k, now, creds);
    } else if (creds && k.creds && credsDiffer(k.creds, creds) && this.opts.creds && !k.execPending) {
      const raised = (creds.uid === 0 && k.creds.uid !== 0) || (creds.euid === 0 && k.creds.euid !== 0) || (creds.capEffective & ~k.creds.capEffective) !== 0n;
      const severity: Severity = raised ? 'high' : 'info';
      ctx.emit({
        type: 'cred-change',
        watch: NAME,
        key: taskKey(now),
        process: this.processOf(now, { ...k, creds }),
        before: credValues(k.creds),
        after: credValues(creds),
        severity,
        data: { raised, exec: false },
      });
    }
    k.facts = now;
    k.creds = creds;
    // No shadow refresh here: detect() took the shadows before this read, so a write landing after the
    // read differs from them and wakes the next tick. Refreshing now would swallow it.
  }

  /** One process-exec event: before is what the task was before the exec began. */
  private emitExec(ctx: WatchContext, k: Known, now: TaskFacts, creds: CredFacts | undefined): void {
    const from = k.execPending ?? { comm: k.facts.comm, ...(k.argv ? { argv: k.argv } : {}), creds: k.creds };
    k.execPending = undefined;
    const argv = this.argvOf(ctx, now);
    if (argv) k.argv = argv;
    if (!this.opts.processes || !now.leader) return;
    const credsChanged = from.creds && creds ? credsDiffer(from.creds, creds) : false;
    ctx.emit({
      type: 'process-exec',
      watch: NAME,
      key: taskKey(now),
      process: this.processOf(now, { creds, ...(argv ? { argv } : {}) }),
      before: { comm: from.comm, ...(from.argv ? { argv: [...from.argv] } : {}), ...(credsChanged && from.creds ? credValues(from.creds) : {}) },
      after: { comm: now.comm, ...(argv ? { argv: [...argv] } : {}), ...(credsChanged && creds ? credValues(creds) : {}) },
    });
  }

  /** Pending execs whose comm never changed (an exec of a binary of the same name) go out after a moment. */
  get sweepMs(): number | undefined {
    return this.pendingExecs > 0 ? EXEC_SETTLE_MS : undefined;
  }

  /** Execs seen half-way, counted so the per-tick question above costs nothing. */
  private get pendingExecs(): number {
    let n = 0;
    if (!this.mayHavePending) return 0;
    for (const k of this.known.values()) if (k.execPending) n++;
    this.mayHavePending = n > 0;
    return n;
  }

  sweep(ctx: WatchContext): void {
    const now = monotonicMs();
    for (const k of this.known.values()) {
      if (!k.execPending || now - k.execPending.since < EXEC_SETTLE_MS) continue;
      const t = this.scanner.readAt(k.facts.pa, ctx.anomalies);
      if (!t || t.id !== k.facts.id) {
        k.execPending = undefined;
        continue;
      }
      t.ppid = k.facts.ppid;
      const creds = t.cred !== k.facts.cred ? this.scanner.creds(t.cred) : k.creds;
      this.emitExec(ctx, k, t, creds);
      k.facts = t;
      k.creds = creds;
    }
  }

  // ------------------------------------------------------------------ state

  private track(ctx: WatchContext, t: TaskFacts, creds: CredFacts | undefined): Known {
    const k: Known = { facts: t, creds, hidden: false };
    this.known.set(t.id, k);
    const r = this.scanner.ranges(t);
    ctx.watchSet.set(NAME, t.id, [
      { pa: r.links, len: 16, kind: 'link' },
      { pa: r.comm, len: this.scanner.plan.commLen, kind: 'field' },
      { pa: r.cred, len: 8, kind: 'field' },
      { pa: r.mm, len: 8, kind: 'field' },
    ]);
    return k;
  }

  /**
   * A task's shadows are taken when it is tracked, after the walk read it: a write in between (an exec,
   * a setuid a few µs after the fork) would be in the shadow but not in our facts, and never wake us.
   * Read the task once more, now that the shadows exist, and take in what changed.
   */
  private recheck(ctx: WatchContext, k: Known): void {
    const now = this.scanner.readAt(k.facts.pa, ctx.anomalies);
    if (!now || now.id !== k.facts.id) return; // gone already: the next walk says so
    now.ppid = k.facts.ppid;
    if (now.cred !== k.facts.cred || now.mm !== k.facts.mm || now.comm !== k.facts.comm) this.compare(ctx, k.facts.id, k, now);
  }

  private untrack(ctx: WatchContext, key: string, _k: Known): void {
    this.known.delete(key);
    ctx.watchSet.remove(NAME, key);
  }

  private declareSentinels(ctx: WatchContext): void {
    const s = this.sentinels;
    const ranges: WatchRange[] = [];
    const add = (va: bigint | undefined, len: number): void => {
      const pa = va === undefined ? undefined : ctx.view.pa(va);
      if (pa !== undefined) ranges.push({ pa, len, kind: 'link' });
    };
    add(s.forks, 8);
    add(s.nrThreads, 4);
    add(s.cursor, 4);
    add(this.scanner.plan.initTask + BigInt(this.scanner.plan.tasks), 16);
    ctx.watchSet.set(NAME, '', ranges);
  }

  private readForks(ctx: WatchContext): number {
    return Number(ctx.view.u64(this.sentinels.forks) ?? 0n);
  }

  private readCursor(ctx: WatchContext): number {
    if (this.sentinels.cursor === undefined) return 0;
    return Number(BigInt.asUintN(32, ctx.view.u64(this.sentinels.cursor) ?? 0n));
  }

  /** &init_pid_ns.idr.idr_next, where the profile has it. */
  private cursorAddress(ctx: WatchContext): bigint | undefined {
    const db = ctx.kernel.types;
    if (!db.hasMember('pid_namespace', 'idr') || !db.hasMember('idr', 'idr_next')) return undefined;
    try {
      const ns = globalRef(ctx.kernel.typed, ctx.kernel.symbols, 'init_pid_ns').address;
      return ns + BigInt(db.offsetOf('pid_namespace', 'idr') + db.offsetOf('idr', 'idr_next'));
    } catch {
      return undefined;
    }
  }

  // ------------------------------------------------------------------ event contents

  private startEvent(ctx: WatchContext, t: TaskFacts, k: Known): EventDraft {
    const argv = t.kthread ? undefined : this.argvOf(ctx, t);
    if (argv) k.argv = argv;
    const pidns = this.pidNamespace(ctx, t);
    return {
      type: t.leader ? 'process-start' : 'thread-start',
      watch: NAME,
      key: taskKey(t),
      process: { ...this.processOf(t, k), ...(pidns !== undefined ? { pidns } : {}) },
      data: { startTimeNs: Number(t.startNs), kthread: t.kthread },
      guestTimeNs: Number(t.startNs),
    };
  }

  private processOf(t: TaskFacts, k: Pick<Known, 'creds' | 'argv'>): EventProcess {
    return {
      pid: t.pid,
      tgid: t.tgid,
      ppid: t.ppid,
      comm: t.comm,
      ...(k.argv ? { argv: k.argv } : {}),
      ...(k.creds ? { uid: k.creds.uid, euid: k.creds.euid } : {}),
      task: hexAddress(t.task),
    };
  }

  private argvOf(ctx: WatchContext, t: TaskFacts): readonly string[] | undefined {
    if (t.mm < 0) return undefined;
    const plan = this.enrich.argv;
    const argv = plan ? this.argvFast(ctx, t.mm, plan) : this.argvTyped(ctx, t);
    // An exec caught before its arguments are in place reads as empty strings: no argv yet.
    return argv === undefined || argv.every((a) => a === '') ? undefined : argv;
  }

  /** argv through the view: mm's three words, then a page walk per page of the range (bounded). */
  private argvFast(ctx: WatchContext, mmPa: number, plan: NonNullable<EnrichPlan['argv']>): string[] | undefined {
    const v = ctx.view;
    const dv = v.dv(mmPa, Math.max(plan.pgd, plan.start, plan.end) + 8);
    if (!dv) return undefined;
    const at = v.at;
    const u64 = (off: number) => dv.getUint32(at + off + 4, true) * 4294967296 + dv.getUint32(at + off, true);
    const start = u64(plan.start);
    const end = u64(plan.end);
    const pgdPa = v.pointerPa(dv, at + plan.pgd);
    if (start === 0 && end === 0) return [];
    if (pgdPa < 0 || end < start || end > 2 ** (12 + 9 * plan.levels)) {
      ctx.anomalies.add({ kind: 'invalid', where: 'mm_struct.arg_start', detail: `argv range 0x${start.toString(16)}..0x${end.toString(16)} or pgd unusable` });
      return undefined;
    }
    let len = end - start;
    if (len > MAX_ARGS_BYTES) {
      ctx.anomalies.add({ kind: 'truncated', where: 'mm_struct.arg_start', detail: `${len} bytes, read ${MAX_ARGS_BYTES}` });
      len = MAX_ARGS_BYTES;
    }
    const buf = len <= ARGV_HOT_BYTES ? this.argvScratch.subarray(0, len).fill(0) : new Uint8Array(len);
    const missing = v.readUser(pgdPa, start, buf, plan.levels);
    if (missing) ctx.anomalies.add({ kind: 'fault', where: 'mm_struct.arg_start', detail: `${missing} of ${len} argv bytes not present` });
    return splitNul(buf);
  }

  private readonly argvScratch = new Uint8Array(ARGV_HOT_BYTES);

  /** argv through the typed reader (kernels whose layout the fast plan does not know). */
  private argvTyped(ctx: WatchContext, t: TaskFacts): string[] | undefined {
    const mmVa = ctx.view.directVa(t.mm);
    if (mmVa === undefined) return undefined;
    try {
      const mm = ctx.kernel.typed.obj('mm_struct', mmVa).read();
      const argv = processArgv(ctx.kernel, mm, ctx.anomalies);
      return isAbsent(argv) ? undefined : argv;
    } catch {
      return undefined; // exited meanwhile, or a hostile mm: the event goes out without argv
    }
  }

  /** The inode number of the task's pid namespace (task_active_pid_ns): three dependent reads through the view. */
  private pidNamespace(ctx: WatchContext, t: TaskFacts): number | undefined {
    const plan = this.enrich.pidns;
    if (!plan) return this.pidNamespaceTyped(ctx, t);
    const v = ctx.view;
    let dv = v.dv(t.pa + plan.threadPid, 8);
    const pidPa = dv ? v.pointerPa(dv, v.at) : -1;
    if (pidPa < 0) return undefined;
    dv = v.dv(pidPa + plan.level, 4);
    const level = dv ? dv.getUint32(v.at, true) : -1;
    if (level < 0 || level > MAX_PID_NS_LEVEL) {
      ctx.anomalies.add({ kind: 'invalid', where: 'pid.level', detail: `level ${level} of the pid of task ${t.pid}` });
      return undefined;
    }
    dv = v.dv(pidPa + plan.numbers + level * plan.upid + plan.upidNs, 8);
    const nsPa = dv ? v.pointerPa(dv, v.at) : -1;
    if (nsPa < 0) return undefined;
    dv = v.dv(nsPa + plan.inum, 4);
    return dv ? dv.getUint32(v.at, true) : undefined;
  }

  private pidNamespaceTyped(ctx: WatchContext, t: TaskFacts): number | undefined {
    try {
      const task = ctx.kernel.typed.obj('task_struct', t.task).read();
      const pid = taskNamespaces(ctx.kernel, task, ctx.anomalies).pid;
      return typeof pid === 'number' ? pid : undefined;
    } catch {
      return undefined;
    }
  }
}

function credsDiffer(a: CredFacts, b: CredFacts): boolean {
  return (
    a.uid !== b.uid ||
    a.euid !== b.euid ||
    a.gid !== b.gid ||
    a.egid !== b.egid ||
    a.suid !== b.suid ||
    a.fsuid !== b.fsuid ||
    a.capEffective !== b.capEffective ||
    a.capPermitted !== b.capPermitted
  );
}

function credValues(c: CredFacts): Record<string, number | string> {
  return {
    uid: c.uid,
    euid: c.euid,
    gid: c.gid,
    egid: c.egid,
    suid: c.suid,
    fsuid: c.fsuid,
    capEffective: hexAddress(c.capEffective),
    capPermitted: hexAddress(c.capPermitted),
  };
}
