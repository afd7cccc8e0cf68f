import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseQemuMonitorEventLine } from '../../src/qemu/libvirt-events.js';

test('virsh qemu-monitor-event lines become QMP events with their domain, time and data', () => {
  assert.deepEqual(parseQemuMonitorEventLine("event STOP at 1764634512.123456 for domain 'web01': <null>"), {
    event: 'STOP',
    domain: 'web01',
    timestamp: { seconds: 1764634512, microseconds: 123456 },
  });
  const reset = parseQemuMonitorEventLine(`event RESET at 1764634513.000001 for domain 'ms-lv.a+b': {"guest":false,"reason":"host-qmp-system-reset"}\r`);
  assert.equal(reset?.event, 'RESET');
  assert.equal(reset?.domain, 'ms-lv.a+b');
  assert.deepEqual(reset?.data, { guest: false, reason: 'host-qmp-system-reset' });
});

test('anything else is not an event: other output, garbage details, overlong names', () => {
  for (const line of [
    '',
    'event loop started',
    "event 'lifecycle' for domain 'web01': Suspended Paused",
    "event stop at 1.2 for domain 'web01': <null>",
    `event ${'A'.repeat(65)} at 1.2 for domain 'web01': <null>`,
    "event STOP at 1.2 for domain '': <null>",
  ])
    assert.equal(parseQemuMonitorEventLine(line), undefined, line);
  // Details that are not a JSON object: the event still counts, without data.
  const e = parseQemuMonitorEventLine("event SHUTDOWN at 5.5 for domain 'web01': {not json");
  assert.deepEqual(e, { event: 'SHUTDOWN', domain: 'web01', timestamp: { seconds: 5, microseconds: 500000 } });
});
