import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { ExitCode } from '../../src/core/errors.js';
import type { EventDraft, MonitorEvent } from '../../src/monitor/events.js';
import {
  alertFor,
  definePolicy,
  forbiddenListeners,
  kernelIntegrity,
  loadPolicy,
  parsePolicy,
  PolicyError,
  privilegeEscalation,
  processAllowlist,
  type Rule,
} from '../../src/monitor/policy/index.js';
import { stamper, tempDir } from './helpers/events.js';

const st = stamper();
const ev = (d: EventDraft): MonitorEvent => st.stamp(d);
const proc = (pid: number, comm: string, argv: string[], uid = 0, ppid = 1) => ({ pid, comm, argv, uid, ppid });

function policyError(fn: () => unknown): PolicyError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof PolicyError, `expected a PolicyError, got ${String(e)}`);
    assert.equal(e.exitCode, ExitCode.usage);
    assert.doesNotMatch(e.oneLine(), /\n/);
    return e;
  }
  assert.fail('expected a policy error');
}

describe('process allowlist', () => {
  const rule = processAllowlist({
    name: 'known-processes',
    allow: [{ path: ['/usr/sbin/*', '/sbin/init'] }, { comm: 'sh', uid: 1000 }],
  });
  const start = (p: ReturnType<typeof proc>, data?: MonitorEvent['data']) => ev({ type: 'process-start', watch: 'processes', process: p, ...(data ? { data } : {}) });

  it('allows matching processes and kernel threads', () => {
    assert.equal(rule.evaluate(start(proc(10, 'sshd', ['/usr/sbin/sshd', '-D']))), undefined);
    assert.equal(rule.evaluate(start(proc(11, 'sh', ['sh'], 1000))), undefined);
    assert.equal(rule.evaluate(start(proc(12, 'whatever', ['x'], 0), { exe: '/sbin/init' })), undefined);
    assert.equal(rule.evaluate(start(proc(40, 'kworker/0:1', [], 0, 2))), undefined);
    assert.equal(rule.evaluate(start(proc(41, 'odd', [], 0), { kthread: true })), undefined);
    assert.equal(rule.evaluate(ev({ type: 'socket-listen', watch: 'sockets', process: proc(13, 'nc', ['nc']) })), undefined);
  });

  it('alerts on anything else, with the cause seq', () => {
    const e = start(proc(20, 'nc', ['/usr/bin/nc', '-l', '4444'], 0));
    const a = rule.evaluate(e);
    assert.ok(a);
    assert.equal(a.type, 'alert');
    assert.equal(a.severity, 'medium');
    assert.equal(a.data.rule, 'known-processes');
    assert.equal(a.data.cause, e.seq);
    assert.match(a.data.reason, /process 20\/nc \(\/usr\/bin\/nc, uid 0\) is not in the allowlist/);
    assert.deepEqual(a.process, e.process);
    // the uid of an entry must match too
    assert.ok(rule.evaluate(start(proc(21, 'sh', ['sh'], 0))));
    // exec under the same task is judged as well
    assert.ok(rule.evaluate(ev({ type: 'process-exec', watch: 'processes', process: proc(22, 'bash', ['/bin/bash']) })));
    const strict = processAllowlist({ name: 's', allow: [{ comm: 'init' }], ignoreKernelThreads: false });
    assert.ok(strict.evaluate(start(proc(40, 'kworker/0:1', [], 0, 2))));
  });
});

