/**
 * Why optimistic validation fails under churn: runs validated passes on a
 * lab guest while the study's churn loop runs in it, and names what changed
 * under each failed run — the task_struct field (tasks the run listed), the
 * kernel symbol (image data), or "other" (slab objects we do not name) —
 * with how often retries fired and how many runs validated per plugin.
 *
 *   node --import tsx src/bench/tradeoffs/validation-probe.ts lab:NAME [passes] [retries] [strict]
 *
 * `strict` retries runs for changed values too (PassOptions.validate.strict); by default only changed links
 * retry, and changed values are counted per plugin.
 *
 * Prints one JSON document. A diagnostic, not part of the study's run.
 */
import { attachKernel, type AttachedKernel } from '../../linux/attach.js';
import { findGuest, useLabGuests } from '../../lab/index.js';
import type { TypeDb } from '../../profile/types.js';
import { LIGHT, workload } from './passes.js';
import { startChurn, stopChurn } from './study.js';

/** The member path at byte `off` of struct `name` (nested structs and unions followed; arrays by element). */
export function memberAt(types: TypeDb, name: string, off: number): string {
  let t = types.struct(name);
  let path = '';
  for (let depth = 0; depth < 8; depth++) {
    let found: { name: string; type: number; at: number } | undefined;
    for (const m of t.members) {
      const at = Math.floor(m.bitOffset / 8);
      const size = m.bitSize ? Math.ceil(m.bitSize / 8) : types.sizeOf(m.type);
      if (off >= at && off < at + Math.max(1, size)) {
        found = { name: m.name, type: m.type, at };
        break;
      }
    }
    if (!found) return `${path || name}+${off}`;
    path = path ? (found.name ? `${path}.${found.name}` : path) : found.name;
    off -= found.at;
    const r = types.resolve(found.type);
    if (r.kind !== 'struct' && r.kind !== 'union') return path;
    t = r;
  }
  return path;
}

interface Tally {
  runs: number;
  validated: number;
  retries: number;
  changedValues: number;
  where: Map<string, number>;
}

async function probe(kernel: AttachedKernel, passes: number, retries: number, strict: boolean): Promise<Record<string, unknown>> {
  const work = workload(LIGHT);
  const types = kernel.types;
  const taskSize = types.sizeOf(types.struct('task_struct').id);
  const tally = new Map<string, Tally>();
  let passesValidated = 0;
  for (let i = 0; i < passes; i++) {
    const pass = await kernel.pass({ validate: { retries, strict } });
    const tasks: bigint[] = [];
    for (const p of work) {
      const r = pass.run(p);
      if (p.name === 'pslist') for (const row of r.rows as { offset: bigint }[]) tasks.push(row.offset);
      const v = r.validation!;
      let t = tally.get(p.name);
      if (!t) tally.set(p.name, (t = { runs: 0, validated: 0, retries: 0, changedValues: 0, where: new Map() }));
      t.runs++;
      t.retries += v.retries;
      t.changedValues += v.changedValues;
      if (v.validated) t.validated++;
      for (const pa of v.changedAt ?? []) {
        const va = kernel.directMapBase + BigInt(pa);
        // The nearest task at or below: slab objects may be smaller than sizeof(task_struct) (x86's FPU state is sized at boot).
        let task: bigint | undefined;
        for (const a of tasks) if (a <= va && va < a + BigInt(taskSize) && (task === undefined || a > task)) task = a;
        const name = task !== undefined ? `task_struct.${memberAt(types, 'task_struct', Number(va - task))}` : describeImage(kernel, pa);
        t.where.set(name, (t.where.get(name) ?? 0) + 1);
      }
    }
    if (pass.end().validation?.validated) passesValidated++;
  }
  return {
    passes,
    retries,
    strict,
    passesValidated,
    plugins: Object.fromEntries(
      [...tally].map(([n, t]) => [n, { runs: t.runs, validated: t.validated, retriesPerRun: +(t.retries / t.runs).toFixed(3), changedValuesPerRun: +(t.changedValues / t.runs).toFixed(3), changed: Object.fromEntries([...t.where].sort((a, b) => b[1] - a[1]).slice(0, 12)) }]),
    ),
  };
}

/** A kernel-image symbol for a physical address (the image is mapped linearly from _text), else "other". */
function describeImage(kernel: AttachedKernel, pa: number): string {
  const text = kernel.symbols.tryAddress('_text');
  const end = kernel.symbols.tryAddress('_end');
  if (text === undefined || end === undefined) return 'other';
  const base = kernel.space.tryTranslate(text);
  if (!base) return 'other';
  const va = text + BigInt(pa - base.pa);
  if (va < text || va >= end) return 'other';
  return kernel.symbols.describe(va, 1n << 20n);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const source = process.argv[2] ?? 'lab:tradeoffs-6.1';
  const passes = Number(process.argv[3] ?? 40);
  const retries = Number(process.argv[4] ?? 2);
  const strict = process.argv[5] === 'strict';
  useLabGuests();
  const name = source.replace(/^lab:/, '').split('?')[0]!;
  const guest = findGuest(name);
  if (!guest) throw new Error(`no running lab guest ${name}`);
  const kernel = await attachKernel(`${source}${source.includes('?') ? '&' : '?'}technique=live-map`);
  const churn = await startChurn(guest);
  try {
    await new Promise((r) => setTimeout(r, 1000));
    console.log(JSON.stringify(await probe(kernel, passes, retries, strict), null, 1));
  } finally {
    await stopChurn(guest, churn);
    await kernel.close();
  }
}
