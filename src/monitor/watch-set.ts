/**
 * The watch set: which guest-physical byte ranges hold the watched kernel objects' fields, grouped by page,
 * with shadow copies to compare against. It is the host-side analogue of RTKDSM's write-protected pages: a
 * stock QEMU/KVM host cannot trap guest writes for an outside observer, so each tick compares what the pages
 * hold now with what they held at the last look.
 *
 * Two switchable stages (the benchmark measures what each buys):
 * - page-level detection: one memcmp per watched 4 KiB page; only changed pages are looked into;
 * - field-range filtering: on a changed page only the watched ranges are compared, so a write elsewhere on
 *   the page (false sharing: a task's scheduler statistics beside its comm) triggers nothing.
 * With page detection off every range is compared each tick; with field filtering off every object with a
 * range on a changed page is reported dirty.
 *
 * A range is `link` (a list pointer or a global counter: its change means objects came or went, and the
 * watcher re-walks) or `field` (a watched field of one object: only that object is re-read).
 */
import { packRegion, type RegionPlan } from './compare-plan.js';
import type { GuestView } from './guest-view.js';

const PAGE = 4096;

export type RangeKind = 'link' | 'field';

/** One watched range, as a watcher declares it. `va` is for reports; `pa` is what is compared. */
export interface WatchRange {
  readonly pa: number;
  readonly len: number;
  readonly kind: RangeKind;
}

interface Piece {
  readonly watch: string;
  readonly key: string;
  readonly kind: RangeKind;
  readonly pa: number;
  readonly len: number;
  /** Last seen bytes of this piece. */
  shadow: Buffer;
  /** Zero-copy sources: the mapped bytes holding the piece and its offset there (stable while mapped). */
  live?: Uint8Array | undefined;
  at: number;
}

/** Ranges up to this size are compared byte by byte in JS (no allocation); longer ones with a native memcmp. */
const SMALL_RANGE = 32;

/** Do the `len` bytes at `live[at]` equal `shadow`? */
function sameBytes(live: Uint8Array, at: number, shadow: Buffer, len: number): boolean {
  if (len <= SMALL_RANGE) {
    for (let i = 0; i < len; i++) if (live[at + i] !== shadow[i]) return false;
    return true;
  }
  return shadow.equals(live.subarray(at, at + len));
}

/** Longer pieces (whole tables: sys_call_table, the IDT) are compared by one native memcmp over views built once. */
const BULK_BYTES = 64;

interface BulkPiece {
  readonly piece: Piece;
  /** The piece's bytes in the mapping (a view, no copy). */
  readonly live: Buffer;
}

interface ComparePlan {
  /** Global ranges (key ''), compared every call. */
  readonly regions: RegionPlan<Piece>[];
  /** Objects' ranges, compared in turns (DetectOptions.objectSlice). */
  readonly objects: RegionPlan<Piece>[];
  readonly bulk: BulkPiece[];
  /** Zero-copy pieces that are not word-aligned: compared byte by byte. */
  readonly odd: Piece[];
  /** Pieces without a mapped source: read and compared through the view. */
  readonly copied: Piece[];
  readonly words: number;
}

interface WatchedPage {
  readonly pa: number;
  /** Last seen bytes of the whole page (page-level detection only). */
  shadow: Buffer | undefined;
  /** A live zero-copy view, when the source maps guest RAM (kept across ticks). */
  live: Buffer | undefined;
  readonly pieces: Piece[];
}

export interface DetectOptions {
  readonly pageLevel: boolean;
  readonly fieldFilter: boolean;
  /**
   * Most per-object ranges compared in one call (word-compare path): the global ranges (key '': list heads,
   * counters, tables) are compared every call, the objects' ranges in turns of this many, so a tick costs
   * a bounded number of cache and TLB misses however many objects are watched. Default: all, every call.
   */
  readonly objectSlice?: number;
}

export interface Detection {
  /** Watches whose link ranges changed (objects came or went). */
  readonly structural: ReadonlySet<string>;
  /** Objects whose field ranges changed, per watch. */
  readonly dirty: ReadonlyMap<string, ReadonlySet<string>>;
  readonly pagesCompared: number;
  readonly pagesChanged: number;
  /** Changed pages on which no watched range changed. */
  readonly falseSharing: number;
  /** Pages or ranges that could not be read this tick. */
  readonly unreadable: number;
}

/** What an unchanged tick returns (shared: a tick that finds nothing allocates nothing for it). */
const NONE: ReadonlySet<string> = new Set();
const NO_OBJECTS: ReadonlyMap<string, ReadonlySet<string>> = new Map();

/** Bound on the watch set (a fork bomb must not grow it without limit). */
export const MAX_WATCHED_PAGES = 65_536;

export class WatchSet {
  private readonly pages = new Map<number, WatchedPage>();
  private readonly byObject = new Map<string, Piece[]>();
  /** Ranges refused because the set was full. */
  refused = 0;
  /** The range compare plan; undefined when ranges came or went since it was built. */
  private plan: ComparePlan | undefined;
  private readonly wordViews = new Map<Uint8Array, Int32Array>();

