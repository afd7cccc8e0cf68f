import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { SourceError } from '../../src/core/errors.js';
import { nativeSupport } from '../../src/memory/native/libc.js';
import { factory, openQemuProcess, ptraceHint, type LiveReadMethod } from '../../src/memory/sources/qemu-process.js';
import type { ReadOp } from '../../src/memory/types.js';
import { startFakeQmp, type FakeQmp } from '../qemu/helpers/fake-qmp.js';
import { gpa } from '../../src/core/address.js';

/**
 * A stand-in for QEMU: a child process holding 128 KiB of "guest RAM" where
 * each 8-byte word is its own offset, plus a 2-page shared file mapping that
 * the test truncates to make its second page fault.
 */
async function startFakeQemu(dir: string): Promise<{ child: ChildProcess; ram: number; map: number; file: string }> {
  const koffi = createRequire(import.meta.url).resolve('koffi');
  const file = path.join(dir, 'mapped');
  fs.writeFileSync(file, Buffer.alloc(8192, 0x77));
  const script = `
    const koffi = require(${JSON.stringify(koffi)});
    const fs = require('fs');
    const lib = koffi.load('libc.so.6');
    const mmap = lib.func('void *mmap(void *addr, size_t len, int prot, int flags, int fd, int64_t off)');
    const ram = Buffer.alloc(0x20000);
    for (let o = 0; o < ram.length; o += 8) ram.writeBigUInt64LE(BigInt(o), o);
    const fd = fs.openSync(${JSON.stringify(file)}, 'r');
    const p = mmap(null, 8192, 1, 1, fd, 0);
    console.log(JSON.stringify({ ram: Number(koffi.address(ram)), map: Number(koffi.address(p)) }));
    setInterval(() => ram.length, 1000);
  `;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    child.stdout!.once('data', (d: Buffer) => resolve(d.toString()));
    child.once('exit', (code) => reject(new Error(`fake QEMU exited with ${code}`)));
  });
  const { ram, map } = JSON.parse(line) as { ram: number; map: number };
  return { child, ram, map, file };
}

const MTREE = [
  'FlatView #0',
  ' AS "memory", root: system',
  '  0000000000000000-000000000000ffff (prio 0, ram): mem',
  '  0000000000010000-000000000001ffff (prio 0, i/o): hole',
  '  0000000000020000-000000000002ffff (prio 0, ram): mem @0000000000010000',
  '  0000000000040000-0000000000041fff (prio 0, ram): mem @0000000000020000',
].join('\n');

function fakeQmpFor(q: { ram: number; map: number }): Promise<FakeQmp> {
  return startFakeQmp((cmd) => {
    if (cmd === 'query-status') return { status: 'running' };
    if (cmd === 'hmp:info mtree -f') return MTREE;
    if (cmd === 'query-memdev') return [];
    if (cmd === 'qom-list') return [];
    const m = /^hmp:gpa2hva 0x([0-9a-f]+)$/.exec(cmd);
    if (m) {
      const gpa = parseInt(m[1]!, 16);
      const hva = gpa >= 0x40000 ? q.map + (gpa - 0x40000) : gpa >= 0x20000 ? q.ram + 0x10000 + (gpa - 0x20000) : q.ram + gpa;
      return `Host virtual address for 0x${gpa.toString(16)} (mem) is 0x${hva.toString(16)}\r\n`;
    }
    throw new Error(`unsupported ${cmd}`);
  });
}

const methods: LiveReadMethod[] = nativeSupport().ok ? ['process_vm_readv', 'proc-mem'] : ['proc-mem'];

