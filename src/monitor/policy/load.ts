/**
 * Reads a policy file (YAML or JSON) into a Policy. Every mistake is an error, never ignored: unknown
 * fields, wrong types, bad ports or addresses, unknown kinds, duplicate names. The error is ONE line naming
 * the file, line and column, and the rule:
 *   policy.yaml:12:5: rule "no-shells": unknown field 'commm' (expected comm, path, uid)
 *
 * Format:
 *   version: 1                       # optional
 *   rules:
 *     - name: NAME                   # unique
 *       kind: process-allowlist | forbidden-listeners | privilege-escalation | kernel-integrity
 *       severity: info | low | medium | high | critical   # optional, a default per kind
 *       description: TEXT            # optional
 *       ...fields of the kind (see FIELDS below and README "Policies")
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { ExitCode, VmsightError } from '../../core/errors.js';
import { parseJson, parseYaml, SourceSyntaxError, type Located, type Pos } from './source.js';
import {
  forbiddenListeners,
  INTEGRITY_CHECKS,
  kernelIntegrity,
  privilegeEscalation,
  processAllowlist,
  type PortRange,
  type ProcessPattern,
} from './rules.js';
import { definePolicy, SEVERITIES, type Policy, type Rule, type Severity } from './types.js';

/** A policy file is wrong: file:line:col, the rule, what is wrong. Exit code 2 (usage). */
export class PolicyError extends VmsightError {
  readonly file: string;
  readonly line?: number;
  readonly col?: number;
  readonly rule?: string;
  constructor(file: string, message: string, where: { pos?: Pos; rule?: string } = {}) {
    const at = where.pos ? `${file}:${where.pos.line}:${where.pos.col}` : file;
    super('usage', ExitCode.usage, `${at}: ${where.rule !== undefined ? `rule ${where.rule}: ` : ''}${message}`);
    this.file = file;
    if (where.pos) {
      this.line = where.pos.line;
      this.col = where.pos.col;
    }
    if (where.rule !== undefined) this.rule = where.rule;
  }
}

const KINDS = ['process-allowlist', 'forbidden-listeners', 'privilege-escalation', 'kernel-integrity'] as const;
type Kind = (typeof KINDS)[number];

const COMMON_FIELDS = ['name', 'kind', 'severity', 'description'];
/** The fields each kind takes besides name, kind, severity and description. */
export const FIELDS: Record<Kind, readonly string[]> = {
  'process-allowlist': ['allow', 'ignoreKernelThreads', 'events'],
  'forbidden-listeners': ['ports', 'addresses', 'comm'],
  'privilege-escalation': ['except', 'capabilities'],
  'kernel-integrity': ['checks', 'modules'],
};
const PATTERN_FIELDS = ['comm', 'path', 'uid'];

type MapNode = Extract<Located, { kind: 'map' }>;

function describeNode(n: Located): string {
  if (n.kind === 'map') return 'a map';
  if (n.kind === 'seq') return 'a list';
  if (n.value === null) return 'nothing (null)';
  return typeof n.value === 'string' ? `string ${JSON.stringify(n.value)}` : `${typeof n.value} ${String(n.value)}`;
}

/** Validation context: the file and the rule being read, for error messages. */
class Ctx {
  constructor(
    readonly file: string,
    public rule?: string,
  ) {}

  fail(message: string, pos: Pos): never {
    throw new PolicyError(this.file, message, { pos, ...(this.rule !== undefined ? { rule: this.rule } : {}) });
  }

  map(n: Located, what: string): MapNode {
    if (n.kind !== 'map') this.fail(`${what} must be a map (got ${describeNode(n)})`, n.pos);
    return n;
  }

  /** Checks the keys of a map against the allowed ones and returns them by name. */
  fields(m: MapNode, allowed: readonly string[]): Map<string, { value: Located; keyPos: Pos }> {
    const out = new Map<string, { value: Located; keyPos: Pos }>();
    for (const e of m.entries) {
      if (!allowed.includes(e.key)) this.fail(`unknown field '${e.key}' (expected ${allowed.join(', ')})`, e.keyPos);
      out.set(e.key, { value: e.value, keyPos: e.keyPos });
    }
    return out;
  }

  string(n: Located, field: string): string {
    if (n.kind !== 'scalar' || typeof n.value !== 'string') this.fail(`field '${field}' must be a string (got ${describeNode(n)})`, n.pos);
    if (n.value === '') this.fail(`field '${field}' must not be empty`, n.pos);
    return n.value;
  }

  bool(n: Located, field: string): boolean {
    if (n.kind !== 'scalar' || typeof n.value !== 'boolean') this.fail(`field '${field}' must be true or false (got ${describeNode(n)})`, n.pos);
    return n.value;
  }

