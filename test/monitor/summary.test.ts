import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EVENT_TYPES, type EventValue, type MonitorEvent } from '../../src/monitor/events.js';
import { eventSummary } from '../../src/monitor/sinks/summary.js';
import { terminalLine } from '../../src/monitor/sinks/terminal.js';
import { parsePolicy } from '../../src/monitor/policy/load.js';
import { seededRandom } from '../../src/core/random.js';

function randomValue(r: () => number, depth = 0): EventValue {
  const k = Math.floor(r() * (depth > 2 ? 5 : 7));
  switch (k) {
    case 0:
      return null;
    case 1:
      return r() < 0.5;
    case 2:
      return Math.floor((r() - 0.5) * 2 ** 40);
    case 3:
      return String.fromCharCode(...Array.from({ length: Math.floor(r() * 40) }, () => Math.floor(r() * 0x250)));
    case 4:
      return `0x${Math.floor(r() * 2 ** 32).toString(16)}`;
    case 5:
      return Array.from({ length: Math.floor(r() * 4) }, () => randomValue(r, depth + 1));
    default: {
      const o: Record<string, EventValue> = {};
      for (const key of ['name', 'size', 'localAddress', 'localPort', 'remoteAddress', 'symbol', 'table', 'index', 'rule', 'reason', 'cause', 'text', 'count', 'uid', 'euid', 'capEff', 'fd', 'path', 'kthread', 'comms'])
        if (r() < 0.4) o[key] = randomValue(r, depth + 1);
      return o;
    }
  }
}

const asRecord = (v: EventValue): { [k: string]: EventValue } | undefined => (v && typeof v === 'object' && !Array.isArray(v) ? (v as { [k: string]: EventValue }) : undefined);

describe('summaries and rules on hostile event contents', () => {
  const policy = parsePolicy(
    `rules:
  - { name: a, kind: process-allowlist, allow: [{ comm: init }] }
  - { name: b, kind: forbidden-listeners, ports: ["0-65535"], addresses: ["0.0.0.0/0", "::/0"], comm: ["*"] }
  - { name: c, kind: privilege-escalation }
  - { name: d, kind: kernel-integrity, modules: [x] }
`,
    'fuzz.yaml',
  );

  it('never throw, and terminal lines carry no control characters', () => {
    const r = seededRandom(1234);
    for (let i = 0; i < 3000; i++) {
      const type = EVENT_TYPES[Math.floor(r() * EVENT_TYPES.length)]!;
      const data = asRecord(randomValue(r));
      const before = asRecord(randomValue(r));
      const after = asRecord(randomValue(r));
      const e = {
        schema: 1,
        seq: i + 1,
        type,
        time: r() < 0.1 ? 'garbage' : new Date(1_700_000_000_000 + i).toISOString(),
        window: { from: 0, to: 1 },
        watch: 'fuzz',
        ...(r() < 0.7 ? { process: { pid: Math.floor(r() * 5000), comm: String(randomValue(r)), ...(r() < 0.5 ? { argv: [String(randomValue(r)), String(randomValue(r))] } : {}), ...(r() < 0.5 ? { uid: Math.floor(r() * 3) } : {}) } } : {}),
        ...(data ? { data } : {}),
        ...(before ? { before } : {}),
        ...(after ? { after } : {}),
        ...(r() < 0.2 ? { severity: 'high' as const } : {}),
      } as MonitorEvent;
      assert.equal(typeof eventSummary(e), 'string');
      const line = terminalLine(e, true).replace(/\x1b\[[0-9;]*m/g, '');
      assert.doesNotMatch(line, /[\x00-\x1f\x7f-\x9f]/);
      for (const a of policy.evaluate(e)) assert.equal(a.data.cause, e.seq);
    }
    assert.deepEqual(policy.failures, []);
  });
});
