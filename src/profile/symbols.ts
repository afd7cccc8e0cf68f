/**
 * SymbolTable: the kernel's symbols (name, address, type letter, module) in a
 * compact columnar form. 167k symbols cost a few MB: all names live in one
 * Latin-1 string with a start-offset column, addresses in a BigUint64Array,
 * and name lookup goes through an open-addressing hash over indices instead
 * of a Map of 167k strings.
 *
 * Two orders matter: table order (the order the source listed them, which for
 * kallsyms is /proc/kallsyms order) and address order (for nameOf / iteration).
 *
 * Longer than ~400 lines on purpose: SymbolTable is one columnar store: its
 * hash index, address order and lookups share the column invariants (about 400
 * lines of the class alone).
 */
import { ProfileError } from '../core/errors.js';
import { type GuestVirtAddr, gva } from '../core/address.js';

export interface KernelSymbol {
  readonly name: string;
  /** A kernel virtual address. */
  readonly address: GuestVirtAddr;
  /** nm-style type letter: 'T' global text, 't' local text, 'D', 'd', 'B', 'R', 'A', 'W', … */
  readonly type: string;
  /** Module name; undefined for the core kernel. */
  readonly module?: string;
}

export interface SymbolAt {
  readonly name: string;
  /** va - symbol address. */
  readonly offset: bigint;
  readonly symbol: KernelSymbol;
}

/** The column form a decoder hands over; `build()` of SymbolTableBuilder produces it too. */
export interface SymbolColumns {
  /** All names concatenated (Latin-1 / one byte per char). */
  readonly names: string;
  /** The same names as Latin-1 bytes, when the producer has them (hashing bytes is faster). */
  readonly nameBytes?: Uint8Array;
  /** Start of name i in `names`; length count+1 (the last entry is names.length). */
  readonly nameStarts: Uint32Array;
  readonly addresses: BigUint64Array;
  /** Type letter char codes. */
  readonly types: Uint8Array;
  /** nameHash() of each name, when the producer computed them (saves a pass when indexing). */
  readonly hashes?: Uint32Array;
  /** Index into `moduleNames` plus one; 0 = core kernel. Absent: all core. */
  readonly modules?: Uint16Array;
  readonly moduleNames?: readonly string[];
  /** True when the producer found the addresses in ascending order (kallsyms counts their inversions anyway): no second check. */
  readonly sorted?: boolean;
}

/**
 * Names a producer can decode one at a time (kallsyms keeps them compressed):
 * where each name will lie is known up front, the names themselves are
 * decoded only when asked for, or all at once when the table must have them.
 */
export interface DeferredNames {
  readonly count: number;
  /** Start of name i in the all-names string once decoded; length count+1. */
  readonly nameStarts: Uint32Array;
  nameAt(i: number): string;
  /** True when name i is exactly `name` (decoded only as far as they agree). */
  nameIs(i: number, name: string): boolean;
  /** The first character of each name (0 for an empty one), when known without decoding: scans skip the others. */
  readonly firstChars?: Uint8Array;
  /** The names grouped for by-name scans, when the producer made the groups in its pass. */
  readonly scanChains?: ScanChains;
  /** Every name decoded: the `names` and `nameBytes` columns, and `hashes` when the decoder made them (else the table hashes on first need). */
  decodeAll(): { names: string; nameBytes: Uint8Array; hashes?: Uint32Array };
}

/** SymbolColumns whose names are not decoded yet. */
export type DeferredColumns = Omit<SymbolColumns, 'names' | 'nameBytes' | 'hashes' | 'nameStarts'> & { readonly deferred: DeferredNames };

/**
 * By-name lookups a table answers by scanning (a length and first-character
 * compare per symbol, then tokens or characters for the few left) before it
 * builds the hash index (tens of ms; deferred names are decoded first): a
 * cold run looks up a few dozen names; a long session, thousands.
 */
export const DEFERRED_LOOKUPS = 256;

/** Names decoded one by one (nameOf, at) before a table with deferred names decodes them all in one pass. */
export const DEFERRED_SINGLES = 4096;

const EMPTY = 0xffffffff;

