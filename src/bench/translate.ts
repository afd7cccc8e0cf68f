/**
 * Translation benchmark: the kernel-space bootstrap (vmcoreinfo search, DTB
 * and KASLR, banner), page walks per second with a cold cache (every VA a
 * miss) and a warm one, batched walks, and virtual reads per second (u64,
 * 4 KiB zero-copy views, batched 64-byte reads).
 *
 * `npm run bench -- translate [--source SPEC]`, or directly:
 * `npx tsx src/bench/translate.ts SOURCE [SOURCE...]` (anything openSource takes).
 */
import { pathToFileURL } from 'node:url';
import { seededRandom } from '../core/random.js';
import { openSource } from '../memory/open.js';
import type { PhysicalMemory } from '../memory/types.js';
import { AddressSpace } from '../arch/address-space.js';
import { findVmcoreinfo } from '../profile/vmcoreinfo.js';
import { bootstrapKernelSpace } from '../profile/kernel-space.js';
import { median, printTable, type BenchTable } from './report.js';
import { type GuestVirtAddr, gva } from '../core/address.js';

export interface TranslateBenchRow {
  readonly source: string;
  readonly technique: string;
  readonly paging: string;
  /** First bootstrap in this process (cold mappings, cold JIT) and the median of later ones (ms). */
  readonly bootstrapColdMs: number;
  readonly bootstrapWarmMs: number;
  /** vmcoreinfo search alone: page-aligned probes of all RAM, and every byte (ms, warm). */
  readonly vmcoreinfoAlignedMs: number;
  readonly vmcoreinfoFullMs: number;
  /** Distinct 4 KiB pages translated. */
  readonly pages: number;
  readonly coldWalksPerSec: number;
  readonly batchedColdWalksPerSec: number;
  readonly warmTranslationsPerSec: number;
  /** readU64 at random VAs over all sampled pages (memory-bound: TLB and cache misses). */
  readonly u64ReadsPerSec: number;
  /** readU64 over 64 hot pages (the code's own cost). */
  readonly u64HotReadsPerSec: number;
  readonly pageViewsPerSec: number;
  /** readv of 1000 × 64 B at random kernel VAs, per op. */
  readonly batchedReadsPerSec: number;
}

function rate(count: number, ms: number): number {
  return Math.round((count / ms) * 1000);
}

/** Up to `max` VAs of distinct 4 KiB pages spread over the kernel half's present mappings. */
function samplePages(space: AddressSpace, max: number): GuestVirtAddr[] {
  // RAM only: the kernel also maps device memory (ioremap) that no source can read.
  const ram = space.mem.ranges();
  const maps = [...space.mappings({ start: space.kernelHalfStart, limit: 500_000 })].filter((m) =>
    ram.some((r) => m.pa >= r.start && m.pa + m.size <= r.end),
  );
  const pages: GuestVirtAddr[] = [];
  for (const m of maps) for (let off = 0; off < m.size && pages.length < max * 4; off += 4096) pages.push(gva(m.va + BigInt(off)));
  const r = seededRandom(42);
  for (let i = pages.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [pages[i], pages[j]] = [pages[j]!, pages[i]!];
  }
  return pages.slice(0, max);
}

