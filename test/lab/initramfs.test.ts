import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import zlib from 'node:zlib';
import { readCpio } from '../../src/lab/cpio.js';
import { busyboxPath, ensureInitramfs, initramfsKey, isStaticElf, moduleDepends, type InitramfsInputs } from '../../src/lab/initramfs.js';
import type { LabKernel } from '../../src/lab/kernels.js';
import { EXEC_TTY, initScript, KALLSYMS_SPOTS, ONDEMAND_MODULE, SCENARIO } from '../../src/lab/scenario/init-script.js';

function elf(withInterp: boolean): Buffer {
  const b = Buffer.alloc(64 + 2 * 56);
  b.writeUInt32BE(0x7f454c46, 0);
  b[4] = 2;
  b.writeBigUInt64LE(64n, 32);
  b.writeUInt16LE(56, 54);
  b.writeUInt16LE(2, 56);
  b.writeUInt32LE(1, 64); // PT_LOAD
  b.writeUInt32LE(withInterp ? 3 : 1, 64 + 56);
  return b;
}

test('static ELF detection looks for PT_INTERP and rejects junk', () => {
  assert.equal(isStaticElf(elf(false)), true);
  assert.equal(isStaticElf(elf(true)), false);
  assert.equal(isStaticElf(Buffer.from('#!/bin/sh\n')), false);
  const lying = elf(false);
  lying.writeUInt16LE(200, 56); // program headers past the end
  assert.equal(isStaticElf(lying), false);
});

test('module dependencies come from .modinfo', () => {
  assert.equal(moduleDepends(Buffer.from('\x7fELF....\0license=GPL\0depends=\0vermagic=6.1\0')), '');
  assert.equal(moduleDepends(Buffer.from('\0depends=can-dev,foo\0name=vcan\0')), 'can-dev,foo');
  assert.equal(moduleDepends(Buffer.from('no modinfo here')), undefined);
});