/** Groups of entries a by-name scan reads: first character × length (exact for names under 64 characters). */
export const SCAN_BUCKETS = 1 << 14;

/** The group of a name by its first character (0 for an empty name) and length. */
export function scanBucket(firstChar: number, length: number): number {
  return ((firstChar & 0xff) << 6) | (length & 63);
}

/**
 * Entries grouped by scanBucket(), as a producer that visits every name anyway can make them in its pass:
 * `heads[bucket]` is the highest entry of that group (-1 for none), `next[i]` the next lower one (-1 at the
 * end). A scan follows only its name's chain; it checks every name it visits, so a wrong chain can cost
 * misses but never a wrong answer.
 */
export interface ScanChains {
  readonly heads: Int32Array;
  readonly next: Int32Array;
}

/**
 * The name index of a table: open-addressing slots (a power of two, at least
 * twice the count) holding one table index per distinct name, and for each
 * symbol the next one (higher table index) of the same name. Independent of
 * addresses, so a KASLR-shifted table and the on-disk cache reuse it.
 */
export interface SymbolIndex {
  readonly slots: Uint32Array;
  readonly sameName: Uint32Array;
}

/** x86-64 kernel image map [__START_KERNEL_map, + KERNEL_IMAGE_SIZE 1 GiB): what a KASLR shift moves. */
export const KERNEL_IMAGE_MAP: readonly [bigint, bigint] = [0xffffffff80000000n, 0xffffffffc0000000n];

/** 32-bit FNV-1a over the char codes of s[start, end). */
export function hashRange(s: string, start: number, end: number): number {
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** The same hash over bytes b[start, end) (equal for Latin-1 text). */
export function hashBytes(b: Uint8Array, start: number, end: number): number {
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) h = Math.imul(h ^ b[i]!, 0x01000193);
  return h >>> 0;
}

function isGlobalType(code: number): boolean {
  return code >= 0x41 && code <= 0x5a; // 'A'..'Z'
}

export class SymbolTable {
  /** Where the symbols came from, e.g. 'kallsyms:memory (vmcoreinfo addresses)' or 'System.map:/path'. */
  readonly source: string;
  /** All names, once decoded (see #names). */
  #namesText: string | undefined;
  /** Names not decoded yet, and how many lookups scanned them. */
  #deferred: DeferredNames | undefined;
  #scans = 0;
  /** The producer's grouping of entries by scanBucket(), when it made one and it has the table's shape. */
  readonly #chains: ScanChains | undefined;
  /** Answers of the scans so far, by name: a name asked for again costs nothing (check_syscall asks for some 40, a few of them many times). */
  readonly #scanned = new Map<string, number[]>();
  /** Names decoded one at a time; past DEFERRED_SINGLES the table decodes them all (a listing). */
  #singles = 0;
  readonly #starts: Uint32Array;
  readonly #addrs: BigUint64Array;
  readonly #types: Uint8Array;
  readonly #modules: Uint16Array | undefined;
  readonly #moduleNames: readonly string[];
  /** True when the table is already in address order (kallsyms, System.map): no permutation needed. Found on first use. */
  #sortedFlag: boolean | undefined;
  /** Table indices sorted by (address, table index); built on first use when the table is unsorted. */
  #byAddr: Uint32Array | undefined;
  /** Addresses in address order (a copy when unsorted, so the binary search reads one array). */
  #sortedAddrs: BigUint64Array | undefined;
  /** The same addresses as 32-bit halves (little-endian hosts), for nameOf's search. */
  #sortedHalves: Uint32Array | undefined;
  #nameBytes: Uint8Array | undefined;
  #hashes: Uint32Array | undefined;
  /** Hash slots: table index of one symbol per distinct name, or EMPTY (built lazily). */
  #slots: Uint32Array | undefined;
  /** Next symbol (table index) with the same name, or EMPTY. */
  #sameName: Uint32Array | undefined;

