/**
 * BTF and typed access against real lab guests (5.10, 6.1, 6.12): the BTF in
 * guest memory (__start_BTF…__stop_BTF via kallsyms) is byte-identical to
 * the booted vmlinuz's .BTF section, its layouts of the core structures equal
 * Debian's bpftool dump, and typed access over it walks init_task's task
 * list to exactly the processes the guest's own `ps` printed.
 */
import { describe as suite, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { btfFromKernelSymbols, moduleBtfsFromMemory } from '../../src/profile/btf/sources.js';
import { TypeDb } from '../../src/profile/types.js';
import { globalRef, validateGlobals } from '../../src/profile/globals.js';
import { elfSection, extractVmlinux } from '../../src/profile/vmlinux.js';
import { attachForSuite } from '../helpers/kernel.js';
import { bpftoolDump, describe, hasBpftool } from './helpers/bpftool.js';

const CORE_STRUCTS = ['task_struct', 'mm_struct', 'module', 'sock', 'file', 'dentry', 'inode', 'net', 'cred'];

for (const kernelSpec of ['6.1', '5.10', '6.12']) {
  suite(`guest ${kernelSpec}`, () => {
    const g = attachForSuite({ kernel: kernelSpec }, { attach: { cache: false } });

    test('in-memory BTF is byte-identical to the vmlinuz .BTF section', () => {
      const mem = btfFromKernelSymbols(g.kernel.space, g.kernel.symbols);
      const file = elfSection(extractVmlinux(readFileSync(g.guest.kernel.vmlinuzPath), g.guest.kernel.vmlinuzPath), '.BTF');
      assert.ok(file);
      assert.equal(mem.raw.length, file.length);
      assert.ok(Buffer.from(mem.raw).equals(Buffer.from(file)), 'BTF bytes differ');
      assert.match(g.kernel.types.source, /btf/);
    });

    test('core structure layouts from memory equal bpftool', (t) => {
      if (!hasBpftool()) {
        t.skip('bpftool is not installed');
        return;
      }
      const btf = btfFromKernelSymbols(g.kernel.space, g.kernel.symbols);
      const theirs = bpftoolDump(btf.raw);
      for (const name of CORE_STRUCTS) {
        const s = g.kernel.types.struct(name);
        assert.deepEqual(describe(btf.get(s.id)), theirs.get(s.id), name);
      }
    });

    test('module split BTF: every loaded module carries BTF that parses over vmlinux (5.11+)', () => {
      const base = btfFromKernelSymbols(g.kernel.space, g.kernel.symbols);
      // Since Linux kernel commit 36e68442d1af ("bpf: Load and verify kernel module BTFs") (in v5.11).
      if (!g.kernel.symbols.tryAddress('btf_modules')) {
        assert.equal(g.kernel.types.hasMember('module', 'btf_data'), false);
        assert.throws(() => moduleBtfsFromMemory(g.kernel.typed, g.kernel.symbols, base), /no module BTF/);
        return;
      }
      const r = moduleBtfsFromMemory(g.kernel.typed, g.kernel.symbols, base);
      assert.deepEqual(r.anomalies, []);
      assert.deepEqual(r.modules.map((m) => m.name).sort(), g.truth.modules.map((m) => m.name).sort());
      for (const { name, btf } of r.modules) {
        assert.equal(btf.firstId, base.count, name);
        const db = new TypeDb(btf);
        for (let id = btf.firstId; id < btf.count; id++) db.get(id);
      }
    });

    test('every non-optional global of the table has its type', () => {
      const r = validateGlobals(g.kernel.types);
      assert.deepEqual(r.missing.filter((m) => !m.optional).map((m) => m.name), []);
    });

    test('typed access: init_task and its task list match the guest ps', () => {
      const typed = g.kernel.typed;
      const init = globalRef(typed, g.kernel.symbols, 'init_task').read();
      assert.equal(init.u32('pid'), 0);
      assert.equal(init.str('comm'), 'swapper/0');
      const head = init.addrOf('tasks');
      const seen = new Map<number, string>();
      const byPid = new Map<number, bigint>();
      let next = init.member('tasks').ptr('next');
      for (let i = 0; i < 10_000 && next !== head; i++) {
        const ref = typed.containerOf(next, 'task_struct', 'tasks');
        const task = ref.read();
        seen.set(task.u32('pid'), task.str('comm'));
        byPid.set(task.u32('pid'), ref.address);
        next = task.member('tasks').ptr('next');
      }
      assert.equal(next, head, 'task list did not come back to init_task');
      // Thread-group leaders are on the task list; ps shows them all.
      const leaders = g.truth.processes.filter((p) => p.pid > 0);
      for (const p of leaders) {
        if (!seen.has(p.pid)) continue; // a process that exited after ps ran
        // /proc shows a kworker's current workqueue after its comm ('kworker/0:0-rcu'); task->comm lacks it.
        if (p.comm.startsWith('kworker/')) assert.ok(p.comm.startsWith(seen.get(p.pid)!), `pid ${p.pid}`);
        else assert.equal(seen.get(p.pid), p.comm.slice(0, 15), `pid ${p.pid}`);
      }
      // The scenario's user processes (vmi-*) must all be there.
      const users = g.truth.processes.filter((p) => !p.kthread && p.comm.startsWith('vmi-'));
      assert.ok(users.length > 0);
      for (const p of users) assert.equal(seen.get(p.pid), p.comm, `user process ${p.pid}`);
      const canary = users.find((p) => p.pid > 1)!;
      assert.ok(seen.size >= leaders.length * 0.9, `${seen.size} tasks walked, ps had ${leaders.length}`);
      // Pointer following: a user process's mm has argument bounds; kernel threads have no mm.
      const canaryTask = typed.obj('task_struct', byPid.get(canary.pid)!).read();
      const argStart = canaryTask.deref('mm.arg_start')!.u64();
      const argEnd = canaryTask.deref('mm.arg_end')!.u64();
      assert.ok(argStart > 0n && argEnd > argStart && argEnd - argStart < 4096n, `arg ${argStart}..${argEnd}`);
      const kthread = g.truth.processes.find((p) => p.kthread && byPid.has(p.pid));
      if (kthread) assert.equal(typed.obj('task_struct', byPid.get(kthread.pid)!).read().obj('mm'), null);
    });
  });
}