describe('forbidden listeners', () => {
  const listen = (port: number | undefined, addr: string | undefined, comm = 'nc') =>
    ev({ type: 'socket-listen', watch: 'sockets', process: proc(50, comm, [comm]), data: { proto: 'tcp', ...(addr !== undefined ? { localAddress: addr } : {}), ...(port !== undefined ? { localPort: port } : {}) } });

  it('matches ports and ranges', () => {
    const rule = forbiddenListeners({ name: 'ports', ports: [{ from: 4444, to: 4444 }, { from: 6000, to: 6010 }] });
    assert.ok(rule.evaluate(listen(4444, '0.0.0.0')));
    assert.ok(rule.evaluate(listen(6005, '::')));
    assert.equal(rule.evaluate(listen(22, '0.0.0.0')), undefined);
    assert.equal(rule.evaluate(listen(undefined, undefined)), undefined); // a unix socket
    const a = rule.evaluate(listen(6010, '127.0.0.1'))!;
    assert.equal(a.severity, 'high');
    assert.match(a.data.reason, /forbidden listener on 127\.0\.0\.1:6010 by 50\/nc/);
    assert.equal(rule.evaluate(ev({ type: 'socket-connect', watch: 'sockets', data: { localPort: 4444 } })), undefined);
  });

  it('reads the sockets watch\'s fields (local, localPort, comms)', () => {
    const rule = forbiddenListeners({ name: 'w', ports: [{ from: 8080, to: 8080 }], addresses: ['0.0.0.0'], comm: ['vmi-*'] });
    const e = ev({ type: 'socket-listen', watch: 'sockets', process: { pid: 88, comm: 'vmi-net' }, data: { proto: 'tcp', state: 'LISTEN', local: '0.0.0.0', localPort: 8080, remote: null, remotePort: null, comms: ['vmi-net'] } });
    assert.match(rule.evaluate(e)!.data.reason, /forbidden listener on 0\.0\.0\.0:8080 by 88\/vmi-net/);
    const byComms = ev({ type: 'socket-listen', watch: 'sockets', data: { local: '0.0.0.0', localPort: 8080, comms: ['vmi-net'] } });
    assert.ok(rule.evaluate(byComms));
  });

  it('matches addresses, subnets and owner comms', () => {
    const rule = forbiddenListeners({ name: 'public', addresses: ['0.0.0.0', '::', '10.0.0.0/8'], comm: ['nc*', 'socat'] });
    assert.ok(rule.evaluate(listen(80, '0.0.0.0', 'ncat')));
    assert.ok(rule.evaluate(listen(80, '10.1.2.3', 'socat')));
    assert.ok(rule.evaluate(listen(80, '::', 'nc')));
    assert.equal(rule.evaluate(listen(80, '127.0.0.1', 'nc')), undefined);
    assert.equal(rule.evaluate(listen(80, '0.0.0.0', 'nginx')), undefined);
  });
});

describe('privilege escalation', () => {
  const rule = privilegeEscalation({ name: 'root', except: [{ comm: 'sudo' }] });
  const cred = (comm: string, before: Record<string, number | string | string[]>, after: Record<string, number | string | string[]>) =>
    ev({ type: 'cred-change', watch: 'creds', process: proc(70, comm, [comm], 1000), before, after });

  it('alerts when uid or euid rises to 0, or capabilities are added', () => {
    const a = rule.evaluate(cred('exploit', { uid: 1000, euid: 1000 }, { uid: 0, euid: 0 }))!;
    assert.equal(a.severity, 'critical');
    assert.match(a.data.reason, /uid 1000→0, euid 1000→0/);
    assert.ok(rule.evaluate(cred('x', { euid: 1000 }, { euid: 0 })));
    assert.match(rule.evaluate(cred('x', { capEff: '0x0' }, { capEff: '0x200000' }))!.data.reason, /capEff gained 0x200000/);
    // the processes watch's cred values
    assert.match(rule.evaluate(cred('x', { uid: 1000, euid: 1000, suid: 1000, fsuid: 1000, capEffective: '0x0', capPermitted: '0x0' }, { uid: 1000, euid: 1000, suid: 1000, fsuid: 1000, capEffective: '0x1ffffffffff', capPermitted: '0x1ffffffffff' }))!.data.reason, /capEffective gained 0x1ffffffffff, capPermitted gained 0x1ffffffffff/);
    assert.match(rule.evaluate(cred('x', { effective: ['CAP_CHOWN'] }, { effective: ['CAP_CHOWN', 'CAP_SYS_ADMIN'] }))!.data.reason, /effective gained CAP_SYS_ADMIN/);
  });

  it('does not alert on drops, unchanged root, exceptions or other events', () => {
    assert.equal(rule.evaluate(cred('x', { uid: 0, euid: 0 }, { uid: 1000, euid: 1000 })), undefined);
    assert.equal(rule.evaluate(cred('x', { uid: 0, gid: 5 }, { uid: 0, gid: 6 })), undefined);
    assert.equal(rule.evaluate(cred('x', { capEff: '0x3' }, { capEff: '0x1' })), undefined);
    assert.equal(rule.evaluate(cred('sudo', { uid: 1000 }, { uid: 0 })), undefined);
    assert.equal(rule.evaluate(ev({ type: 'process-exec', watch: 'processes', before: { uid: 1000 }, after: { uid: 0 } })), undefined);
    assert.equal(privilegeEscalation({ name: 'n', capabilities: false }).evaluate(cred('x', { capEff: '0x0' }, { capEff: '0x1' })), undefined);
  });
});