export async function benchTranslateMemory(mem: PhysicalMemory, label: string, technique: string): Promise<TranslateBenchRow> {
  let t = performance.now();
  const ks = await bootstrapKernelSpace(mem);
  const bootstrapColdMs = performance.now() - t;
  const warm: number[] = [];
  for (let i = 0; i < 5; i++) {
    t = performance.now();
    await bootstrapKernelSpace(mem);
    warm.push(performance.now() - t);
  }
  const aligned = findVmcoreinfo(mem, { strategy: 'aligned' }).ms;
  const full = findVmcoreinfo(mem, { strategy: 'full' }).ms;

  const pages = samplePages(ks.space, 50_000);
  const cold = new AddressSpace(mem, ks.dtb, ks.mode);
  t = performance.now();
  for (const va of pages) cold.physical(gva(va + 8n));
  const coldMs = performance.now() - t;
  t = performance.now();
  let warmOps = 0;
  for (let rep = 0; rep < 5; rep++) for (const va of pages) (cold.physical(gva(va)), warmOps++);
  const warmMs = performance.now() - t;
  const batched = new AddressSpace(mem, ks.dtb, ks.mode);
  t = performance.now();
  for (let i = 0; i < pages.length; i += 4096) batched.translateMany(pages.slice(i, i + 4096));
  const batchedMs = performance.now() - t;

  const r = seededRandom(7);
  const targets = Array.from({ length: 200_000 }, () => pages[Math.floor(r() * pages.length)]! + BigInt(Math.floor(r() * 510) * 8));
  let sink = 0n;
  t = performance.now();
  for (const va of targets) sink ^= cold.readU64(va);
  const u64Ms = performance.now() - t;
  // The same reads over 64 pages: what the code costs when memory is in cache.
  const hot = Array.from({ length: 200_000 }, (_, i) => pages[i % 64]! + BigInt(((i * 37) % 510) * 8));
  for (const va of hot.slice(0, 1000)) sink ^= cold.readU64(va);
  t = performance.now();
  for (const va of hot) sink ^= cold.readU64(va);
  const u64HotMs = performance.now() - t;
  t = performance.now();
  let views = 0;
  for (let i = 0; i < 50_000; i++) views += cold.read(pages[i % pages.length]!, 4096).length;
  const viewMs = performance.now() - t;
  const ops = targets.slice(0, 1000).map((va) => ({ va: gva(va), len: 64 }));
  t = performance.now();
  let batches = 0;
  while (performance.now() - t < 300) {
    for (const op of ops) delete (op as { dst?: Uint8Array }).dst;
    cold.readv(ops);
    batches++;
  }
  const readvMs = performance.now() - t;
  void sink;
  void views;
  return {
    source: label,
    technique,
    paging: `${ks.levels}-level`,
    bootstrapColdMs: Math.round(bootstrapColdMs * 10) / 10,
    bootstrapWarmMs: Math.round(median(warm) * 10) / 10,
    vmcoreinfoAlignedMs: Math.round(aligned * 10) / 10,
    vmcoreinfoFullMs: Math.round(full * 10) / 10,
    pages: pages.length,
    coldWalksPerSec: rate(pages.length, coldMs),
    batchedColdWalksPerSec: rate(pages.length, batchedMs),
    warmTranslationsPerSec: rate(warmOps, warmMs),
    u64ReadsPerSec: rate(targets.length, u64Ms),
    u64HotReadsPerSec: rate(hot.length, u64HotMs),
    pageViewsPerSec: rate(50_000, viewMs),
    batchedReadsPerSec: rate(batches * ops.length, readvMs),
  };
}

const COLUMNS = [
  'source',
  'technique',
  'paging',
  'bootstrapColdMs',
  'bootstrapWarmMs',
  'vmcoreinfoAlignedMs',
  'vmcoreinfoFullMs',
  'pages',
  'coldWalksPerSec',
  'batchedColdWalksPerSec',
  'warmTranslationsPerSec',
  'u64ReadsPerSec',
  'u64HotReadsPerSec',
  'pageViewsPerSec',
  'batchedReadsPerSec',
];

/** The suite entry point: one row per source (each opened with the technique openSource picks). */
export async function benchTranslate(...sources: string[]): Promise<BenchTable[]> {
  const rows: TranslateBenchRow[] = [];
  for (const spec of sources) {
    const { memory, chosen } = await openSource(spec);
    try {
      rows.push(await benchTranslateMemory(memory, spec, `${chosen.class} (${chosen.factory})`));
    } finally {
      await memory.close();
    }
  }
  return [
    {
      name: 'translate',
      description: 'kernel-space bootstrap, page walks (cold/warm/batched) and virtual reads per second',
      columns: COLUMNS,
      rows: rows as unknown as Record<string, unknown>[],
    },
  ];
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const sources = process.argv.slice(2);
  if (!sources.length) {
    process.stderr.write('usage: npx tsx src/bench/translate.ts SOURCE [SOURCE...]\n');
    process.exit(2);
  }
  for (const t of await benchTranslate(...sources)) printTable(t);
}
