import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { reverseShellRule } from '../../examples/rules/reverse-shell.js';
import { definePolicy, type EventDraft } from '../../src/index.js';
import { stamper } from './helpers/events.js';

describe('examples/rules/reverse-shell.ts', () => {
  const st = stamper();
  const ev = (d: EventDraft) => st.stamp(d);
  const connect = (pid: number, comm: string) =>
    ev({ type: 'socket-connect', watch: 'sockets', process: { pid, comm }, data: { proto: 'tcp', state: 'ESTABLISHED', local: '10.0.2.15', localPort: 40000, remote: '203.0.113.9', remotePort: 4444 } });

  it('flags a shell that connects out', () => {
    const policy = definePolicy([reverseShellRule()]);
    const e = connect(500, 'bash');
    const [alert] = policy.evaluate(e);
    assert.equal(alert?.data.rule, 'reverse-shell');
    assert.equal(alert?.severity, 'critical');
    assert.equal(alert?.data.cause, e.seq);
    assert.equal(alert?.data.reason, 'shell 500/bash connected to 203.0.113.9:4444');
    assert.deepEqual(policy.evaluate(connect(501, 'curl')), []);
  });

  it('flags a shell whose stdio is a socket, not one reading a file', () => {
    const rule = reverseShellRule();
    const open = (fd: number, path: string) => ev({ type: 'file-open', watch: 'files', process: { pid: 7, comm: 'sh' }, data: { fd, path } });
    assert.match(rule.evaluate(open(0, 'socket:[12345]'))!.data.reason, /the stdin of shell 7\/sh is a socket/);
    assert.equal(rule.evaluate(open(0, '/dev/pts/0')), undefined);
    assert.equal(rule.evaluate(open(5, 'socket:[1]')), undefined);
  });

  it('remembers connections: nc -e /bin/sh, and forgets them on close or exit', () => {
    const rule = reverseShellRule();
    assert.equal(rule.evaluate(connect(600, 'nc')), undefined);
    const child = ev({ type: 'process-start', watch: 'processes', process: { pid: 601, ppid: 600, comm: 'sh' } });
    assert.match(rule.evaluate(child)!.data.reason, /shell 601\/sh started by 600, which holds a connection to 203\.0\.113\.9:4444/);
    const exec = ev({ type: 'process-exec', watch: 'processes', process: { pid: 600, comm: 'sh' } });
    assert.match(rule.evaluate(exec)!.data.reason, /process 600 holding a connection .* became shell sh/);
    rule.evaluate(ev({ type: 'process-exit', watch: 'processes', process: { pid: 600, comm: 'sh' } }));
    assert.equal(rule.evaluate(ev({ type: 'process-start', watch: 'processes', process: { pid: 602, ppid: 600, comm: 'sh' } })), undefined);
    rule.evaluate(connect(700, 'socat'));
    rule.evaluate(ev({ type: 'socket-close', watch: 'sockets', process: { pid: 700, comm: 'socat' } }));
    assert.equal(rule.evaluate(ev({ type: 'process-start', watch: 'processes', process: { pid: 701, ppid: 700, comm: 'sh' } })), undefined);
  });

  it('keeps its memory bounded', () => {
    const rule = reverseShellRule({ memory: 3 });
    for (let pid = 1000; pid < 1010; pid++) rule.evaluate(connect(pid, 'nc'));
    assert.equal(rule.evaluate(ev({ type: 'process-start', watch: 'processes', process: { pid: 2000, ppid: 1000, comm: 'sh' } })), undefined);
    assert.ok(rule.evaluate(ev({ type: 'process-start', watch: 'processes', process: { pid: 2001, ppid: 1009, comm: 'sh' } })));
  });
});