for (const method of methods) {
  test(`${method}: batched reads, holes, faults, and QEMU exiting`, async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmsight-test-proc-'));
    const q = await startFakeQemu(dir);
    const qmp = await fakeQmpFor(q);
    try {
      const mem = await openQemuProcess({ qmp: qmp.path, pid: q.child.pid!, method });
      assert.equal(mem.method, method);
      assert.equal(mem.technique.class, 'live-read');
      assert.equal(mem.size, 0x42000);
      // More ops than one system call takes (1024 iovecs).
      const ops: ReadOp[] = [];
      for (let i = 0; i < 3000; i++) ops.push({ addr: gpa((i * 40) % 0x10000 & ~7), len: 8 });
      for (let i = 0; i < 500; i++) ops.push({ addr: gpa(0x20000 + i * 64), len: 8 });
      assert.deepEqual(mem.readv(ops), []);
      for (const op of ops) {
        const want = BigInt(op.addr < 0x20000 ? op.addr : op.addr - 0x10000);
        assert.equal(Buffer.from(op.dst!).readBigUInt64LE(0), want, `word at 0x${op.addr.toString(16)}`);
      }
      // Many small reads sharing pages, mixed with reads too big to share, over several windows of 1024 jobs.
      const mixed: ReadOp[] = [];
      for (let i = 0; i < 6000; i++) {
        mixed.push(i % 3 === 0 ? { addr: gpa(0x20000 + ((i * 1032) % 0xf000 & ~7)), len: 1024 } : { addr: gpa((i * 24) % 0x10000 & ~7), len: 8 });
      }
      assert.deepEqual(mem.readv(mixed), []);
      for (const op of mixed) {
        const b = Buffer.from(op.dst!);
        for (const at of [0, op.len - 8]) {
          const gpa = op.addr + at;
          assert.equal(b.readBigUInt64LE(at), BigInt(gpa < 0x20000 ? gpa : gpa - 0x10000), `word at 0x${gpa.toString(16)}`);
        }
      }
      // One read across a hole: both pieces read, the hole reported.
      const across: ReadOp = { addr: gpa(0xfff8), len: 0x10010 };
      const f1 = mem.readv([across]);
      assert.deepEqual(f1.map((f) => [f.addr, f.len]), [[0x10000, 0x10000]]);
      assert.equal(Buffer.from(across.dst!).readBigUInt64LE(0), 0xfff8n);
      assert.equal(Buffer.from(across.dst!).readBigUInt64LE(0x10008), 0x10000n);
      // Make the second mapped page fault: a partial read inside a batch, then the batch goes on.
      fs.truncateSync(q.file, 4096);
      const batch: ReadOp[] = [{ addr: gpa(0x100), len: 8 }, { addr: gpa(0x40ff8), len: 16 }, { addr: gpa(0x41100), len: 8 }, { addr: gpa(0x200), len: 8 }];
      const f2 = mem.readv(batch);
      assert.deepEqual(f2.map((f) => [f.addr, f.len]), [[0x41000, 8], [0x41100, 8]]);
      assert.match(f2[0]!.reason, /has no memory at host address/);
      assert.deepEqual([...batch[1]!.dst!], [0x77, 0x77, 0x77, 0x77, 0x77, 0x77, 0x77, 0x77, 0, 0, 0, 0, 0, 0, 0, 0]);
      assert.equal(Buffer.from(batch[3]!.dst!).readBigUInt64LE(0), 0x200n, 'ops after the fault are read');
      // QEMU exits: a SourceError that says so, not a crash.
      q.child.kill('SIGKILL');
      await new Promise((r) => q.child.once('exit', r));
      assert.throws(
        () => mem.readv([{ addr: gpa(0), len: 8 }]),
        (e: unknown) => e instanceof SourceError && /QEMU process \d+ is gone \(ESRCH\)/.test(e.message),
      );
      await mem.close();
    } finally {
      q.child.kill('SIGKILL');
      await qmp.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('open refuses a pid whose mappings do not hold the RAM QMP names', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmsight-test-proc-'));
  const q = await startFakeQemu(dir);
  const qmp = await fakeQmpFor({ ram: 0x1000, map: 0x3000 });
  try {
    await assert.rejects(openQemuProcess({ qmp: qmp.path, pid: q.child.pid! }), /is not mapped in process/);
    await assert.rejects(openQemuProcess({ qmp: qmp.path, pid: 4_000_000 }), /no such process/);
    await assert.rejects(openQemuProcess({ qmp: qmp.path }), /cannot tell which process is QEMU/);
    const p = await factory.probe({ spec: 'x', qmp: qmp.path, params: {} });
    assert.equal(p.ok, false);
    assert.equal((await factory.probe({ spec: 'x', params: {} })).ok, false);
    const ok = await factory.probe({ spec: 'x', qmp: qmp.path, pid: q.child.pid!, params: {} });
    assert.equal(ok.ok, true, ok.reason);
  } finally {
    q.child.kill('SIGKILL');
    await qmp.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the permission hint names the capability and ptrace_scope', () => {
  const h = ptraceHint(process.pid);
  assert.match(h, /CAP_SYS_PTRACE/);
  assert.match(h, /ptrace_scope/);
  assert.match(h, new RegExp(`uid ${process.getuid!()}`));
});

test('without ptrace rights the error names the capability', { skip: process.getuid?.() !== 0 ? 'needs root to drop to nobody' : false }, () => {
  // A child running as nobody tries to read init (pid 1): EPERM.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmsight-test-perm-'));
  fs.chmodSync(dir, 0o777);
  const src = (p: string) => JSON.stringify(new URL(p, import.meta.url).pathname);
  const script = path.join(dir, 'child.mts');
  fs.writeFileSync(
    script,
    `import { openQemuProcess, factory } from ${src('../../src/memory/sources/qemu-process.ts')};
     import { startFakeQmp } from ${src('../qemu/helpers/fake-qmp.ts')};
     const qmp = await startFakeQmp((cmd) => {
       if (cmd === 'query-status') return { status: 'running' };
       if (cmd === 'hmp:info mtree -f') return 'FlatView #0\\n AS "memory", root: system\\n  0000000000000000-0000000000000fff (prio 0, ram): mem\\n';
       if (cmd.startsWith('hmp:gpa2hva')) return 'Host virtual address for 0x0 (mem) is 0x400000';
       if (cmd === 'query-memdev' || cmd === 'qom-list') return [];
       throw new Error('unsupported');
     });
     try {
       await openQemuProcess({ qmp: qmp.path, pid: 1, method: process.argv[2] });
       console.log('OPENED');
     } catch (e) {
       console.log('ERR ' + e.oneLine());
     }
     const p = await factory.probe({ spec: 'x', qmp: qmp.path, pid: 1, params: {} });
     console.log('PROBE ' + p.ok + ' ' + p.reason);
     await qmp.close();`,
  );
  fs.chmodSync(script, 0o644);
  try {
    const loader = new URL('../../node_modules/tsx/dist/loader.mjs', import.meta.url).pathname;
    for (const method of ['process_vm_readv', 'proc-mem']) {
      const r = spawnSync(process.execPath, ['--import', loader, script, method], {
        encoding: 'utf8',
        uid: 65534,
        gid: 65534,
        cwd: dir,
        env: { ...process.env, HOME: dir, TMPDIR: dir },
        timeout: 60_000,
      });
      assert.match(r.stdout, /ERR live-read pid:1\S*: permission denied reading QEMU process 1 \((EPERM|EACCES)\): .*CAP_SYS_PTRACE.*uid 65534/, r.stdout + r.stderr);
      assert.match(r.stdout, /PROBE false cannot open \/proc\/1\/mem \(EACCES\): .*CAP_SYS_PTRACE/);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