  int(n: Located, field: string, min: number, max: number): number {
    if (n.kind !== 'scalar' || typeof n.value !== 'number' || !Number.isInteger(n.value)) this.fail(`field '${field}' must be a whole number (got ${describeNode(n)})`, n.pos);
    if (n.value < min || n.value > max) this.fail(`field '${field}': ${n.value} is out of range (${min}-${max})`, n.pos);
    return n.value;
  }

  /** A list (a single value is taken as a list of one). */
  items(n: Located, field: string, allowSingle: boolean): readonly Located[] {
    if (n.kind === 'seq') {
      if (n.items.length === 0) this.fail(`field '${field}' must not be an empty list`, n.pos);
      return n.items;
    }
    if (allowSingle && n.kind === 'scalar') return [n];
    return this.fail(`field '${field}' must be a list (got ${describeNode(n)})`, n.pos);
  }

  strings(n: Located, field: string): string[] {
    return this.items(n, field, true).map((i) => this.string(i, field));
  }

  oneOf<T extends string>(n: Located, field: string, allowed: readonly T[]): T {
    const v = this.string(n, field);
    if (!(allowed as readonly string[]).includes(v)) this.fail(`field '${field}': unknown value '${v}' (expected ${allowed.join(', ')})`, n.pos);
    return v as T;
  }
}

function pattern(ctx: Ctx, n: Located, field: string): ProcessPattern {
  const m = ctx.map(n, `each entry of '${field}'`);
  const f = ctx.fields(m, PATTERN_FIELDS);
  if (f.size === 0) ctx.fail(`an entry of '${field}' needs at least one of ${PATTERN_FIELDS.join(', ')}`, m.pos);
  const p: { comm?: string[]; path?: string[]; uid?: number[] } = {};
  const comm = f.get('comm');
  if (comm) p.comm = ctx.strings(comm.value, 'comm');
  const path = f.get('path');
  if (path) p.path = ctx.strings(path.value, 'path');
  const uid = f.get('uid');
  if (uid) p.uid = ctx.items(uid.value, 'uid', true).map((i) => ctx.int(i, 'uid', 0, 0xffff_ffff));
  return p;
}

function port(ctx: Ctx, n: Located): PortRange {
  const bad = (text: string) => ctx.fail(`bad port ${text} (expected 0-65535 or a range like 6000-6010)`, n.pos);
  if (n.kind === 'scalar' && typeof n.value === 'number') {
    if (!Number.isInteger(n.value) || n.value < 0 || n.value > 65535) bad(String(n.value));
    return { from: n.value, to: n.value };
  }
  if (n.kind === 'scalar' && typeof n.value === 'string') {
    const m = /^\s*([0-9]{1,5})\s*(?:-\s*([0-9]{1,5})\s*)?$/.exec(n.value);
    if (!m) bad(JSON.stringify(n.value));
    const from = Number(m![1]);
    const to = m![2] === undefined ? from : Number(m![2]);
    if (from > 65535 || to > 65535) bad(JSON.stringify(n.value));
    if (from > to) ctx.fail(`bad port range ${JSON.stringify(n.value)}: ${from} is above ${to}`, n.pos);
    return { from, to };
  }
  return bad(describeNode(n));
}

function address(ctx: Ctx, n: Located): string {
  const v = ctx.string(n, 'addresses');
  const [ip, bits, extra] = v.split('/');
  const family = isIP(ip!);
  if (family === 0 || extra !== undefined) ctx.fail(`bad address ${JSON.stringify(v)} (expected an IPv4 or IPv6 address, or a subnet like 10.0.0.0/8)`, n.pos);
  if (bits !== undefined) {
    const max = family === 6 ? 128 : 32;
    if (!/^[0-9]{1,3}$/.test(bits) || Number(bits) > max) ctx.fail(`bad subnet ${JSON.stringify(v)}: the prefix length must be 0-${max}`, n.pos);
  }
  return v;
}