describe('kernel integrity', () => {
  const rule = kernelIntegrity({ name: 'kernel', modules: ['virtio_*', 'e1000'] });

  it('alerts on hooks, IDT changes, hidden objects and unlisted modules', () => {
    assert.match(rule.evaluate(ev({ type: 'syscall-hook', watch: 'integrity', data: { symbol: '__x64_sys_kill', module: 'rk' } }))!.data.reason, /system call __x64_sys_kill hooked \(now rk\)/);
    assert.match(rule.evaluate(ev({ type: 'idt-change', watch: 'integrity', data: { vector: 128 } }))!.data.reason, /IDT gate 128 changed/);
    assert.ok(rule.evaluate(ev({ type: 'hidden-process', watch: 'integrity', process: { pid: 666, comm: 'hid' } })));
    assert.ok(rule.evaluate(ev({ type: 'hidden-module', watch: 'integrity', data: { name: 'rk' } })));
    assert.match(rule.evaluate(ev({ type: 'module-load', watch: 'modules', data: { name: 'vmsight_rk' } }))!.data.reason, /module vmsight_rk loaded and is not in the allowlist/);
  });

  it('reads the integrity watch\'s before/after symbols', () => {
    const e = ev({
      type: 'syscall-hook',
      watch: 'integrity',
      before: { address: '0xffffffff81234560', symbol: '__x64_sys_kill', verdict: 'ok' },
      after: { address: '0xffffffffc0a01000', symbol: null, verdict: 'module', module: 'vmi_rootkit' },
      data: { table: 'x64', index: 62, suspicious: true },
    });
    assert.equal(rule.evaluate(e)!.data.reason, 'system call __x64_sys_kill hooked (now vmi_rootkit)');
  });

  it('lets allowlisted modules load and honours the checks list', () => {
    assert.equal(rule.evaluate(ev({ type: 'module-load', watch: 'modules', data: { name: 'virtio_net' } })), undefined);
    assert.equal(rule.evaluate(ev({ type: 'module-unload', watch: 'modules', data: { name: 'rk' } })), undefined);
    const noModules = kernelIntegrity({ name: 'k2' });
    assert.equal(noModules.evaluate(ev({ type: 'module-load', watch: 'modules', data: { name: 'anything' } })), undefined);
    const hooksOnly = kernelIntegrity({ name: 'k3', checks: ['syscall-hook'] });
    assert.equal(hooksOnly.evaluate(ev({ type: 'idt-change', watch: 'integrity' })), undefined);
    assert.ok(hooksOnly.evaluate(ev({ type: 'syscall-hook', watch: 'integrity' })));
  });
});

describe('definePolicy', () => {
  it('evaluates rules in order, never alerts on alerts, and survives a throwing rule', () => {
    const boom: Rule = { name: 'boom', severity: 'low', evaluate: () => { throw new Error('bug in rule'); } };
    const always: Rule = { name: 'always', severity: 'info', evaluate: (e) => alertFor(always, e, 'seen') };
    const policy = definePolicy([boom, always, kernelIntegrity({ name: 'k' })]);
    const e = ev({ type: 'syscall-hook', watch: 'integrity', data: { symbol: 's' } });
    assert.deepEqual(policy.evaluate(e).map((a) => [a.data.rule, a.severity, a.data.cause]), [['always', 'info', e.seq], ['k', 'critical', e.seq]]);
    assert.deepEqual(policy.failures, [{ rule: 'boom', seq: e.seq, message: 'bug in rule' }]);
    const alert = st.stamp(policy.evaluate(e)[0]!);
    assert.deepEqual(policy.evaluate(alert), []);
    assert.throws(() => definePolicy([always, always]), /two rules are named "always"/);
  });
});

