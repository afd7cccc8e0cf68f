/**
 * Host helpers for the scenario actions (`/bin/vmi-helper ACTION ...` in the
 * guest, see "The guest lab" in README.md): start one in the background, read
 * what it printed, wait for a step. Every action line is `WORD key=value ...`
 * with `t=<CLOCK_MONOTONIC ns>` taken in the guest at the moment it acted, so
 * a monitor test can compare the guest's time of an event with the time the
 * host saw it (guestNow gives the guest clock's current reading).
 */
import { LabError } from '../core/errors.js';
import { labExec, labRun, labSpawn, type LabSpawnResult } from './exec.js';
import type { LabGuest } from './guests.js';
import { monotonicMs } from '../core/clock.js';

export const HELPER_PATH = '/bin/vmi-helper';

export type ScenarioAction = 'burst' | 'escalate' | 'listen' | 'connect' | 'execafter';

export interface ActionEvent {
  /** First word of the line: burst, child, escalate, escalated, listen, accepted, connect, execafter, exec, … */
  event: string;
  fields: Record<string, string>;
  /** Guest CLOCK_MONOTONIC nanoseconds of the event, when the line carries t=. */
  t?: bigint;
}

/** Parses action output: one event per `word key=value…` line; other lines are skipped. */
export function parseActionOutput(text: string): ActionEvent[] {
  const events: ActionEvent[] = [];
  for (const line of text.split('\n')) {
    const words = line.trim().split(/\s+/);
    const event = words[0];
    if (!event || !/^[a-z]+$/.test(event) || words.length < 2) continue;
    const fields: Record<string, string> = {};
    let ok = true;
    for (const w of words.slice(1)) {
      const eq = w.indexOf('=');
      if (eq <= 0) {
        ok = false;
        break;
      }
      fields[w.slice(0, eq)] = w.slice(eq + 1);
    }
    if (!ok) continue;
    const t = fields['t'];
    events.push({ event, fields, ...(t !== undefined && /^\d+$/.test(t) ? { t: BigInt(t) } : {}) });
  }
  return events;
}

/** The guest's CLOCK_MONOTONIC now, in nanoseconds (`vmi-helper now`). */
export async function guestNow(guest: LabGuest | string): Promise<bigint> {
  const out = await labRun(guest, [HELPER_PATH, 'now']);
  const m = /^t=(\d+)$/m.exec(out);
  if (!m) throw new LabError(`vmi-helper now printed '${out.trim().slice(0, 80)}', not t=<ns>`);
  return BigInt(m[1]!);
}

/** Starts a scenario action in the background in the guest (stdout in its log) and returns its pid. */
export async function spawnAction(guest: LabGuest | string, action: ScenarioAction, args: readonly (string | number)[]): Promise<LabSpawnResult> {
  return labSpawn(guest, [HELPER_PATH, action, ...args.map(String)]);
}

/** What a background action printed so far. */
export async function actionEvents(guest: LabGuest | string, pid: number): Promise<ActionEvent[]> {
  const r = await labExec(guest, ['cat', `/tmp/vmi-exec/${pid}.log`]);
  return r.exitCode === 0 ? parseActionOutput(r.stdout.toString('utf8')) : [];
}

/** Polls a background action's output until it printed `event` (e.g. 'escalated'), and returns that event. */
export async function waitActionEvent(guest: LabGuest | string, pid: number, event: string, timeoutMs = 30_000): Promise<ActionEvent> {
  const deadline = monotonicMs() + timeoutMs;
  for (;;) {
    const found = (await actionEvents(guest, pid)).find((e) => e.event === event);
    if (found) return found;
    if (monotonicMs() > deadline) throw new LabError(`guest pid ${pid} did not print '${event}' within ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