function buildRule(ctx: Ctx, n: Located, index: number): Rule {
  ctx.rule = `#${index + 1}`;
  const m = ctx.map(n, 'a rule');
  const nameEntry = m.entries.find((e) => e.key === 'name');
  if (!nameEntry) ctx.fail("missing field 'name'", m.pos);
  const name = ctx.string(nameEntry.value, 'name');
  ctx.rule = JSON.stringify(name);
  const kindEntry = m.entries.find((e) => e.key === 'kind');
  if (!kindEntry) ctx.fail(`missing field 'kind' (one of ${KINDS.join(', ')})`, m.pos);
  const kindText = ctx.string(kindEntry.value, 'kind');
  if (!(KINDS as readonly string[]).includes(kindText)) ctx.fail(`unknown kind '${kindText}' (expected ${KINDS.join(', ')})`, kindEntry.value.pos);
  const kind = kindText as Kind;
  const f = ctx.fields(m, [...COMMON_FIELDS, ...FIELDS[kind]]);
  const base: { name: string; severity?: Severity; description?: string } = { name };
  const sev = f.get('severity');
  if (sev) base.severity = ctx.oneOf(sev.value, 'severity', SEVERITIES);
  const desc = f.get('description');
  if (desc) base.description = ctx.string(desc.value, 'description');

  switch (kind) {
    case 'process-allowlist': {
      const allow = f.get('allow');
      if (!allow) ctx.fail("missing field 'allow' (a list of entries with comm, path and/or uid)", m.pos);
      const events = f.get('events');
      const ignore = f.get('ignoreKernelThreads');
      return processAllowlist({
        ...base,
        allow: ctx.items(allow.value, 'allow', false).map((i) => pattern(ctx, i, 'allow')),
        ...(ignore ? { ignoreKernelThreads: ctx.bool(ignore.value, 'ignoreKernelThreads') } : {}),
        ...(events ? { events: ctx.items(events.value, 'events', true).map((i) => ctx.oneOf(i, 'events', ['process-start', 'process-exec'] as const)) } : {}),
      });
    }
    case 'forbidden-listeners': {
      const ports = f.get('ports');
      const addresses = f.get('addresses');
      const comm = f.get('comm');
      if (!ports && !addresses) ctx.fail("needs 'ports' and/or 'addresses'", m.pos);
      return forbiddenListeners({
        ...base,
        ...(ports ? { ports: ctx.items(ports.value, 'ports', true).map((i) => port(ctx, i)) } : {}),
        ...(addresses ? { addresses: ctx.items(addresses.value, 'addresses', true).map((i) => address(ctx, i)) } : {}),
        ...(comm ? { comm: ctx.strings(comm.value, 'comm') } : {}),
      });
    }
    case 'privilege-escalation': {
      const except = f.get('except');
      const caps = f.get('capabilities');
      return privilegeEscalation({
        ...base,
        ...(except ? { except: ctx.items(except.value, 'except', false).map((i) => pattern(ctx, i, 'except')) } : {}),
        ...(caps ? { capabilities: ctx.bool(caps.value, 'capabilities') } : {}),
      });
    }
    case 'kernel-integrity': {
      const checksEntry = f.get('checks');
      const modulesEntry = f.get('modules');
      const checks = checksEntry ? ctx.items(checksEntry.value, 'checks', true).map((i) => ctx.oneOf(i, 'checks', INTEGRITY_CHECKS)) : undefined;
      if (checks?.includes('module-load') && !modulesEntry) ctx.fail("check 'module-load' needs 'modules' (the modules allowed to load)", checksEntry!.value.pos);
      return kernelIntegrity({
        ...base,
        ...(checks ? { checks } : {}),
        ...(modulesEntry ? { modules: ctx.strings(modulesEntry.value, 'modules') } : {}),
      });
    }
  }
}

/** Parses policy text; `format` defaults from the file name (.json → JSON, else YAML). */
export function parsePolicy(text: string, file: string, format: 'json' | 'yaml' = /\.json$/i.test(file) ? 'json' : 'yaml'): Policy {
  const ctx: Ctx = new Ctx(file);
  let root: Located;
  try {
    root = format === 'json' ? parseJson(text) : parseYaml(text);
  } catch (e) {
    if (e instanceof SourceSyntaxError) throw new PolicyError(file, `${format === 'json' ? 'JSON' : 'YAML'} syntax: ${e.message}`, { pos: e.pos });
    throw e;
  }
  const top = ctx.map(root, 'the policy');
  const f = ctx.fields(top, ['version', 'rules']);
  const version = f.get('version');
  if (version && ctx.int(version.value, 'version', 1, 1000) !== 1) ctx.fail('this vmsight reads policy version 1', version.value.pos);
  const rulesEntry = f.get('rules');
  if (!rulesEntry) ctx.fail("missing field 'rules' (a list of rules)", top.pos);
  if (rulesEntry.value.kind !== 'seq') ctx.fail(`field 'rules' must be a list (got ${describeNode(rulesEntry.value)})`, rulesEntry.value.pos);
  const rules: Rule[] = [];
  const names = new Map<string, Pos>();
  rulesEntry.value.items.forEach((item, i) => {
    const rule = buildRule(ctx, item, i);
    const namePos = item.kind === 'map' ? item.entries.find((e) => e.key === 'name')!.value.pos : item.pos;
    const earlier = names.get(rule.name);
    if (earlier) ctx.fail(`the name is already used by the rule at line ${earlier.line}`, namePos);
    names.set(rule.name, namePos);
    rules.push(rule);
    ctx.rule = undefined;
  });
  return definePolicy(rules);
}

/** Reads and parses a policy file (`--policy FILE`). */
export function loadPolicy(file: string): Policy {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a folder' : code === 'EACCES' ? 'permission denied' : (e as Error).message;
    throw new PolicyError(file, `cannot read the policy: ${why}`);
  }
  return parsePolicy(text, file);
}
