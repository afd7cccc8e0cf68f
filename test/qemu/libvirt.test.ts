/** libvirt transport pieces that need no daemon: source names, domain XML, monitor-socket holders. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { labDomainXml } from '../../src/lab/libvirt.js';
import { parseSourceSpec } from '../../src/memory/open.js';
import { backingOfXml, libvirtDomainOfSocket, qmpHolderHint } from '../../src/qemu/libvirt.js';

test('libvirt:NAME parses with its uri; an empty name is kept for listing; a bad name is refused', () => {
  const t = parseSourceSpec('libvirt:web01?uri=qemu%3A%2F%2F%2Fsession');
  assert.equal(t.libvirt, 'web01');
  assert.equal(t.params['uri'], 'qemu:///session');
  assert.equal(parseSourceSpec('libvirt:').libvirt, '');
  assert.throws(() => parseSourceSpec('libvirt:../etc'), /not a libvirt domain name/);
});

test('the lab domain XML asks for the backing and acpi it was given, and backingOfXml reads them back', () => {
  const base = { name: 'x', memoryMiB: 256, kernelPath: '/k', initrdPath: '/i', append: 'console=ttyS0', consolePath: '/c&d.log' };
  for (const backing of ['anon', 'memfd', 'file'] as const) {
    for (const acpi of [true, false]) {
      const xml = labDomainXml({ ...base, backing, acpi });
      const got = backingOfXml(xml);
      assert.equal(got.backing, backing === 'anon' ? 'anonymous' : backing);
      assert.equal(got.shared, backing !== 'anon');
      assert.equal(got.acpi, acpi);
      assert.equal(got.vmcoreinfo, true);
      assert.match(xml, /<source path='\/c&amp;d\.log'\/>/);
    }
  }
});

test('a busy libvirt monitor socket names the domain and the way out', () => {
  assert.equal(libvirtDomainOfSocket('/var/lib/libvirt/qemu/domain-3-web01/monitor.sock'), 'web01');
  assert.equal(libvirtDomainOfSocket('/tmp/qmp.sock'), undefined);
  assert.match(qmpHolderHint('/var/lib/libvirt/qemu/domain-12-db.prod/monitor.sock'), /libvirtd holds .*libvirt:db\.prod/);
  assert.match(qmpHolderHint('/nonexistent/qmp.sock'), /second -qmp/);
});
