/**
 * A small kallsyms encoder for tests: turns a symbol list into the tables
 * scripts/kallsyms would emit (token table, compressed names, markers,
 * seqs_of_names, offsets or addresses, relative_base) in any of the layouts
 * real kernels use, placed inside filler bytes.
 */
import type { KallsymsAddresses } from '../../../src/profile/vmcoreinfo.js';
import { strict as assert } from 'node:assert';
import { seededRandom as rng } from '../../../src/core/random.js';

export interface SynthSymbol {
  name: string;
  type: string;
  address: bigint;
}

export type SynthOrder = 'classic' | 'classic+seqs' | 'names-first';
export type SynthAddressing = 'absolute-percpu' | 'relative' | 'absolute';

export interface SynthOptions {
  order: SynthOrder;
  addressing: SynthAddressing;
  /** Label alignment (ALGN, every label): 8 (upstream 64-bit) or 4. */
  align?: 4 | 8;
  /** Random filler before and after the tables. */
  before?: number;
  after?: number;
  seed?: number;
}

export interface SynthTables {
  bytes: Uint8Array;
  /** Offsets of each table in `bytes`. */
  at: {
    numSyms: number;
    names: number;
    markers: number;
    seqs?: number;
    tokenTable: number;
    tokenIndex: number;
    addressTable: number;
    relativeBase?: number;
  };
  relativeBase: bigint;
  symbols: SynthSymbol[];
  /** Entries written with the two-byte length form (compressed length >= 128). */
  bigEntries: number;
}

/** Deterministic PRNG (core/random.ts), re-exported for the kallsyms tests. */
export { rng };

const PARTS = ['sys_', 'do_', 'vfs_', 'read', 'write', 'init', 'task', 'mm', '_lock', '_unlock', 'page', 'net', 'sock', 'irq', 'kmalloc', 'cache', 'ext4_', 'bpf_', 'tcp_', 'v4', 'v6', '_rcu', 'free', 'alloc', 'x86_', 'cpu', 'sched_', 'fair', 'file', 'inode'];

/**
 * A kernel-like symbol list: per-cpu 'A' symbols at small addresses, then
 * `_text` at `text` and `count` text/data symbols above it, sorted by address.
 * `longNames` adds names of 130–300 characters (6.1+ "big symbol" encoding).
 */
export function kernelLikeSymbols(count: number, text: bigint, seed = 1, longNames = 0): SynthSymbol[] {
  const r = rng(seed);
  const out: SynthSymbol[] = [
    { name: 'fixed_percpu_data', type: 'A', address: 0n },
    { name: '__per_cpu_start', type: 'A', address: 0n },
    { name: 'cpu_debug_store', type: 'A', address: 0x1000n },
    { name: 'irq_stack_backing_store', type: 'A', address: 0x6000n },
    { name: '__per_cpu_end', type: 'A', address: 0x34000n },
    { name: 'startup_64', type: 'T', address: text },
    { name: '_text', type: 'T', address: text },
  ];
  let addr = text;
  const types = ['T', 't', 't', 'T', 'D', 'd', 'b', 'R', 'r', 'W'];
  const seen = new Map<string, number>();
  for (let i = 0; i < count; i++) {
    addr += BigInt(1 + Math.floor(r() * 0x200));
    let name = '';
    const parts = 1 + Math.floor(r() * 4);
    for (let k = 0; k < parts; k++) name += PARTS[Math.floor(r() * PARTS.length)]!;
    // Static symbols repeat in real kernels; keep some duplicates, number the rest.
    const n = seen.get(name) ?? 0;
    seen.set(name, n + 1);
    if (n > 0 && r() < 0.8) name += `_${n}`;
    if (i < longNames) {
      const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789_';
      name = `long_${i}_`;
      const len = 130 + Math.floor(r() * 170);
      while (name.length < len) name += alphabet[Math.floor(r() * alphabet.length)];
    }
    out.push({ name, type: types[Math.floor(r() * types.length)]!, address: addr });
  }
  out.push({ name: '_etext', type: 'T', address: addr + 0x10n });
  return out;
}

/** Builds 256 tokens: every used character as itself, the rest frequent substrings (like scripts/kallsyms). */
function buildTokens(texts: string[]): string[] {
  const tokens: (string | undefined)[] = new Array(256).fill(undefined);
  for (const t of texts) for (const ch of t) tokens[ch.charCodeAt(0)] = ch;
  const counts = new Map<string, number>();
  for (const t of texts.slice(0, 4000))
    for (let len = 2; len <= 6; len++) for (let i = 0; i + len <= t.length; i++) counts.set(t.slice(i, i + len), (counts.get(t.slice(i, i + len)) ?? 0) + len - 1);
  const ranked = [...counts.entries()].sort((a, b) => b[1] - a[1]).map(([s]) => s);
  let next = 0;
  for (let b = 1; b < 256; b++) {
    if (tokens[b] !== undefined) continue;
    tokens[b] = ranked[next++] ?? `~${b}`;
  }
  tokens[0] = tokens[0] ?? ranked[next++] ?? '~0';
  return tokens as string[];
}

/** Greedy longest-match encoding of one expanded name. */
function encodeName(text: string, byToken: Map<string, number>, maxLen: number): number[] {
  const out: number[] = [];
  let i = 0;
  while (i < text.length) {
    let done = false;
    for (let len = Math.min(maxLen, text.length - i); len >= 1; len--) {
      const id = byToken.get(text.slice(i, i + len));
      if (id !== undefined) {
        out.push(id);
        i += len;
        done = true;
        break;
      }
    }
    assert.ok(done, `cannot encode ${text}`);
  }
  return out;
}

