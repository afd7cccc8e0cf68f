import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import type { EventDraft } from '../../src/monitor/events.js';
import { localClock, TerminalSink, terminalLine, wantsColour } from '../../src/monitor/sinks/terminal.js';
import { stamper } from './helpers/events.js';

function collect(isTTY: boolean): { stream: Writable; text(): string } {
  let text = '';
  const stream = new Writable({
    write(chunk: Buffer, _e, done) {
      text += chunk.toString();
      done();
    },
  });
  Object.assign(stream, { isTTY });
  return { stream, text: () => text };
}

describe('TerminalSink', () => {
  const savedTz = process.env['TZ'];
  before(() => {
    process.env['TZ'] = 'UTC';
  });
  after(() => {
    if (savedTz === undefined) delete process.env['TZ'];
    else process.env['TZ'] = savedTz;
  });
  const st = stamper(Date.parse('2026-12-01T10:11:12.345Z'));
  const line = (d: EventDraft) => terminalLine(st.stamp(d));

  it('prints local time, type, pid/comm and each type\'s key facts', () => {
    assert.equal(localClock('2026-12-01T10:11:12.345Z'), '10:11:12.345');
    assert.equal(localClock('not a time'), '??:??:??.???');
    const mod = line({ type: 'module-load', watch: 'modules', data: { name: 'vmsight_rk', size: 16384 } });
    assert.match(mod, /^10:11:12\.345 module-load +vmsight_rk size 16384$/);
    const listen = line({ type: 'socket-listen', watch: 'sockets', process: { pid: 412, comm: 'nc' }, data: { proto: 'tcp', localAddress: '0.0.0.0', localPort: 4444 } });
    assert.match(listen, /socket-listen +412\/nc +tcp 0\.0\.0\.0:4444$/);
    const connect = line({ type: 'socket-connect', watch: 'sockets', process: { pid: 9, comm: 'curl' }, data: { proto: 'tcp6', localAddress: '::1', localPort: 5000, remoteAddress: '::1', remotePort: 80 } });
    assert.match(connect, /tcp6 \[::1\]:5000 -> \[::1\]:80$/);
    const hook = line({ type: 'syscall-hook', watch: 'integrity', data: { table: 'x64', index: 62, symbol: '__x64_sys_kill', module: 'vmsight_rk' } });
    assert.match(hook, /syscall-hook +__x64_sys_kill \(x64#62\) -> vmsight_rk$/);
    // the shapes the monitor's watchers emit (src/monitor/watches)
    const watcherHook = line({
      type: 'syscall-hook',
      watch: 'integrity',
      before: { address: '0xffffffff81234560', symbol: '__x64_sys_getdents64', verdict: 'ok' },
      after: { address: '0xffffffffc0a01000', symbol: null, verdict: 'module', module: 'vmi_rootkit' },
      data: { table: 'x64', index: 217, suspicious: true },
    });
    assert.match(watcherHook, /syscall-hook +__x64_sys_getdents64 \(x64#217\) -> vmi_rootkit$/);
    const watcherListen = line({ type: 'socket-listen', watch: 'sockets', process: { pid: 88, comm: 'vmi-net' }, data: { proto: 'tcp', state: 'LISTEN', local: '0.0.0.0', localPort: 8080, remote: null, remotePort: null } });
    assert.match(watcherListen, /88\/vmi-net +tcp 0\.0\.0\.0:8080$/);
    const watcherCred = line({ type: 'cred-change', watch: 'processes', process: { pid: 90, comm: 'vmi-user' }, before: { uid: 1000, euid: 1000, capEffective: '0x0' }, after: { uid: 0, euid: 0, capEffective: '0x1ffffffffff' }, data: { raised: true, exec: false } });
    assert.match(watcherCred, /uid 1000→0, euid 1000→0, capEffective 0x0→0x1ffffffffff$/);
    const cred = line({ type: 'cred-change', watch: 'creds', process: { pid: 77, comm: 'sh' }, before: { uid: 1000, euid: 1000, gid: 5 }, after: { uid: 0, euid: 0, gid: 5 } });
    assert.match(cred, /cred-change +77\/sh +uid 1000→0, euid 1000→0$/);
    const alert = line({ type: 'alert', watch: 'policy', severity: 'critical', data: { rule: 'no-root', reason: 'euid raised to 0', cause: 12 } });
    assert.match(alert, /alert +\[no-root\] critical euid raised to 0 \(cause #12\)$/);
    const exec = line({ type: 'process-start', watch: 'processes', process: { pid: 5, comm: 'ls', argv: ['ls', '-l'] } });
    assert.match(exec, /process-start +5\/ls +ls -l$/);
  });

  it('neutralises control characters from the guest', () => {
    const l = line({ type: 'kernel-log', watch: 'kmsg', data: { text: 'evil\x1b[2Jtext\n' } });
    assert.ok(!l.includes('\x1b'));
    assert.match(l, /evil\\x1b\[2Jtext\\x0a$/);
  });

  it('colours only on a TTY and never with NO_COLOR', async () => {
    const tty = collect(true);
    assert.equal(wantsColour(tty.stream, {}), true);
    assert.equal(wantsColour(tty.stream, { NO_COLOR: '1' }), false);
    assert.equal(wantsColour(collect(false).stream, {}), false);
    const coloured = new TerminalSink(tty.stream, { colour: wantsColour(tty.stream, {}) });
    coloured.write(st.stamp({ type: 'alert', watch: 'policy', severity: 'high', data: { rule: 'r' } }));
    await coloured.close();
    assert.match(tty.text(), /\x1b\[31malert/);
    const plain = collect(false);
    const sink = new TerminalSink(plain.stream);
    sink.write(st.stamp({ type: 'alert', watch: 'policy', severity: 'high', data: { rule: 'r' } }));
    await sink.close();
    assert.ok(!plain.text().includes('\x1b'));
    assert.match(plain.text(), /alert +\[r\] high\n$/);
  });
});