  /**
   * `index` is a name index made earlier for the same names (the cache, or
   * the unshifted table); it is checked for shape and bounds, and lookups
   * compare names, so a bad one can cost misses but never wrong answers.
   */
  constructor(columns: SymbolColumns | DeferredColumns, source: string, index?: SymbolIndex) {
    const n = columns.addresses.length;
    const deferred = 'deferred' in columns ? columns.deferred : undefined;
    const nameStarts = deferred ? deferred.nameStarts : (columns as SymbolColumns).nameStarts;
    if (nameStarts.length !== n + 1 || columns.types.length !== n || (columns.modules && columns.modules.length !== n) || (deferred && deferred.count !== n))
      throw new ProfileError(`symbol columns from ${source} disagree in length (${n} addresses)`);
    const full = deferred ? undefined : (columns as SymbolColumns);
    if (full && nameStarts[n] !== full.names.length)
      throw new ProfileError(`symbol columns from ${source}: the last name ends at ${nameStarts[n]}, the names are ${full.names.length} chars`);
    this.source = source;
    this.#namesText = full?.names;
    this.#deferred = deferred;
    const chains = deferred?.scanChains;
    this.#chains = chains && chains.heads.length === SCAN_BUCKETS && chains.next.length === n ? chains : undefined;
    this.#starts = nameStarts;
    this.#addrs = columns.addresses;
    if (columns.sorted === true) this.#sortedFlag = true;
    this.#types = columns.types;
    this.#modules = columns.modules;
    this.#moduleNames = columns.moduleNames ?? [];
    this.#nameBytes = full?.nameBytes?.length === full?.names.length ? full?.nameBytes : undefined;
    this.#hashes = full?.hashes?.length === n ? full?.hashes : undefined;
    // Only the shape is checked here (O(1)): lookups bound their probes and chains and compare names.
    if (index && indexShapeFits(index, n)) {
      this.#slots = index.slots;
      this.#sameName = index.sameName;
    }
  }