test('the init script loads modules, starts every scenario role and prints the protocol markers', () => {
  const s = initScript(['dummy.ko', 'qemu_fw_cfg.ko'], [{ name: 'hider.ko', params: 'target=vmi-args' }]);
  assert.match(s, /^#!\/bin\/sh\n/);
  assert.match(s, /insmod \/lib\/modules\/dummy\.ko/);
  assert.match(s, /insmod \/lib\/modules\/extra\/hider\.ko target=vmi-args/);
  for (const role of Object.values(SCENARIO)) if (role !== 'vmi-init') assert.match(s, new RegExp(`/bin/${role}'? `), role);
  assert.ok(s.indexOf('VMI-BOOTED') < s.indexOf('VMI-GT-BEGIN v1'));
  assert.ok(s.trimEnd().endsWith('exec /bin/vmi-init'), 'PID 1 ends as vmi-init');
  assert.match(s, new RegExp(`vmi-ksyms ${KALLSYMS_SPOTS.join(' ')}`));
  assert.throws(() => initScript(['evil;reboot.ko']), RangeError);
  assert.throws(() => initScript([], [{ name: 'x.ko', params: 'a=$(reboot)' }]), RangeError);
});

const haveTools = (() => {
  try {
    return isStaticElf(fs.readFileSync(busyboxPath())) && fs.existsSync('/usr/bin/gcc');
  } catch {
    return false;
  }
})();

test('an initramfs for a fake kernel holds busybox, applets, scenario links, modules and /init', { skip: haveTools ? false : 'needs busybox-static and gcc' }, async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vmsight-initramfs-'));
  const saved = process.env['VMSIGHT_CACHE'];
  process.env['VMSIGHT_CACHE'] = path.join(tmp, 'cache');
  try {
    const modulesDir = path.join(tmp, 'lib/modules/9.9.9-test');
    fs.mkdirSync(path.join(modulesDir, 'kernel/drivers/net'), { recursive: true });
    fs.mkdirSync(path.join(modulesDir, 'kernel/drivers/firmware'), { recursive: true });
    fs.writeFileSync(path.join(modulesDir, 'kernel/drivers/net/dummy.ko'), '\0depends=\0name=dummy\0');
    fs.mkdirSync(path.join(modulesDir, 'kernel/lib'), { recursive: true });
    fs.writeFileSync(path.join(modulesDir, 'kernel/lib/crc7.ko'), '\0depends=\0name=crc7\0');
    // A gzip-compressed module exercises host-side decompression.
    fs.writeFileSync(path.join(modulesDir, 'kernel/drivers/firmware/qemu_fw_cfg.ko.gz'), zlib.gzipSync(Buffer.from('\0depends=\0name=qemu_fw_cfg\0')));
    const extra = path.join(tmp, 'hider.ko');
    fs.writeFileSync(extra, '\0depends=\0name=hider\0');
    const kernel: LabKernel = {
      spec: 'test', suite: 'bookworm', package: 'linux-image-9.9.9-test', version: '9.9.9-1', release: '9.9.9-test',
      vmlinuzPath: '/nonexistent', modulesDir, configPath: '/nonexistent', root: tmp, downloadMs: 0, unpackMs: 0, fromCache: true,
    };
    const first = await ensureInitramfs({ kernel, extraModules: [{ path: extra, params: 'target=vmi-args' }] });
    assert.equal(first.built, true);
    assert.deepEqual(first.modules, ['dummy', 'qemu_fw_cfg', 'hider']);
    const again = await ensureInitramfs({ kernel, extraModules: [{ path: extra, params: 'target=vmi-args' }] });
    assert.equal(again.built, false);
    assert.equal(again.path, first.path);
    const entries = readCpio(zlib.gunzipSync(fs.readFileSync(first.path)));
    const byPath = new Map(entries.map((e) => [e.path, e]));
    assert.equal(byPath.get('bin/busybox')!.type, 'file', 'busybox is the binary, never a link to itself');
    assert.equal(byPath.get('bin/sh')!.target, 'busybox');
    assert.equal(byPath.get('bin/vmi-helper')!.type, 'file');
    assert.ok(isStaticElf(byPath.get('bin/vmi-helper')!.data!));
    for (const role of Object.values(SCENARIO)) assert.equal(byPath.get(`bin/${role}`)!.target, 'vmi-helper', role);
    assert.equal(byPath.get('dev/console')!.type, 'char');
    assert.equal(byPath.get('dev/ttyS1')!.rdevMinor, 65, 'the exec channel tty');
    // The on-demand module ships but /init does not load it.
    assert.ok(byPath.has(ONDEMAND_MODULE.path.slice(1)));
    assert.doesNotMatch(Buffer.from(byPath.get('init')!.data!).toString(), /crc7/);
    assert.deepEqual(first.modules, ['dummy', 'qemu_fw_cfg', 'hider']);
    assert.equal(Buffer.from(byPath.get('lib/modules/qemu_fw_cfg.ko')!.data!).toString(), '\0depends=\0name=qemu_fw_cfg\0');
    assert.ok(byPath.has('lib/modules/extra/hider.ko'));
    assert.match(Buffer.from(byPath.get('init')!.data!).toString(), /insmod \/lib\/modules\/extra\/hider\.ko target=vmi-args/);
    assert.equal(byPath.get('init')!.mode, 0o755);
    // A module with dependencies cannot be loaded by plain insmod: refuse it.
    fs.writeFileSync(path.join(modulesDir, 'kernel/drivers/net/dummy.ko'), '\0depends=bar\0');
    await assert.rejects(ensureInitramfs({ kernel: { ...kernel, version: '9.9.9-2' } }), /depends on bar/);
  } finally {
    if (saved === undefined) delete process.env['VMSIGHT_CACHE'];
    else process.env['VMSIGHT_CACHE'] = saved;
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test('the initramfs cache key changes with the helper source, the init script and every other input', () => {
  const base: InitramfsInputs = {
    kernel: { package: 'linux-image-x', version: '1' },
    busybox: Buffer.from('busybox'),
    helperSha256: 'a'.repeat(64),
    extras: [],
    modules: ['dummy'],
    ondemand: 'crc7',
    script: initScript(['dummy.ko']),
  };
  const key = initramfsKey(base);
  assert.equal(initramfsKey({ ...base }), key);
  const variants: Partial<InitramfsInputs>[] = [
    { helperSha256: 'b'.repeat(64) },
    { script: base.script + '\n' },
    { busybox: Buffer.from('busybox2') },
    { kernel: { package: 'linux-image-x', version: '2' } },
    { extras: [{ name: 'r.ko', bytes: Buffer.from('x') }] },
    { modules: ['dummy', 'veth'] },
    { ondemand: '' },
  ];
  for (const v of variants) assert.notEqual(initramfsKey({ ...base, ...v }), key, JSON.stringify(Object.keys(v)));
});

test('the init script starts the exec agent on its own tty and waits for it', () => {
  const s = initScript([]);
  assert.match(s, new RegExp(`/bin/${SCENARIO.exec} ${EXEC_TTY} `));
  assert.match(s, /wait_ready \$r; done/);
  assert.match(s, /vmi-net-accepted vmi-exec; do wait_ready/);
});
