/**
 * One monitoring pass of the study (the paper's crawler: pslist + lsmod +
 * sockstat; heavy adds lsof + maps) and what it saw: time, anomalies by kind
 * (the kernel walks' own, plus the study's cross-checks of the process list),
 * and, in the optimistic mode, what validation caught.
 */
import type { Kernel } from '../../linux/kernel.js';
import type { Plugin } from '../../linux/plugin.js';
import { plugins } from '../../linux/plugins/index.js';
import { HaltingMemory } from '../../memory/halting.js';
import type { PhysicalMemory } from '../../memory/types.js';
import { crossView, type CrossViewRow } from './cross-view.js';

export const LIGHT = ['pslist', 'lsmod', 'sockstat'] as const;
export const HEAVY = ['pslist', 'lsmod', 'sockstat', 'lsof', 'maps'] as const;

/** The consistency phase's passes: the light workload and the cross-view check. */
export function consistencyWorkload(): Plugin<any>[] {
  return [...workload(LIGHT), crossView as Plugin<any>];
}

export function workload(names: readonly string[]): Plugin<any>[] {
  return names.map((n) => {
    const p = plugins.find((x) => x.name === n);
    if (!p) throw new Error(`tradeoffs: no plugin ${n}`);
    return p as Plugin<any>;
  });
}

export interface PassOutcome {
  readonly ms: number;
  /**
   * Anomalies by kind: the walks' own kinds, `parent-missing` (a ppid not in the list), `pid-duplicate` (one pid twice),
   * the cross-view kinds of cross-view.ts (`task-not-in-list`, `task-not-in-pid-idr`, `socket-not-in-table`), `run-failed`.
   */
  readonly anomalies: Record<string, number>;
  /** Torn back-links the walks healed by re-reading (not anomalies), and cross-view mismatches that a re-check cleared. */
  readonly settled: number;
  /** Optimistic mode: pages that changed under a run (torn reads caught), retries, runs reused from an earlier pass, and whether every run validated. */
  readonly validation?: { readonly changedRanges: number; readonly changedValues: number; readonly retries: number; readonly reused: number; readonly validated: boolean };
}

/**
 * Retries of a validated run in the study's optimistic mode. Under the churn
 * loop, with field-level validation, 2 retries left 27 % of passes
 * unvalidated and 6 left 7 % (validation-probe.ts, 40 passes each): a retry
 * re-runs one plugin (~1 ms), far less than a pause.
 */
export const OPTIMISTIC_RETRIES = 6;

/** The guest-halting source under `mem` (page caches and wrappers looked through), if any. */
export function haltingOf(mem: PhysicalMemory): HaltingMemory | undefined {
  let m: unknown = mem;
  for (let guard = 0; guard < 8 && m; guard++) {
    if (m instanceof HaltingMemory) return m;
    m = (m as { inner?: unknown }).inner;
  }
  return undefined;
}

/** Cross-checks of one pslist result: parents missing from the list, pids listed twice. */
export function checkProcessList(rows: readonly { pid?: unknown; ppid?: unknown }[], into: Record<string, number>): void {
  const pids = new Set<number>();
  for (const r of rows) {
    const pid = Number(r.pid);
    if (pids.has(pid)) into['pid-duplicate'] = (into['pid-duplicate'] ?? 0) + 1;
    pids.add(pid);
  }
  for (const r of rows) {
    const ppid = Number(r.ppid);
    // pid 0 (the idle task) is every kernel thread's and init's parent and is not on the list.
    if (ppid > 0 && !pids.has(ppid)) into['parent-missing'] = (into['parent-missing'] ?? 0) + 1;
  }
}

/**
 * Runs one pass of `work`: refresh (a new snapshot, a new pause), the
 * plugins, and — for guest-halting and the debugger stub — resumes the
 * guest as soon as the reads are done, so it is stopped only for the pass.
 */
export async function runPass(kernel: Kernel, work: readonly Plugin<any>[], validate = false): Promise<PassOutcome> {
  const t0 = performance.now();
  const anomalies: Record<string, number> = {};
  const halting = haltingOf(kernel.memory);
  let validation: PassOutcome['validation'];
  let settled = 0;
  try {
    const pass = await kernel.pass(validate ? { validate: { retries: OPTIMISTIC_RETRIES } } : {});
    for (const p of work) {
      try {
        const r = pass.run(p);
        if (p.name === 'pslist') checkProcessList(r.rows as { pid?: unknown; ppid?: unknown }[], anomalies);
        if (p === crossView) for (const row of r.rows as CrossViewRow[]) anomalies[row.kind] = (anomalies[row.kind] ?? 0) + 1;
      } catch {
        anomalies['run-failed'] = (anomalies['run-failed'] ?? 0) + 1;
      }
    }
    const sum = pass.end();
    settled += sum.settled;
    for (const [k, n] of Object.entries(sum.anomalyCounts)) anomalies[k] = (anomalies[k] ?? 0) + (n ?? 0);
    if (sum.validation) validation = { changedRanges: sum.validation.changedRanges, changedValues: sum.validation.changedValues, retries: sum.validation.retries, reused: sum.validation.reused, validated: sum.validation.validated };
  } finally {
    await halting?.end();
    // The debugger stub holds the guest stopped from a pass's first read to the next refresh: let it run now.
    if (kernel.memory.technique.class === 'debugger-stub') await kernel.memory.refresh?.();
  }
  return { ms: performance.now() - t0, anomalies, settled, ...(validation ? { validation } : {}) };
}