  constructor(private readonly view: GuestView) {}

  get pageCount(): number {
    return this.pages.size;
  }

  get objectCount(): number {
    return this.byObject.size;
  }

  /** Watched ranges (pieces, after splitting at page boundaries): compared as 32-bit words, by memcmp (bulk), byte-wise (odd) or through copies. */
  get shape(): { pieces: number; words: number; bulkPieces: number; bulkBytes: number; oddPieces: number; copiedPieces: number } {
    const plan = this.compiled();
    let pieces = plan.odd.length + plan.copied.length + plan.bulk.length;
    for (const r of [...plan.regions, ...plan.objects]) pieces += r.pieces.length;
    const bulkBytes = plan.bulk.reduce((n, b) => n + b.piece.len, 0);
    return { pieces, words: plan.words, bulkPieces: plan.bulk.length, bulkBytes, oddPieces: plan.odd.length, copiedPieces: plan.copied.length };
  }

  /** Keys of the watched objects of one watch. */
  keysOf(watch: string): string[] {
    const out: string[] = [];
    const prefix = `${watch}\u0000`;
    for (const id of this.byObject.keys()) if (id.startsWith(prefix)) out.push(id.slice(prefix.length));
    return out;
  }

  /**
   * Watches `ranges` of object `key` of `watch`, replacing what it had. Global ranges use key ''. A range
   * the object already had keeps its shadow: that shadow was taken before the watcher's latest read, so a
   * write since then still shows as a change (a fresh copy would swallow it).
   */
  set(watch: string, key: string, ranges: readonly WatchRange[]): void {
    const kept = new Map<string, Buffer>();
    for (const p of this.byObject.get(`${watch}\u0000${key}`) ?? []) kept.set(`${p.pa}:${p.len}:${p.kind}`, p.shadow);
    this.remove(watch, key);
    this.plan = undefined;
    const pieces: Piece[] = [];
    for (const r of ranges) {
      if (r.len <= 0 || r.len > PAGE * 16 || r.pa < 0) continue;
      let pa = r.pa;
      let left = r.len;
      while (left > 0) {
        const n = Math.min(left, PAGE - (pa % PAGE));
        const page = this.page(pa - (pa % PAGE));
        if (!page) {
          this.refused++;
          break;
        }
        const where = this.view.zeroCopy ? this.view.locate(pa, n) : undefined;
        let shadow = kept.get(`${pa}:${n}:${r.kind}`);
        if (!shadow) {
          const live = this.view.bytes(pa, n);
          shadow = live ? Buffer.from(live) : Buffer.alloc(n);
        }
        const piece: Piece = { watch, key, kind: r.kind, pa, len: n, shadow, live: where?.bytes, at: where?.at ?? 0 };
        page.pieces.push(piece);
        pieces.push(piece);
        pa += n;
        left -= n;
      }
    }
    if (pieces.length) this.byObject.set(`${watch}\u0000${key}`, pieces);
  }

  remove(watch: string, key: string): void {
    const id = `${watch}\u0000${key}`;
    const pieces = this.byObject.get(id);
    if (!pieces) return;
    this.byObject.delete(id);
    this.plan = undefined;
    for (const p of pieces) {
      const pageAt = p.pa - (p.pa % PAGE);
      const page = this.pages.get(pageAt);
      if (!page) continue;
      const i = page.pieces.indexOf(p);
      if (i >= 0) page.pieces.splice(i, 1);
      if (!page.pieces.length) this.pages.delete(pageAt);
    }
  }

  /** Forgets every object of a watch (e.g. before a full re-walk that re-adds them). */
  clearWatch(watch: string): void {
    for (const key of this.keysOf(watch)) this.remove(watch, key);
  }

  clear(): void {
    this.pages.clear();
    this.byObject.clear();
    this.plan = undefined;
  }

