/**
 * A malicious guest: a raw image of a real 6.1 guest's RAM with kernel
 * structures corrupted the way a rootkit or a torn read would (a cycle in the
 * task list, a task whose mm points into unmapped memory, an argv that claims
 * to be 1 GiB long, a maple tree root pointing at garbage, a dentry name
 * length of 4 GiB). Every plugin must finish in bounded time, keep the rows it
 * could read, and name the anomalies it met.
 */
import { everyPluginOptions } from '../helpers/plugin-runs.js';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { attachKernel, type AttachedKernel } from '../../src/linux/attach.js';
import { runPlugin } from '../../src/linux/plugin.js';
import { findPlugin, plugins } from '../../src/linux/plugins/index.js';
import { sharedGuest } from '../helpers/guest.js';
import { gva } from '../../src/core/address.js';

let dir: string;
let image: string;
let clean: { pslist: Map<number, { offset: bigint; comm: string }> };
let kernel: AttachedKernel;

/** Overwrites bytes at a kernel virtual address in the raw image (file offset = guest-physical address). */
function poke(k: AttachedKernel, fd: number, va: bigint, bytes: Buffer): void {
  const pa = k.space.translate(gva(va)).pa;
  fs.writeSync(fd, bytes, 0, bytes.length, pa);
}

function u64(v: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt.asUintN(64, v));
  return b;
}

before(async () => {
  const { guest } = await sharedGuest({ kernel: '6.1' });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmsight-hostile-'));
  image = path.join(dir, 'guest.raw');
  fs.copyFileSync(guest.shmPath, image);

  // Learn where things are from the clean copy.
  const k0 = await attachKernel(image, { cache: false });
  const rows = runPlugin(findPlugin('pslist')!, k0).rows as { pid: number; offset: bigint; comm: string }[];
  clean = { pslist: new Map(rows.map((r) => [r.pid, { offset: r.offset, comm: r.comm }])) };
  const byComm = (c: string) => rows.find((r) => r.comm === c)!;
  const t = k0.types;
  const fd = fs.openSync(image, 'r+');
  try {
    // 1. vmi-threads' tasks.next points back at vmi-user's: a cycle that skips the list head.
    const user = byComm('vmi-user');
    const threads = byComm('vmi-threads');
    const tasksOff = BigInt(t.offsetOf('task_struct', 'tasks'));
    poke(k0, fd, threads.offset + tasksOff, u64(user.offset + tasksOff));
    // 2. vmi-files' mm points into unmapped kernel space.
    const files = byComm('vmi-files');
    poke(k0, fd, files.offset + BigInt(t.offsetOf('task_struct', 'mm')), u64(0xffffc8ffdead0000n));
    // 3. vmi-args claims a 1 GiB argv, and its VMA tree root points at garbage.
    const args = byComm('vmi-args');
    const mmVa = k0.space.readU64(args.offset + BigInt(t.offsetOf('task_struct', 'mm')));
    const argStart = k0.space.readU64(mmVa + BigInt(t.offsetOf('mm_struct', 'arg_start')));
    poke(k0, fd, mmVa + BigInt(t.offsetOf('mm_struct', 'arg_end')), u64(argStart + (1n << 30n)));
    if (t.hasMember('mm_struct', 'mm_mt')) poke(k0, fd, mmVa + BigInt(t.offsetOf('mm_struct', 'mm_mt.ma_root')), u64(0xffff888000001006n));
    // 4. The dentry of init's executable gets a 4 GiB name.
    const init = k0.typed.obj('task_struct', byComm('vmi-init').offset).read();
    const mm1 = init.obj('mm')!.read();
    const exe = mm1.obj('exe_file');
    if (exe) {
      const dentry = exe.read().ptr('f_path.dentry');
      poke(k0, fd, dentry + BigInt(t.offsetOf('dentry', 'd_name.len')), Buffer.from([0xff, 0xff, 0xff, 0xff]));
    }
  } finally {
    fs.closeSync(fd);
    await k0.close();
  }
  kernel = await attachKernel(image, { cache: false });
});

after(async () => {
  await kernel?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test('pslist stops at the injected cycle with a named anomaly and keeps the processes before it', () => {
  const r = runPlugin(findPlugin('pslist')!, kernel);
  assert.ok((r.anomalyCounts.cycle ?? 0) + (r.anomalyCounts['broken-link'] ?? 0) >= 1, JSON.stringify(r.anomalyCounts));
  const pids = new Set((r.rows as { pid: number }[]).map((x) => x.pid));
  assert.ok(pids.has(1) && pids.has(2), 'processes before the damage are kept');
  assert.ok(r.rows.length < clean.pslist.size + 5, 'no runaway rows');
});

test('every plugin finishes in bounded time on the hostile image, with rows or named anomalies', () => {
  const seen: Record<string, Record<string, number | undefined>> = {};
  for (const plugin of plugins) {
    const t0 = performance.now();
    let r: ReturnType<typeof runPlugin>;
    try {
      r = runPlugin(plugin, kernel, everyPluginOptions(plugin));
    } catch (e) {
      assert.fail(`${plugin.name} threw on a hostile image: ${(e as Error).message}`);
    }
    const ms = performance.now() - t0;
    assert.ok(ms < 20_000, `${plugin.name} took ${ms.toFixed(0)} ms`);
    for (const a of r.anomalies) assert.ok(a.kind && a.where, `${plugin.name}: anomaly without a name`);
    seen[plugin.name] = r.anomalyCounts;
  }
  // The damage is in tasks, mm, VMAs and a dentry: the plugins that read them must have named it.
  for (const name of ['pslist', 'psaux', 'maps', 'lsof']) {
    const n = Object.values(seen[name] ?? {}).reduce<number>((a, b) => a + (b ?? 0), 0);
    assert.ok(n >= 1, `${name} met the damage without naming it: ${JSON.stringify(seen[name])}`);
  }
});

test('psaux bounds the 1 GiB argv and the faulting mm instead of reading them', () => {
  const r = runPlugin(findPlugin('psaux')!, kernel);
  const total = Object.values(r.anomalyCounts).reduce((a, b) => a + (b ?? 0), 0);
  assert.ok(total >= 1, `anomalies: ${JSON.stringify(r.anomalyCounts)}`);
  for (const row of r.rows as { args?: unknown }[]) {
    const text = typeof row.args === 'string' ? row.args : JSON.stringify(row.args ?? '');
    assert.ok(text.length < 1 << 20, 'argv text stays bounded');
  }
});