describe('policy files', () => {
  const tmp = tempDir();
  after(() => tmp.cleanup());
  const write = (name: string, text: string) => {
    const f = path.join(tmp.dir, name);
    fs.writeFileSync(f, text);
    return f;
  };

  const GOOD_YAML = `# the policy of the README
version: 1
rules:
  - name: known-processes
    kind: process-allowlist
    severity: high
    allow:
      - path: [/sbin/init, "/usr/sbin/*"]
      - comm: sh
        uid: 0
  - name: no-backdoor-ports
    kind: forbidden-listeners
    ports: [4444, "6000-6010"]
    addresses: [0.0.0.0, "::"]
  - name: no-root-without-exec
    kind: privilege-escalation
    except:
      - comm: sudo
  - name: kernel
    kind: kernel-integrity
    modules: [virtio_*, e1000]
`;

  it('loads a YAML policy whose rules work', () => {
    const policy = loadPolicy(write('good.yaml', GOOD_YAML));
    assert.deepEqual(policy.rules.map((r) => [r.name, r.severity]), [
      ['known-processes', 'high'],
      ['no-backdoor-ports', 'high'],
      ['no-root-without-exec', 'critical'],
      ['kernel', 'critical'],
    ]);
    const alerts = policy.evaluate(ev({ type: 'process-start', watch: 'processes', process: proc(9, 'nc', ['/usr/bin/nc']) }));
    assert.deepEqual(alerts.map((a) => a.data.rule), ['known-processes']);
    assert.deepEqual(policy.evaluate(ev({ type: 'process-start', watch: 'processes', process: proc(9, 'sshd', ['/usr/sbin/sshd']) })), []);
    assert.deepEqual(policy.evaluate(ev({ type: 'socket-listen', watch: 'sockets', data: { localAddress: '0.0.0.0', localPort: 6001 } })).map((a) => a.data.rule), ['no-backdoor-ports']);
    assert.deepEqual(policy.evaluate(ev({ type: 'module-load', watch: 'modules', data: { name: 'rk' } })).map((a) => a.data.rule), ['kernel']);
  });

  it('loads the same policy as JSON', () => {
    const json = JSON.stringify({
      rules: [
        { name: 'known', kind: 'process-allowlist', allow: [{ comm: ['init', 'sh'] }] },
        { name: 'ports', kind: 'forbidden-listeners', ports: ['1-1023'], comm: 'nc' },
      ],
    }, null, 2);
    const policy = loadPolicy(write('good.json', json));
    assert.deepEqual(policy.rules.map((r) => r.name), ['known', 'ports']);
    assert.equal(policy.evaluate(ev({ type: 'socket-listen', watch: 'sockets', process: proc(3, 'nc', ['nc']), data: { localPort: 80 } })).length, 1);
  });

  it('names file:line:col and the rule for an unknown field (YAML)', () => {
    const f = write('typo.yaml', GOOD_YAML.replace('      - comm: sh\n', '      - commm: sh\n'));
    const e = policyError(() => loadPolicy(f));
    assert.equal(e.oneLine(), `${f}:9:9: rule "known-processes": unknown field 'commm' (expected comm, path, uid)`);
    assert.equal(e.line, 9);
    assert.equal(e.col, 9);
  });

  it('names file:line:col and the rule for wrong types and bad ports (YAML)', () => {
    const badUid = write('uid.yaml', GOOD_YAML.replace('        uid: 0\n', '        uid: root\n'));
    assert.equal(policyError(() => loadPolicy(badUid)).oneLine(), `${badUid}:10:14: rule "known-processes": field 'uid' must be a whole number (got string "root")`);
    const badPort = write('port.yaml', GOOD_YAML.replace('ports: [4444, "6000-6010"]', 'ports: [4444, 70000]'));
    assert.equal(policyError(() => loadPolicy(badPort)).oneLine(), `${badPort}:13:19: rule "no-backdoor-ports": bad port 70000 (expected 0-65535 or a range like 6000-6010)`);
    const badRange = write('range.yaml', GOOD_YAML.replace('"6000-6010"', '"6010-6000"'));
    assert.match(policyError(() => loadPolicy(badRange)).oneLine(), /range\.yaml:13:19: rule "no-backdoor-ports": bad port range "6010-6000": 6010 is above 6000$/);
    const badKind = write('kind.yaml', GOOD_YAML.replace('kind: privilege-escalation', 'kind: privesc'));
    assert.match(policyError(() => loadPolicy(badKind)).oneLine(), /kind\.yaml:16:11: rule "no-root-without-exec": unknown kind 'privesc' \(expected process-allowlist, /);
    const badSeverity = write('sev.yaml', GOOD_YAML.replace('severity: high', 'severity: urgent'));
    assert.match(policyError(() => loadPolicy(badSeverity)).oneLine(), /sev\.yaml:6:15: rule "known-processes": field 'severity': unknown value 'urgent' \(expected info, low, medium, high, critical\)$/);
    const unknownTop = write('top.yaml', `rulez: []\n`);
    assert.equal(policyError(() => loadPolicy(unknownTop)).oneLine(), `${unknownTop}:1:1: unknown field 'rulez' (expected version, rules)`);
    const dup = write('dup.yaml', GOOD_YAML.replace('name: kernel', 'name: known-processes'));
    assert.match(policyError(() => loadPolicy(dup)).oneLine(), /dup\.yaml:19:11: rule "known-processes": the name is already used by the rule at line 4$/);
    const noName = write('noname.yaml', 'rules:\n  - kind: kernel-integrity\n');
    assert.equal(policyError(() => loadPolicy(noName)).oneLine(), `${noName}:2:5: rule #1: missing field 'name'`);
    const syntax = write('syntax.yaml', 'rules:\n  - name: a\n   kind: x\n');
    assert.match(policyError(() => loadPolicy(syntax)).oneLine(), /syntax\.yaml:3:\d+: YAML syntax: /);
  });

  it('names file:line:col and the rule for a JSON file, for field and syntax errors', () => {
    const json = `{
  "rules": [
    {
      "name": "no-shells",
      "kind": "process-allowlist",
      "allow": [
        { "commm": "sh" }
      ]
    }
  ]
}
`;
    const f = write('typo.json', json);
    assert.equal(policyError(() => loadPolicy(f)).oneLine(), `${f}:7:11: rule "no-shells": unknown field 'commm' (expected comm, path, uid)`);
    const ports = write('ports.json', '{"rules": [{"name": "p", "kind": "forbidden-listeners",\n  "ports": [22, "x-y"]}]}');
    assert.equal(policyError(() => loadPolicy(ports)).oneLine(), `${ports}:2:17: rule "p": bad port "x-y" (expected 0-65535 or a range like 6000-6010)`);
    const types = write('types.json', '{"rules": [{"name": "p", "kind": "kernel-integrity", "modules": "e1000", "checks": 5}]}');
    assert.match(policyError(() => loadPolicy(types)).oneLine(), /types\.json:1:84: rule "p": field 'checks' must be a string \(got number 5\)$/);
    const trailing = write('trailing.json', '{\n  "rules": [\n    {"name": "a", "kind": "kernel-integrity"},\n  ]\n}\n');
    assert.equal(policyError(() => loadPolicy(trailing)).oneLine(), `${trailing}:4:3: JSON syntax: unexpected ']'`);
    const dupKey = write('dupkey.json', '{"rules": [], "rules": []}');
    assert.equal(policyError(() => loadPolicy(dupKey)).oneLine(), `${dupKey}:1:15: JSON syntax: duplicate key 'rules'`);
  });

  it('refuses a missing file in one line', () => {
    const e = policyError(() => loadPolicy(path.join(tmp.dir, 'absent.yaml')));
    assert.match(e.oneLine(), /absent\.yaml: cannot read the policy: no such file$/);
  });

  it('rejects every unknown field, even where values would be ignored', () => {
    assert.match(policyError(() => parsePolicy('rules:\n  - name: k\n    kind: kernel-integrity\n    modulez: [a]\n', 'p.yaml')).oneLine(), /^p\.yaml:4:5: rule "k": unknown field 'modulez' \(expected name, kind, severity, description, checks, modules\)$/);
    assert.match(policyError(() => parsePolicy('rules:\n  - name: k\n    kind: kernel-integrity\n    checks: [module-load]\n', 'p.yaml')).oneLine(), /check 'module-load' needs 'modules'/);
    assert.match(policyError(() => parsePolicy('rules:\n  - name: l\n    kind: forbidden-listeners\n    addresses: [300.1.1.1]\n', 'p.yaml')).oneLine(), /p\.yaml:4:17: rule "l": bad address "300\.1\.1\.1"/);
    assert.match(policyError(() => parsePolicy('rules:\n  - name: l\n    kind: forbidden-listeners\n    comm: [nc]\n', 'p.yaml')).oneLine(), /p\.yaml:2:5: rule "l": needs 'ports' and\/or 'addresses'$/);
  });
});

describe('examples/policy.yaml', () => {
  it('loads, and its rules judge events', () => {
    const file = path.join(path.dirname(new URL(import.meta.url).pathname), '..', '..', 'examples', 'policy.yaml');
    const policy = loadPolicy(file);
    assert.deepEqual(policy.rules.map((r) => r.name), ['known-processes', 'no-backdoor-listeners', 'no-public-netcat', 'root-without-exec', 'kernel-integrity']);
    const listen = ev({ type: 'socket-listen', watch: 'sockets', process: proc(80, 'nc', ['nc', '-l', '-p', '4444']), data: { localAddress: '0.0.0.0', localPort: 4444 } });
    assert.deepEqual(policy.evaluate(listen).map((a) => a.data.rule), ['no-backdoor-listeners', 'no-public-netcat']);
  });
});