  /** All names in one string: decodes deferred names on first use. */
  get #names(): string {
    if (this.#namesText !== undefined) return this.#namesText;
    const all = this.#deferred!.decodeAll();
    this.#nameBytes = all.nameBytes.length === all.names.length ? all.nameBytes : undefined;
    this.#hashes = all.hashes?.length === this.count ? all.hashes : undefined;
    this.#deferred = undefined;
    return (this.#namesText = all.names);
  }

  /**
   * Table indices named `name` found by scanning, or undefined once the index should answer: while no index
   * is built, the first DEFERRED_LOOKUPS distinct names are scanned, over deferred names (tokens compared)
   * or decoded ones (a listing that decoded every name and then looks up a few more does not build the index).
   */
  #scan(name: string): number[] | undefined {
    if (this.#slots) return undefined;
    const known = this.#scanned.get(name);
    if (known) return known;
    if (++this.#scans > DEFERRED_LOOKUPS) return undefined;
    const out: number[] = [];
    const starts = this.#starts;
    const len = name.length;
    const n = this.count;
    const c0 = len > 0 ? name.charCodeAt(0) : 0;
    const d = this.#deferred;
    const first = d ? (d.firstChars?.length === n ? d.firstChars : undefined) : undefined;
    const chains = this.#chains;
    if (chains) {
      // Only the entries of the name's (first character, length) group. A chain that does not run down ends
      // there, so every walk ends.
      const { heads, next } = chains;
      for (let i = heads[scanBucket(c0, len)]!; i >= 0 && i < n; i = next[i]! < i ? next[i]! : -1)
        if (d ? starts[i + 1]! - starts[i]! === len && d.nameIs(i, name) : this.#nameEqualsIndex(i, name, 0, len)) out.push(i);
      out.reverse();
    } else if (d) {
      // Tokens are compared only for names of that length and first character (a few per lookup, not thousands).
      for (let i = 0; i < n; i++) if ((first === undefined || first[i] === c0) && starts[i + 1]! - starts[i]! === len && d.nameIs(i, name)) out.push(i);
    } else {
      const names = this.#names;
      for (let i = 0; i < n; i++) if (starts[i + 1]! - starts[i]! === len && (len === 0 || names.charCodeAt(starts[i]!) === c0) && this.#nameEqualsIndex(i, name, 0, len)) out.push(i);
    }
    this.#scanned.set(name, out);
    return out;
  }

  /** Already sorted is the common case (kallsyms, System.map); the permutation is then the identity. */
  get #sorted(): boolean {
    return (this.#sortedFlag ??= isSorted(this.#addrs));
  }

  /** Table indices in address order (identity for a sorted table). */
  #order(): Uint32Array {
    if (this.#byAddr) return this.#byAddr;
    const n = this.count;
    const order = new Uint32Array(n);
    for (let i = 0; i < n; i++) order[i] = i;
    const addrs = this.#addrs;
    if (!this.#sorted) {
      order.sort((a, b) => (addrs[a]! < addrs[b]! ? -1 : addrs[a]! > addrs[b]! ? 1 : a - b));
      const sortedAddrs = new BigUint64Array(n);
      for (let i = 0; i < n; i++) sortedAddrs[i] = addrs[order[i]!]!;
      this.#sortedAddrs = sortedAddrs;
    }
    this.#byAddr = order;
    return order;
  }

  #addressSorted(): BigUint64Array {
    if (this.#sortedAddrs) return this.#sortedAddrs;
    if (this.#sorted) return (this.#sortedAddrs = this.#addrs);
    this.#order();
    return this.#sortedAddrs!;
  }

  /** Table index at position k of address order. */
  #atSorted(k: number): number {
    return this.#sorted ? k : this.#order()[k]!;
  }

  /** hashBytes() of every name: the decoder's, else one tight pass (it gets optimized quickly). Shared: do not modify. */
  nameHashes(): Uint32Array {
    if (this.#deferred) void this.#names;
    if (this.#hashes) return this.#hashes;
    const n = this.count;
    const starts = this.#starts;
    const bytes = this.#nameBytes;
    const names = this.#names;
    const hashes = new Uint32Array(n);
    if (bytes) for (let i = 0; i < n; i++) hashes[i] = hashBytes(bytes, starts[i]!, starts[i + 1]!);
    else for (let i = 0; i < n; i++) hashes[i] = hashRange(names, starts[i]!, starts[i + 1]!);
    this.#hashes = hashes;
    return hashes;
  }

  /** The name index (built on first use; decoding alone does not pay for it). Shared: do not modify. */
  nameIndex(): SymbolIndex {
    if (this.#slots && this.#sameName) return { slots: this.#slots, sameName: this.#sameName };
    const n = this.count;
    let size = 16;
    while (size < n * 2) size <<= 1;
    const slots = new Uint32Array(size).fill(EMPTY);
    const sameName = new Uint32Array(n).fill(EMPTY);
    const mask = size - 1;
    const starts = this.#starts;
    const hashes = this.nameHashes();
    // Insert in reverse so each chain lists symbols in table order.
    for (let i = n - 1; i >= 0; i--) {
      const h: number = hashes[i]!;
      let slot: number = h & mask;
      for (;;) {
        const j = slots[slot]!;
        if (j === EMPTY) {
          slots[slot] = i;
          break;
        }
        if (hashes[j] === h && this.#sameEntries(j, starts[i]!, starts[i + 1]!)) {
          sameName[i] = j;
          slots[slot] = i;
          break;
        }
        slot = (slot + 1) & mask;
      }
    }
    this.#slots = slots;
    this.#sameName = sameName;
    return { slots, sameName };
  }

  /** True when entry j's name equals names[start, end). */
  #sameEntries(j: number, start: number, end: number): boolean {
    const js = this.#starts[j]!;
    const len = end - start;
    if (this.#starts[j + 1]! - js !== len) return false;
    const b = this.#nameBytes;
    if (b) {
      for (let k = 0; k < len; k++) if (b[js + k] !== b[start + k]) return false;
      return true;
    }
    const names = this.#names;
    for (let k = 0; k < len; k++) if (names.charCodeAt(js + k) !== names.charCodeAt(start + k)) return false;
    return true;
  }

  #nameEqualsIndex(j: number, s: string, start: number, end: number): boolean {
    const js = this.#starts[j]!;
    const len = end - start;
    if (this.#starts[j + 1]! - js !== len) return false;
    const names = this.#names;
    for (let k = 0; k < len; k++) if (names.charCodeAt(js + k) !== s.charCodeAt(start + k)) return false;
    return true;
  }

  /** Table index of the first symbol named `name` (in table order), or -1. */
  #find(name: string): number {
    const scanned = this.#scan(name);
    if (scanned) return scanned.length ? scanned[0]! : -1;
    const { slots } = this.nameIndex();
    const mask = slots.length - 1;
    const n = this.count;
    let slot = hashRange(name, 0, name.length) & mask;
    // Bounded: an adopted index is not scanned up front, so it may lack an empty slot.
    for (let probes = 0; probes < slots.length; probes++) {
      const j = slots[slot]!;
      if (j === EMPTY) return -1;
      if (j < n && this.#nameEqualsIndex(j, name, 0, name.length)) return j;
      slot = (slot + 1) & mask;
    }
    return -1;
  }

  get count(): number {
    return this.#addrs.length;
  }

  /**
   * Decodes every deferred name now, in one pass: for a listing of every name, which would otherwise
   * decode its first DEFERRED_SINGLES names one at a time before the bulk decode. No-op once decoded.
   */
  decodeNames(): void {
    void this.#names;
  }

  nameAt(i: number): string {
    if (this.#deferred && ++this.#singles <= DEFERRED_SINGLES) return this.#deferred.nameAt(i);
    return this.#names.slice(this.#starts[i]!, this.#starts[i + 1]!);
  }

  addressAt(i: number): GuestVirtAddr {
    return gva(this.#addrs[i]!);
  }

  typeAt(i: number): string {
    return String.fromCharCode(this.#types[i]!);
  }

  moduleAt(i: number): string | undefined {
    const m = this.#modules?.[i] ?? 0;
    return m === 0 ? undefined : this.#moduleNames[m - 1];
  }

  /** The symbol at table index i. */
  at(i: number): KernelSymbol {
    if (!Number.isInteger(i) || i < 0 || i >= this.count) throw new RangeError(`symbol index ${i} outside 0..${this.count - 1}`);
    const module = this.moduleAt(i);
    const sym: KernelSymbol = { name: this.nameAt(i), address: gva(this.#addrs[i]!), type: this.typeAt(i) };
    return module === undefined ? sym : { ...sym, module };
  }

  has(name: string): boolean {
    return this.#find(name) >= 0;
  }

  /** Table indices of every symbol with this name, in table order. */
  indicesOf(name: string): number[] {
    const scanned = this.#scan(name);
    if (scanned) return [...scanned]; // the caller's own array (the scan's is kept)
    const out: number[] = [];
    const first = this.#find(name);
    if (first < 0) return out;
    const { sameName } = this.nameIndex();
    // Chains go up (a chain that does not ends there, so every walk ends); names are compared, so a bad chain cannot lie.
    for (let j = first; j < this.count; ) {
      if (this.#nameEqualsIndex(j, name, 0, name.length)) out.push(j);
      const next = sameName[j]!;
      if (next === EMPTY || next <= j) break;
      j = next;
    }
    return out;
  }

  /** Every symbol with this name (static symbols repeat), in table order. */
  all(name: string): KernelSymbol[] {
    return this.indicesOf(name).map((i) => this.at(i));
  }

  /**
   * The symbol a name means: the first global (upper-case type) of that name,
   * else the first of any type. Core-kernel symbols win over module ones.
   */
  get(name: string): KernelSymbol | undefined {
    const i = this.#preferred(name);
    return i < 0 ? undefined : this.at(i);
  }

  #preferred(name: string): number {
    const idx = this.indicesOf(name);
    if (idx.length <= 1) return idx.length ? idx[0]! : -1;
    const rank = (i: number) => ((this.#modules?.[i] ?? 0) === 0 ? 0 : 2) + (isGlobalType(this.#types[i]!) ? 0 : 1);
    let best = idx[0]!;
    for (const i of idx) if (rank(i) < rank(best)) best = i;
    return best;
  }

  /** The address of `name`; throws a ProfileError naming the symbol and this table's source. */
  address(name: string): GuestVirtAddr {
    const i = this.#preferred(name);
    if (i < 0)
      throw new ProfileError(`symbol ${name} not found among ${this.count} symbols`, {
        symbol: name,
        tried: [this.source],
        hint: 'check the spelling, or give a profile that has it with --profile',
      });
    return gva(this.#addrs[i]!);
  }

  /** Like address() but undefined when absent. */
  tryAddress(name: string): GuestVirtAddr | undefined {
    const i = this.#preferred(name);
    return i < 0 ? undefined : gva(this.#addrs[i]!);
  }

  /**
   * The symbol containing `va`: the last one at or below it (among equal
   * addresses, a global one, then the first in table order). Undefined below
   * the first symbol, above the last one, or farther than `maxOffset`.
   */
  nameOf(va: bigint, maxOffset?: bigint): SymbolAt | undefined {
    const sorted = this.#addressSorted();
    const n = sorted.length;
    if (n === 0 || va < sorted[0]! || va > sorted[n - 1]!) return undefined;
    // Last position with address <= va. On a little-endian host the search compares 32-bit halves as
    // numbers: reading a BigUint64Array element makes a BigInt, ~17 per lookup and 2k lookups a check_syscall.
    let lo = 0;
    let hi = n - 1;
    if (LITTLE_ENDIAN) {
      const h = (this.#sortedHalves ??= new Uint32Array(sorted.buffer, sorted.byteOffset, n * 2));
      const vHi = Number(va >> 32n);
      const vLo = Number(va & 0xffffffffn);
      while (lo < hi) {
        const mid = (lo + hi + 1) >>> 1;
        const mHi = h[2 * mid + 1]!;
        if (mHi < vHi || (mHi === vHi && h[2 * mid]! <= vLo)) lo = mid;
        else hi = mid - 1;
      }
    } else {
      while (lo < hi) {
        const mid = (lo + hi + 1) >>> 1;
        if (sorted[mid]! <= va) lo = mid;
        else hi = mid - 1;
      }
    }
    const addr = sorted[lo]!;
    let first = lo;
    while (first > 0 && sorted[first - 1] === addr) first--;
    let pick = this.#atSorted(first);
    for (let k = first; k <= lo; k++) {
      const i = this.#atSorted(k);
      if (isGlobalType(this.#types[i]!)) {
        pick = i;
        break;
      }
    }
    const offset = va - addr;
    if (maxOffset !== undefined && offset > maxOffset) return undefined;
    const symbol = this.at(pick);
    return { name: symbol.name, offset, symbol };
  }

  /** Formats va as `name+0xoff` (or plain hex when no symbol holds it). */
  describe(va: bigint, maxOffset?: bigint): string {
    const at = this.nameOf(va, maxOffset);
    if (!at) return `0x${va.toString(16)}`;
    return at.offset === 0n ? at.name : `${at.name}+0x${at.offset.toString(16)}`;
  }

  /** Table indices whose name matches a glob (`*`, `?`, `[...]`), a `/regex/flags` string, or a RegExp. */
  searchIndices(pattern: string | RegExp): number[] {
    const re = toRegExp(pattern);
    void this.#names; // every name is tested: decode them in one pass
    const out: number[] = [];
    for (let i = 0; i < this.count; i++) {
      re.lastIndex = 0;
      if (re.test(this.nameAt(i))) out.push(i);
    }
    return out;
  }

  /** Symbols matching a pattern (see searchIndices), in table order. */
  search(pattern: string | RegExp): KernelSymbol[] {
    return this.searchIndices(pattern).map((i) => this.at(i));
  }

  /** Table order (for kallsyms: /proc/kallsyms order). */
  *entries(): IterableIterator<KernelSymbol> {
    for (let i = 0; i < this.count; i++) yield this.at(i);
  }

  /** Table indices in address order (ties in table order). */
  addressOrder(): Uint32Array {
    return this.#order();
  }

  /** Address order. */
  *byAddress(): IterableIterator<KernelSymbol> {
    for (let k = 0; k < this.count; k++) yield this.at(this.#atSorted(k));
  }

  [Symbol.iterator](): IterableIterator<KernelSymbol> {
    return this.byAddress();
  }

  /**
   * A new table with a KASLR shift applied: addresses inside `range` (default
   * the x86-64 kernel image map) move by `delta`; absolute and per-cpu symbols
   * (small values) and module addresses stay, as the kernel's own relocation
   * leaves them. Same names and order. shifted(-d) undoes shifted(d).
   */
  shifted(delta: bigint, source?: string, range: readonly [bigint, bigint] = KERNEL_IMAGE_MAP): SymbolTable {
    const addrs = shiftAddresses(this.#addrs, delta, range);
    const label = source ?? `${this.source} shifted by ${delta < 0n ? '-' : ''}0x${(delta < 0n ? -delta : delta).toString(16)}`;
    // Same names: the name index carries over.
    const index = this.#slots && this.#sameName ? { slots: this.#slots, sameName: this.#sameName } : undefined;
    return new SymbolTable({ ...this.columns(), addresses: addrs }, label, index);
  }

  /** The underlying columns (shared, do not modify). */
  columns(): SymbolColumns {
    const c: SymbolColumns = {
      names: this.#names,
      nameStarts: this.#starts,
      addresses: this.#addrs,
      types: this.#types,
      ...(this.#nameBytes ? { nameBytes: this.#nameBytes } : {}),
      ...(this.#hashes ? { hashes: this.#hashes } : {}),
    };
    return this.#modules ? { ...c, modules: this.#modules, moduleNames: this.#moduleNames } : c;
  }

  /** Rough bytes held by this table (for the memory budget). */
  byteSize(): number {
    return (
      (this.#namesText?.length ?? 0) +
      this.#starts.byteLength +
      this.#addrs.byteLength +
      this.#types.byteLength +
      (this.#modules?.byteLength ?? 0) +
      (this.#byAddr?.byteLength ?? 0) +
      (this.#sortedAddrs === undefined || this.#sortedAddrs === this.#addrs ? 0 : this.#sortedAddrs.byteLength) +
      (this.#nameBytes?.byteLength ?? 0) +
      (this.#hashes?.byteLength ?? 0) +
      (this.#slots?.byteLength ?? 0) +
      (this.#sameName?.byteLength ?? 0)
    );
  }
}

const LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

/** True when addresses never go down (compared as two u32 halves: no BigInt per element). */
function isSorted(a: BigUint64Array): boolean {
  const n = a.length;
  if (!LITTLE_ENDIAN) {
    for (let i = 1; i < n; i++) if (a[i]! < a[i - 1]!) return false;
    return true;
  }
  const h = new Uint32Array(a.buffer, a.byteOffset, n * 2);
  for (let i = 1; i < n; i++) {
    const hi = h[2 * i + 1]!;
    const phi = h[2 * i - 1]!;
    if (hi < phi || (hi === phi && h[2 * i]! < h[2 * i - 2]!)) return false;
  }
  return true;
}

/** An adopted name index must have the shape nameIndex() builds: a power-of-two slot count of at least twice the symbols. */
function indexShapeFits(index: SymbolIndex, n: number): boolean {
  const size = index.slots.length;
  return index.sameName.length === n && size >= 16 && size >= n * 2 && (size & (size - 1)) === 0;
}

const TWO32 = 4294967296;

/**
 * Adds `delta` (mod 2^64) to every address in [range[0], range[1]), leaving
 * the others. For the kernel image map the comparison and the addition run on
 * u32 halves in doubles (exact), without a BigInt per symbol.
 */
export function shiftAddresses(src: BigUint64Array, delta: bigint, range: readonly [bigint, bigint] = KERNEL_IMAGE_MAP): BigUint64Array {
  const n = src.length;
  const out = new BigUint64Array(n);
  const [lo, hi] = range;
  const d = BigInt.asUintN(64, delta);
  const halvesOk = LITTLE_ENDIAN && lo >> 32n === 0xffffffffn && hi >> 32n === 0xffffffffn && hi > lo;
  if (!halvesOk) {
    for (let i = 0; i < n; i++) {
      const a = src[i]!;
      out[i] = a >= lo && a < hi ? BigInt.asUintN(64, a + d) : a;
    }
    return out;
  }
  const loLow = Number(lo & 0xffffffffn);
  const hiLow = Number(hi & 0xffffffffn);
  const dLo = Number(d & 0xffffffffn);
  const dHi = Number(d >> 32n);
  const s = new Uint32Array(src.buffer, src.byteOffset, n * 2);
  const o = new Uint32Array(out.buffer);
  for (let i = 0; i < n; i++) {
    const aLo = s[2 * i]!;
    const aHi = s[2 * i + 1]!;
    if (aHi === 0xffffffff && aLo >= loLow && aLo < hiLow) {
      const v = aLo + dLo; // < 2^33: exact
      const carry = v >= TWO32 ? 1 : 0;
      o[2 * i] = v - carry * TWO32;
      o[2 * i + 1] = (aHi + dHi + carry) >>> 0;
    } else {
      o[2 * i] = aLo;
      o[2 * i + 1] = aHi;
    }
  }
  return out;
}

/** Turns a glob, a `/regex/flags` string or a RegExp into an anchored-as-appropriate RegExp. */
export function toRegExp(pattern: string | RegExp): RegExp {
  if (pattern instanceof RegExp) return new RegExp(pattern.source, pattern.flags.replace('g', '').replace('y', ''));
  const m = /^\/(.*)\/([a-z]*)$/s.exec(pattern);
  if (m) {
    try {
      return new RegExp(m[1]!, m[2]!.replace(/[gy]/g, ''));
    } catch (e) {
      throw new ProfileError(`bad regular expression ${pattern}: ${(e as Error).message}`);
    }
  }
  return globToRegExp(pattern);
}

/** Glob to an anchored RegExp: `*` any run, `?` one char, `[...]`/`[!...]` classes; everything else literal. */
export function globToRegExp(glob: string): RegExp {
  let src = '^';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') src += '.*';
    else if (c === '?') src += '.';
    else if (c === '[') {
      const close = glob.indexOf(']', i + 2);
      if (close < 0) {
        src += '\\[';
        continue;
      }
      let body = glob.slice(i + 1, close);
      const negate = body.startsWith('!') || body.startsWith('^');
      if (negate) body = body.slice(1);
      src += `[${negate ? '^' : ''}${body.replace(/[\\\]]/g, '\\$&')}]`;
      i = close;
    } else src += c.replace(/[.+^${}()|\\\]]/g, '\\$&');
  }
  return new RegExp(src + '$', 's');
}

/** Collects symbols one at a time (System.map, tests) and builds a SymbolTable. */
export class SymbolTableBuilder {
  #parts: string[] = [];
  #starts: number[] = [0];
  #length = 0;
  #addrs: bigint[] = [];
  #types: number[] = [];
  #modules: number[] = [];
  #moduleIds = new Map<string, number>();
  #anyModule = false;

  get count(): number {
    return this.#addrs.length;
  }

  add(name: string, address: bigint, type: string, module?: string): this {
    if (/[^\x00-\xff]/.test(name)) throw new ProfileError(`symbol name ${JSON.stringify(name)} is not Latin-1`);
    this.#parts.push(name);
    this.#length += name.length;
    this.#starts.push(this.#length);
    this.#addrs.push(BigInt.asUintN(64, address));
    this.#types.push(type.length ? type.charCodeAt(0) & 0xff : 0x3f);
    let m = 0;
    if (module !== undefined) {
      m = this.#moduleIds.get(module) ?? 0;
      if (m === 0) {
        m = this.#moduleIds.size + 1;
        if (m > 0xffff) throw new ProfileError('more than 65535 modules in one symbol table');
        this.#moduleIds.set(module, m);
      }
      this.#anyModule = true;
    }
    this.#modules.push(m);
    return this;
  }

  build(source: string): SymbolTable {
    const cols: SymbolColumns = {
      names: this.#parts.join(''),
      nameStarts: Uint32Array.from(this.#starts),
      addresses: BigUint64Array.from(this.#addrs),
      types: Uint8Array.from(this.#types),
    };
    if (!this.#anyModule) return new SymbolTable(cols, source);
    return new SymbolTable({ ...cols, modules: Uint16Array.from(this.#modules), moduleNames: [...this.#moduleIds.keys()] }, source);
  }
}
