/**
 * bash's readline history, recovered from a copy of its heap: with
 * HISTTIMEFORMAT set, every history entry (readline's `HIST_ENTRY` {
 * char *line; char *timestamp; histdata_t data; }) has a timestamp string
 * "#<seconds since the epoch>". Such strings are found first; then every
 * aligned heap word pointing at one is the `timestamp` member of an entry,
 * whose `line` is the word before it. Both pointers must lie in the heap,
 * strings are bounded, and nothing read is trusted beyond that. Entries of
 * one second are ordered by where readline's history array lists them.
 */

/** Longest command line kept (bash has no limit; the heap is guest data). */
export const MAX_HISTORY_LINE = 4096;

export interface HistoryEntry {
  /** Address of the HIST_ENTRY. */
  readonly address: bigint;
  /** Seconds since the epoch, from the "#<digits>" string. */
  readonly time: bigint;
  readonly command: string;
}

/** The NUL-terminated string at `off` of `heap`, bounded; undefined without a NUL in bounds. */
function cstringAt(heap: Uint8Array, off: number, max: number): string | undefined {
  const end = heap.indexOf(0, off);
  if (end < 0 || end - off > max) return undefined;
  return Buffer.from(heap.buffer, heap.byteOffset + off, end - off).toString('utf8');
}

/**
 * History entries in a heap image that starts at guest-virtual `base`, in time order (ties in heap order).
 * @param heap the heap's bytes (zeros where unreadable)
 */
export function scanBashHistory(heap: Uint8Array, base: bigint): HistoryEntry[] {
  const end = base + BigInt(heap.length);
  // 1. "#<1..19 digits>\0" strings, by address.
  const stamps = new Map<bigint, bigint>();
  for (let i = heap.indexOf(0x23); i >= 0 && i < heap.length; i = heap.indexOf(0x23, i + 1)) {
    let j = i + 1;
    while (j < heap.length && j - i <= 19 && heap[j]! >= 0x30 && heap[j]! <= 0x39) j++;
    if (j > i + 1 && j < heap.length && heap[j] === 0) stamps.set(base + BigInt(i), BigInt(Buffer.from(heap.subarray(i + 1, j)).toString('latin1')));
  }
  if (stamps.size === 0) return [];
  // 2. Aligned words pointing at a stamp: HIST_ENTRY.timestamp; the word before is HIST_ENTRY.line.
  const dv = new DataView(heap.buffer, heap.byteOffset, heap.byteLength);
  const align = Number((8n - (base % 8n)) % 8n);
  const out: HistoryEntry[] = [];
  for (let off = align + 8; off + 8 <= heap.length; off += 8) {
    const p = dv.getBigUint64(off, true);
    const time = stamps.get(p);
    if (time === undefined) continue;
    const line = dv.getBigUint64(off - 8, true);
    if (line < base || line >= end) continue;
    const command = cstringAt(heap, Number(line - base), MAX_HISTORY_LINE);
    if (command === undefined || command.length === 0) continue;
    out.push({ address: base + BigInt(off - 8), time, command });
  }
  // 3. Entries with the same second keep history order: their place in readline's history array
  //    (the_history, an array of HIST_ENTRY pointers on the heap), else heap order.
  const slot = new Map<bigint, number>();
  const wanted = new Set(out.map((e) => e.address));
  for (let off = align; off + 8 <= heap.length; off += 8) {
    const p = dv.getBigUint64(off, true);
    if (wanted.has(p) && !slot.has(p)) slot.set(p, off);
  }
  const rank = (e: HistoryEntry) => slot.get(e.address) ?? Number.MAX_SAFE_INTEGER;
  return out.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : rank(a) - rank(b) || (a.address < b.address ? -1 : 1)));
}
