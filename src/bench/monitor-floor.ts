/**
 * The floor for a task-list walk: a hand-written loop over the mapped guest image that follows the
 * `tasks` (and thread) links and reads a few fields, with no bounds, no cycle check, no anomalies and
 * no translation beyond direct-map arithmetic. Benchmark use only: on a hostile guest it could loop or
 * throw; it exists to say how far the monitor's bounded, typed TaskScanner is from the cost of the memory
 * reads themselves.
 */
import type { Kernel } from '../linux/kernel.js';
import { compileTaskPlan } from '../monitor/task-scan.js';
import { GuestView } from '../monitor/guest-view.js';

export interface FloorTask {
  pid: number;
  tgid: number;
  comm: string;
  startNs: number;
  parentLo: number;
  credLo: number;
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
  const initPa = initPhys - start;
  const headVa = p.initTask + BigInt(p.tasks);
  const headHi = Number(headVa >> 32n);
  const headLo = Number(headVa & 0xffffffffn);
  const toPa = (at: number): number => (dv.getUint32(at + 4, true) - baseHi) * 4294967296 + (dv.getUint32(at, true) - baseLo) - start;
  const comm = (at: number): string => {
    let s = '';
    for (let i = 0; i < 16; i++) {
      const c = dv.getUint8(at + i);
      if (!c) break;
      s += String.fromCharCode(c);
    }
    return s;
  };
  const fact = (t: number): FloorTask => ({
    pid: dv.getInt32(t + p.pid, true),
    tgid: dv.getInt32(t + p.tgid, true),
    comm: comm(t + p.comm),
    startNs: dv.getUint32(t + p.start + 4, true) * 4294967296 + dv.getUint32(t + p.start, true),
    parentLo: dv.getUint32(t + p.realParent, true),
    credLo: dv.getUint32(t + p.cred, true),
  });
  return () => {
    const out: FloorTask[] = []; // like TaskScanner: the tasks after init_task
    let at = initPa + p.tasks;
    for (;;) {
      if (dv.getUint32(at + 4, true) === headHi && dv.getUint32(at, true) === headLo) break;
      const task = toPa(at) - p.tasks;
      out.push(fact(task));
      // Threads: signal->thread_head (6.7+) or the leader's own thread_group node.
      const head = p.threadHead !== undefined ? toPa(task + p.signal) + p.threadHead : task + p.threadNode;
      let node = toPa(head);
      while (node !== head) {
        const thread = node - p.threadNode;
        if (thread !== task) out.push(fact(thread));
        node = toPa(node);
      }
      at = task + p.tasks;
    }
    return out;
  };
}