class Writer {
  buf = new Uint8Array(1 << 16);
  len = 0;
  ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length;
    while (size < this.len + n) size *= 2;
    const b = new Uint8Array(size);
    b.set(this.buf.subarray(0, this.len));
    this.buf = b;
  }
  align(a: number): number {
    while (this.len % a) this.u8(0);
    return this.len;
  }
  u8(v: number): void {
    this.ensure(1);
    this.buf[this.len++] = v & 0xff;
  }
  bytes(b: ArrayLike<number>): void {
    this.ensure(b.length);
    for (let i = 0; i < b.length; i++) this.buf[this.len++] = b[i]! & 0xff;
  }
  u16(v: number): void {
    this.u8(v);
    this.u8(v >>> 8);
  }
  u32(v: number): void {
    this.u16(v & 0xffff);
    this.u16((v >>> 16) & 0xffff);
  }
  u64(v: bigint): void {
    const x = BigInt.asUintN(64, v);
    this.u32(Number(x & 0xffffffffn));
    this.u32(Number(x >> 32n));
  }
  noise(n: number, r: () => number): void {
    for (let i = 0; i < n; i++) this.u8(Math.floor(r() * 256));
  }
}

/** Encodes the tables for `symbols` (sorted by address, `_text` among them). */
export function synthKallsyms(symbols: SynthSymbol[], o: SynthOptions): SynthTables {
  const align = o.align ?? 8;
  const r = rng(o.seed ?? 7);
  const texts = symbols.map((s) => s.type + s.name);
  const tokens = buildTokens(texts);
  const byToken = new Map<string, number>();
  tokens.forEach((t, i) => {
    if (!byToken.has(t)) byToken.set(t, i);
  });
  const maxTok = Math.max(...tokens.map((t) => t.length));
  const text = symbols.find((s) => s.name === '_text')?.address ?? 0n;
  const relativeBase = o.addressing === 'absolute' ? 0n : text;

  const w = new Writer();
  w.noise(o.before ?? 4096, r);
  const at: Partial<SynthTables['at']> = {};

  const writeAddresses = (): void => {
    at.addressTable = w.align(align);
    for (const s of symbols) {
      if (o.addressing === 'absolute') w.u64(s.address);
      else if (o.addressing === 'relative') w.u32(Number(s.address - relativeBase));
      else if (s.type === 'A') w.u32(Number(s.address));
      else w.u32(Number(BigInt.asIntN(32, relativeBase - 1n - s.address)) >>> 0);
    }
    if (o.addressing !== 'absolute') {
      // Every label takes the same ALGN in scripts/kallsyms, relative_base too: with align 8 and an
      // odd symbol count, 4 bytes of padding follow the offsets.
      at.relativeBase = w.align(align);
      w.u64(relativeBase);
    }
  };
  const writeSeqs = (): void => {
    at.seqs = w.align(align);
    const order = symbols.map((_, i) => i).sort((a, b) => (symbols[a]!.name < symbols[b]!.name ? -1 : symbols[a]!.name > symbols[b]!.name ? 1 : a - b));
    for (const i of order) w.bytes([(i >>> 16) & 0xff, (i >>> 8) & 0xff, i & 0xff]);
  };

  if (o.order !== 'names-first') writeAddresses();
  at.numSyms = w.align(align);
  w.u32(symbols.length);
  at.names = w.align(align);
  const markers: number[] = [];
  let bigEntries = 0;
  for (let i = 0; i < texts.length; i++) {
    if ((i & 0xff) === 0) markers.push(w.len - at.names);
    const enc = encodeName(texts[i]!, byToken, maxTok);
    if (enc.length >= 0x80) {
      bigEntries++;
      w.u8(0x80 | (enc.length & 0x7f));
      w.u8(enc.length >>> 7);
    } else w.u8(enc.length);
    w.bytes(enc);
  }
  at.markers = w.align(align);
  for (const m of markers) w.u32(m);
  if (o.order === 'classic+seqs') writeSeqs();
  at.tokenTable = w.align(align);
  const index: number[] = [];
  for (const t of tokens) {
    index.push(w.len - at.tokenTable);
    w.bytes([...t].map((c) => c.charCodeAt(0)));
    w.u8(0);
  }
  at.tokenIndex = w.align(align);
  for (const v of index) w.u16(v);
  if (o.order === 'names-first') {
    writeAddresses();
    writeSeqs();
  }
  w.noise(o.after ?? 4096, r);
  return { bytes: w.buf.slice(0, w.len), at: at as SynthTables['at'], relativeBase, symbols, bigEntries };
}

/** The /proc/kallsyms core lines the symbols stand for (the digest input). */
export function expectedLines(symbols: SynthSymbol[]): string {
  return symbols.map((s) => `${s.address.toString(16).padStart(16, '0')} ${s.type} ${s.name}\n`).join('');
}

/** The vmcoreinfo-style addresses of relative (offsets + relative_base) tables loaded at kernel VA `base`. */
export function relativeTableAddresses(t: SynthTables, base: bigint): KallsymsAddresses {
  const va = (off: number) => base + BigInt(off);
  return {
    names: va(t.at.names),
    numSyms: va(t.at.numSyms),
    tokenTable: va(t.at.tokenTable),
    tokenIndex: va(t.at.tokenIndex),
    offsets: va(t.at.addressTable),
    relativeBase: va(t.at.relativeBase!),
  };
}
