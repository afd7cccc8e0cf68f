/**
 * The floor for a task-list walk: a hand-written loop over the mapped guest image that follows the
 * `tasks` (and thread) links and reads the same facts as the monitor's TaskScanner (pid, tgid, comm, flags,
 * start time, exit state, the mm, cred and real_parent pointers as guest-physical addresses, and the
 * parent's tgid), with no bounds, no cycle check, no anomalies and no translation beyond direct-map
 * arithmetic and one comparison for init_task (in the kernel image). Benchmark use only: on a hostile guest
 * it could loop or throw; it exists to say how far the bounded, typed TaskScanner is from the cost of the
 * memory reads themselves.
 */
import type { Kernel } from '../linux/kernel.js';
import { compileTaskPlan } from '../monitor/task-scan.js';
import { GuestView } from '../monitor/guest-view.js';

export interface FloorTask {
  pa: number;
  pid: number;
  tgid: number;
  comm: string;
  flags: number;
  startNs: number;
  mm: number;
  cred: number;
  realParent: number;
  exitState: number;
  ppid: number;
}

export function uncheckedWalker(kernel: Kernel): () => FloorTask[] {
  const p = compileTaskPlan(kernel);
  const regions = kernel.memory.mapped?.() ?? [];
  // The largest mapped run (above the legacy hole) holds the slab pages the task_structs live in.
  const region = [...regions].sort((a, b) => b.bytes.length - a.bytes.length)[0];
  if (!region) throw new Error('bench monitor: the floor walk needs a mapped image (live map)');
  const dv = new DataView(region.bytes.buffer, region.bytes.byteOffset, region.bytes.length);
  const start = region.start; // offsets below are into the region: guest-physical − start
  const base = kernel.directMapBase;
  const baseHi = Number(base >> 32n);
  const baseLo = Number(base & 0xffffffffn);
  const initPhys = new GuestView(kernel).pa(p.initTask);
  if (initPhys === undefined || initPhys < start) throw new Error('bench monitor: init_task is not in the mapped image');
  const initAt = initPhys - start;
  const initHi = Number(p.initTask >> 32n);
  const initLo = Number(p.initTask & 0xffffffffn);
  const taskSize = kernel.types.sizeOf('task_struct');
  /** The region offset a kernel pointer at `at` points to: init_task (the image) or the direct map. */
  const toAt = (at: number): number => {
    const lo = dv.getUint32(at, true);
    const hi = dv.getUint32(at + 4, true);
    if (hi === initHi && lo - initLo >= 0 && lo - initLo < taskSize) return initAt + (lo - initLo);
    return (hi - baseHi) * 4294967296 + (lo - baseLo) - start;
  };
  const orNone = (at: number): number => (dv.getUint32(at, true) === 0 && dv.getUint32(at + 4, true) === 0 ? -1 : toAt(at) + start);
  const comm = (at: number): string => {
    let s = '';
    for (let i = 0; i < p.commLen; i++) {
      const c = dv.getUint8(at + i);
      if (!c) break;
      s += String.fromCharCode(c);
    }
    return s;
  };
  const fact = (t: number): FloorTask => ({
    pa: t + start,
    pid: dv.getInt32(t + p.pid, true),
    tgid: dv.getInt32(t + p.tgid, true),
    comm: comm(t + p.comm),
    flags: dv.getUint32(t + p.flags, true),
    startNs: dv.getUint32(t + p.start + 4, true) * 4294967296 + dv.getUint32(t + p.start, true),
    mm: orNone(t + p.mm),
    cred: orNone(t + p.cred),
    realParent: toAt(t + p.realParent) + start,
    exitState: dv.getInt32(t + p.exitState, true),
    ppid: -1,
  });
  const head = initAt + p.tasks;
  return () => {
    const out: FloorTask[] = []; // like TaskScanner: the tasks after init_task
    for (let at = toAt(head); at !== head; ) {
      const task = at - p.tasks;
      out.push(fact(task));
      // Threads: signal->thread_head (6.7+) or the leader's own thread_group node.
      const threads = p.threadHead !== undefined ? toAt(task + p.signal) + p.threadHead : task + p.threadNode;
      for (let node = toAt(threads); node !== threads; node = toAt(node)) {
        const thread = node - p.threadNode;
        if (thread !== task) out.push(fact(thread));
      }
      at = toAt(task + p.tasks);
    }
    for (const t of out) t.ppid = t.realParent === t.pa ? 0 : dv.getInt32(t.realParent - start + p.tgid, true);
    return out;
  };
}
