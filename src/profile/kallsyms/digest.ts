/**
 * The digest the lab guest prints for its core-kernel /proc/kallsyms, computed
 * here from a decoded SymbolTable, so a test compares all symbols at once.
 *
 * Definition (shared with src/lab/ground-truth.ts, which computes the guest side):
 * sha256 over every core-kernel line exactly as /proc/kallsyms prints it,
 * `%016lx %c %s\n`, in /proc/kallsyms order (the kallsyms table order); module,
 * bpf, ftrace and kprobe lines (those with a tab) are left out. The kernel
 * skips entries with an empty name.
 */
import { crypto } from '../../core/builtins.js';
import type { SymbolTable } from '../symbols.js';

/** The core-kernel /proc/kallsyms lines of a table, in table order, each ending in '\n'. */
export function* procKallsymsLines(table: SymbolTable): IterableIterator<string> {
  for (let i = 0; i < table.count; i++) {
    if (table.moduleAt(i) !== undefined) continue;
    const name = table.nameAt(i);
    if (name.length === 0) continue;
    yield `${table.addressAt(i).toString(16).padStart(16, '0')} ${table.typeAt(i)} ${name}\n`;
  }
}

export interface KallsymsDigest {
  /** Lower-case hex sha256. */
  readonly sha256: string;
  readonly count: number;
}

/** sha256 + line count of the core-kernel /proc/kallsyms this table stands for. */
export function kallsymsDigest(table: SymbolTable): KallsymsDigest {
  const h = crypto().createHash('sha256');
  let count = 0;
  let batch = '';
  for (const line of procKallsymsLines(table)) {
    batch += line;
    count++;
    if (batch.length > 1 << 16) {
      h.update(batch, 'latin1');
      batch = '';
    }
  }
  h.update(batch, 'latin1');
  return { sha256: h.digest('hex'), count };
}