  /** Compares what the watched memory holds now with the shadows, updating them. */
  detect(opts: DetectOptions): Detection {
    this.structuralNow = undefined;
    this.dirtyNow = undefined;
    let pagesCompared = 0;
    let pagesChanged = 0;
    let falseSharing = 0;
    let unreadable = 0;
    if (opts.pageLevel) {
      for (const page of this.pages.values()) {
        const live = this.livePage(page);
        if (!live) {
          unreadable++;
          continue;
        }
        pagesCompared++;
        let changed = false;
        if (page.shadow === undefined) {
          // First look at this page: its pieces' shadows were taken when they were added.
          page.shadow = Buffer.from(live);
        } else if (page.shadow.equals(live)) continue;
        else {
          changed = true;
          pagesChanged++;
          page.shadow.set(live);
        }
        let any = false;
        for (const p of page.pieces) {
          const now = live.subarray(p.pa - page.pa, p.pa - page.pa + p.len);
          // On a first look only real differences count (nothing is known to have changed yet).
          if ((opts.fieldFilter || !changed) && p.shadow.equals(now)) continue;
          if (!p.shadow.equals(now)) any = true;
          p.shadow.set(now);
          this.mark(p);
        }
        if (changed && !any) falseSharing++;
      }
    } else {
      const plan = this.compiled();
      for (const r of plan.regions) this.compareWords(r, 0, r.pieces.length);
      const slice = opts.objectSlice ?? Infinity;
      const turn = this.turn++;
      for (const r of plan.objects) {
        const n = r.pieces.length;
        if (slice >= n) this.compareWords(r, 0, n);
        else {
          const from = (turn % Math.ceil(n / slice)) * slice;
          this.compareWords(r, from, Math.min(n, from + slice));
        }
      }
      for (const b of plan.bulk) {
        if (b.piece.shadow.equals(b.live)) continue;
        b.piece.shadow.set(b.live);
        this.mark(b.piece);
      }
      for (const p of plan.odd) {
        // Zero-copy: compare in place, copy only what changed.
        if (sameBytes(p.live!, p.at, p.shadow, p.len)) continue;
        p.shadow.set(p.live!.subarray(p.at, p.at + p.len));
        this.mark(p);
      }
      for (const p of plan.copied) {
        const now = this.view.bytes(p.pa, p.len);
        if (!now) {
          unreadable++;
          continue;
        }
        if (p.shadow.equals(now)) continue;
        p.shadow.set(now);
        this.mark(p);
      }
    }
    return { structural: this.structuralNow ?? NONE, dirty: this.dirtyNow ?? NO_OBJECTS, pagesCompared, pagesChanged, falseSharing, unreadable };
  }

  /** Calls of detect so far (which turn of the objects' ranges is next). */
  private turn = 0;

  /** The hot loop: word compares over pieces [from, to) of a region's plan; a changed word takes its whole piece's new bytes. */
  private compareWords(r: RegionPlan<Piece>, from: number, to: number): void {
    const { live, index, shadow, owner, first } = r;
    const n = first[to]!;
    for (let i = first[from]!; i < n; i++) {
      if (live[index[i]!] === shadow[i]) continue;
      const piece = owner[i]!;
      const end = first[piece + 1]!;
      for (let j = first[piece]!; j < end; j++) shadow[j] = live[index[j]!]!;
      this.mark(r.pieces[piece]!);
      i = end - 1;
    }
  }

  private structuralNow: Set<string> | undefined;
  private dirtyNow: Map<string, Set<string>> | undefined;

  private mark(p: Piece): void {
    if (p.kind === 'link') (this.structuralNow ??= new Set()).add(p.watch);
    else {
      const dirty = (this.dirtyNow ??= new Map());
      let s = dirty.get(p.watch);
      if (!s) dirty.set(p.watch, (s = new Set()));
      s.add(p.key);
    }
  }

  /** The compare plan, built when ranges came or went since the last one. */
  private compiled(): ComparePlan {
    if (this.plan) return this.plan;
    const groups = new Map<Uint8Array, Piece[]>();
    const objectGroups = new Map<Uint8Array, Piece[]>();
    const odd: Piece[] = [];
    const copied: Piece[] = [];
    const bulk: BulkPiece[] = [];
    for (const page of this.pages.values()) {
      for (const p of page.pieces) {
        if (!p.live) copied.push(p);
        else if (p.len > BULK_BYTES) bulk.push({ piece: p, live: Buffer.from(p.live.buffer, p.live.byteOffset + p.at, p.len) });
        else if ((p.at & 3) !== 0 || (p.len & 3) !== 0 || (p.live.byteOffset & 3) !== 0) odd.push(p);
        else {
          const byRegion = p.key === '' ? groups : objectGroups;
          let g = byRegion.get(p.live);
          if (!g) byRegion.set(p.live, (g = []));
          g.push(p);
        }
      }
    }
    let words = 0;
    const build = (byRegion: Map<Uint8Array, Piece[]>): RegionPlan<Piece>[] =>
      [...byRegion].map(([bytes, pieces]) => {
        const plan = packRegion(bytes, pieces, this.wordViews);
        words += plan.index.length;
        return plan;
      });
    const regions = build(groups);
    const objects = build(objectGroups);
    this.plan = { regions, objects, bulk, odd, copied, words };
    return this.plan;
  }

  private page(pa: number): WatchedPage | undefined {
    let page = this.pages.get(pa);
    if (page) return page;
    if (this.pages.size >= MAX_WATCHED_PAGES) return undefined;
    page = { pa, shadow: undefined, live: undefined, pieces: [] };
    this.pages.set(pa, page);
    return page;
  }

  private livePage(page: WatchedPage): Buffer | undefined {
    if (page.live) return page.live;
    const b = this.view.bytes(page.pa, PAGE);
    if (!b) return undefined;
    const buf = Buffer.from(b.buffer, b.byteOffset, b.length);
    // A view of the mapping stays valid and live: keep it. A copy is refreshed every tick.
    if (this.view.zeroCopy) page.live = buf;
    return buf;
  }
}
