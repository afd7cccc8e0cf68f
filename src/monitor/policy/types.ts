/**
 * The policy API: a Rule looks at one MonitorEvent and may return an alert draft; a Policy is a set of
 * rules evaluated in order. Alerts are EventDrafts of type 'alert' with a severity and data
 * `{ rule, reason, cause }` (cause: the seq of the triggering event); the monitor stamps each one and streams
 * it right after its cause.
 *
 * @example A custom rule
 * import { alertFor, definePolicy, type Rule } from 'vmsight';
 * const noNetcat: Rule = {
 *   name: 'no-netcat',
 *   severity: 'high',
 *   evaluate: (e) => (e.type === 'process-start' && e.process?.comm === 'nc' ? alertFor(noNetcat, e, 'netcat started') : undefined),
 * };
 * const policy = definePolicy([noNetcat]);
 * for (const alert of policy.evaluate(event)) monitorEmits(alert);
 */
import type { EventDraft, EventValue, MonitorEvent, Severity } from '../events.js';

export type { Severity } from '../events.js';
export const SEVERITIES: readonly Severity[] = ['info', 'low', 'medium', 'high', 'critical'];

export interface AlertData {
  readonly rule: string;
  readonly reason: string;
  /** seq of the event that triggered the alert. */
  readonly cause: number;
  readonly [k: string]: EventValue;
}

export type AlertDraft = EventDraft & { readonly type: 'alert'; readonly severity: Severity; readonly data: AlertData };

export interface Rule {
  /** Unique within a policy; alerts carry it as data.rule. */
  readonly name: string;
  readonly severity: Severity;
  readonly description?: string;
  /** An alert for this event, or undefined. Must not throw for any event (a throw is counted, not fatal). */
  evaluate(event: MonitorEvent): AlertDraft | undefined;
}

export interface RuleFailure {
  readonly rule: string;
  readonly seq: number;
  readonly message: string;
}

export interface Policy {
  readonly rules: readonly Rule[];
  /** Alert drafts for one event, in rule order. Alert events themselves are never evaluated (no loops). */
  evaluate(event: MonitorEvent): AlertDraft[];
  /** Rules that threw, most recent last (bounded). */
  readonly failures: readonly RuleFailure[];
}

/**
 * An alert draft for `event` from `rule`: type 'alert', watch 'policy', the rule's severity (or `severity`),
 * the event's process and key, and data { rule, reason, cause, causeType, ...extra }.
 */
export function alertFor(
  rule: Pick<Rule, 'name' | 'severity'>,
  event: MonitorEvent,
  reason: string,
  extra: { readonly [k: string]: EventValue } = {},
  severity: Severity = rule.severity,
): AlertDraft {
  return {
    type: 'alert',
    watch: 'policy',
    severity,
    ...(event.key !== undefined ? { key: event.key } : {}),
    ...(event.process ? { process: event.process } : {}),
    window: event.window,
    ...(event.guestTimeNs !== undefined ? { guestTimeNs: event.guestTimeNs } : {}),
    data: { ...extra, rule: rule.name, reason, cause: event.seq, causeType: event.type },
  };
}

const MAX_FAILURES = 100;

/** A policy from rules; rule names must be unique. */
export function definePolicy(rules: readonly Rule[]): Policy {
  const seen = new Set<string>();
  for (const r of rules) {
    if (typeof r.name !== 'string' || r.name === '') throw new TypeError('definePolicy: every rule needs a name');
    if (seen.has(r.name)) throw new TypeError(`definePolicy: two rules are named "${r.name}"`);
    if (!SEVERITIES.includes(r.severity)) throw new TypeError(`definePolicy: rule "${r.name}": severity must be one of ${SEVERITIES.join(', ')}`);
    seen.add(r.name);
  }
  const failures: RuleFailure[] = [];
  const list = [...rules];
  return {
    rules: list,
    failures,
    evaluate(event) {
      if (event.type === 'alert') return [];
      const out: AlertDraft[] = [];
      for (const r of list) {
        try {
          const a = r.evaluate(event);
          if (a) out.push(a);
        } catch (e) {
          failures.push({ rule: r.name, seq: event.seq, message: e instanceof Error ? e.message : String(e) });
          if (failures.length > MAX_FAILURES) failures.shift();
        }
      }
      return out;
    },
  };
}
