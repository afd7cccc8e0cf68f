/**
 * `node --import tsx src/bench/memory-table.ts [DIR]`: the README's memory
 * table, printed as Markdown from one run's DIR/memory-live.json and
 * DIR/memory-snapshot.json (default bench-results). A cell the run did not
 * measure stays empty.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

type Row = Record<string, unknown>;

const n = (v: unknown, unit: string, digits = 2): string => {
  if (typeof v !== 'number' || !Number.isFinite(v)) return '';
  if (unit === 'reads') return v >= 1e6 ? `${+(v / 1e6).toPrecision(3)} M` : v >= 1e3 ? `${+(v / 1e3).toPrecision(3)} k` : `${Math.round(v)}`;
  if (unit === 'MB/s') return v >= 1000 ? `${+(v / 1000).toPrecision(3)} GB/s` : `${+v.toPrecision(3)} MB/s`;
  return `${+v.toPrecision(digits + 1)} ${unit}`;
};

export function memoryMarkdown(live: readonly Row[], snapshot: readonly Row[]): string {
  const head = '| technique | 8 B read | 4 KiB read | random 8 B reads/s | page-local 8 B reads/s | full scan | host CPU per MiB | notes |\n|---|---|---|---|---|---|---|---|';
  const line = (r: Row, extra = '') =>
    `| ${r['technique']} | ${n(r['read8Us'], 'µs')} | ${n(r['read4kUs'], 'µs')} | ${n(r['readsPerSec'], 'reads')} | ${n(r['localReadsPerSec'], 'reads')} | ${n(r['scanMBps'], 'MB/s')} | ${n(r['cpuMsPerMiB'], 'ms')} | ${String(r['note'] ?? '')}${extra} |`;
  const snap = snapshot.map((r) => line(r, typeof r['openMs'] === 'number' ? `; open ${r['openMs']} ms, refresh ${r['refreshMs']} ms` : ''));
  return [head, ...live.map((r) => line(r)), ...snap].join('\n');
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/^.*\//, ''))) {
  const dir = process.argv[2] ?? 'bench-results';
  const rows = (f: string): Row[] => (JSON.parse(readFileSync(join(dir, f), 'utf8')) as { rows: Row[] }).rows;
  const live = JSON.parse(readFileSync(join(dir, 'memory-live.json'), 'utf8')) as { date: string };
  process.stdout.write(`<!-- ${live.date} -->\n${memoryMarkdown(rows('memory-live.json'), rows('memory-snapshot.json'))}\n`);
}
