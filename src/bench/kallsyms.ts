/**
 * kallsyms benchmark: how long decoding the guest's symbol table takes by
 * each way in (vmcoreinfo addresses, pattern search in the kernel image,
 * pattern search over all RAM), what the first name lookup costs (the lazy
 * name index), and how much memory the SymbolTable holds.
 *
 * Run directly: `npx tsx src/bench/kallsyms.ts SOURCE [SOURCE...] [--runs N]`
 * where SOURCE is anything `openSource` takes (a lab guest name, an image
 * path, /dev/shm/NAME).
 */
import { pathToFileURL } from 'node:url';
import { openSource } from '../memory/open.js';
import type { PhysicalMemory } from '../memory/types.js';
import { type KallsymsInputs, type KernelVirtualReader, kallsymsDigest, loadKallsyms } from '../profile/kallsyms.js';
import { bootstrapKernelSpace } from '../profile/kernel-space.js';
import type { VmcoreInfo } from '../profile/vmcoreinfo.js';

export type KallsymsBenchMethod = 'vmcoreinfo' | 'search-image' | 'search-ram';

export interface KallsymsBenchRow {
  readonly label: string;
  readonly release: string;
  readonly method: KallsymsBenchMethod;
  readonly symbols: number;
  /** Wall-clock per decode (ms) over the runs. */
  readonly minMs: number;
  readonly medianMs: number;
  readonly maxMs: number;
  /** Building the name index on the first address(name) call. */
  readonly firstLookupMs: number;
  /** SymbolTable bytes (columns + indexes) once the name index exists. */
  readonly tableMiB: number;
  /** sha256 of the core /proc/kallsyms lines: equal across methods when they agree. */
  readonly sha256: string;
  readonly layout: string;
}

export interface KallsymsBenchOptions {
  readonly runs?: number;
  readonly label?: string;
  /** Page-table reader (AddressSpace); without it the vmcoreinfo path reads through the kernel-image map. */
  readonly space?: KernelVirtualReader;
  /** Which ways in to measure (default: every one that applies). */
  readonly methods?: readonly KallsymsBenchMethod[];
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

/** Measures each way in on one guest. A way that does not apply (5.10 has no vmcoreinfo addresses) is left out. */
export function benchKallsyms(mem: PhysicalMemory, vmcoreinfo: VmcoreInfo | undefined, options: KallsymsBenchOptions = {}): KallsymsBenchRow[] {
  const runs = Math.max(1, options.runs ?? 5);
  const label = options.label ?? mem.target;
  const methods = options.methods ?? ['vmcoreinfo', 'search-image', 'search-ram'];
  const rows: KallsymsBenchRow[] = [];
  for (const method of methods) {
    if (method === 'vmcoreinfo' && !vmcoreinfo?.kallsyms) continue;
    if (method === 'search-image' && vmcoreinfo?.physBase === undefined) continue;
    const inputs: KallsymsInputs = {
      mem,
      ...(options.space ? { space: options.space } : {}),
      ...(method === 'search-ram' || !vmcoreinfo ? {} : { vmcoreinfo }),
      forceSearch: method !== 'vmcoreinfo',
      target: label,
    };
    const times: number[] = [];
    let last: ReturnType<typeof loadKallsyms> | undefined;
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      last = loadKallsyms(inputs);
      times.push(performance.now() - t0);
    }
    const r = last!;
    const t1 = performance.now();
    r.table.tryAddress('init_task');
    const firstLookupMs = performance.now() - t1;
    rows.push({
      label,
      release: vmcoreinfo?.release ?? '?',
      method,
      symbols: r.table.count,
      minMs: Math.min(...times),
      medianMs: median(times),
      maxMs: Math.max(...times),
      firstLookupMs,
      tableMiB: r.table.byteSize() / (1 << 20),
      sha256: kallsymsDigest(r.table).sha256,
      layout: `${r.layout.order}/${r.layout.addressing}${r.layout.seqsOfNames ? '+seqs' : ''}`,
    });
  }
  return rows;
}

/** Opens a source, finds its kernel, and benchmarks kallsyms on it. */
export async function benchKallsymsSource(spec: string, options: KallsymsBenchOptions = {}): Promise<KallsymsBenchRow[]> {
  const { memory } = await openSource(spec);
  try {
    const ks = await bootstrapKernelSpace(memory);
    return benchKallsyms(memory, ks.vmcoreinfo, { label: spec, ...options });
  } finally {
    await memory.close();
  }
}

export function formatKallsymsBench(rows: readonly KallsymsBenchRow[]): string {
  const head = ['source', 'release', 'method', 'symbols', 'min ms', 'median ms', 'max ms', 'first lookup ms', 'table MiB', 'layout', 'sha256'];
  const body = rows.map((r) => [
    r.label,
    r.release,
    r.method,
    String(r.symbols),
    r.minMs.toFixed(1),
    r.medianMs.toFixed(1),
    r.maxMs.toFixed(1),
    r.firstLookupMs.toFixed(1),
    r.tableMiB.toFixed(1),
    r.layout,
    r.sha256.slice(0, 12),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  return [head, ...body].map((row) => row.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const args = process.argv.slice(2);
  const runsAt = args.indexOf('--runs');
  const runs = runsAt >= 0 ? Number(args[runsAt + 1]) : 5;
  const specs = args.filter((_, i) => i !== runsAt && i !== runsAt + 1);
  if (!specs.length) {
    process.stderr.write('usage: npx tsx src/bench/kallsyms.ts SOURCE [SOURCE...] [--runs N]\n');
    process.exit(2);
  }
  const rows: KallsymsBenchRow[] = [];
  for (const spec of specs) {
    try {
      rows.push(...(await benchKallsymsSource(spec, { runs })));
    } catch (e) {
      process.stderr.write(`${spec}: ${e instanceof Error ? e.message : String(e)}\n`);
    }
  }
  process.stdout.write(formatKallsymsBench(rows) + '\n');
}
