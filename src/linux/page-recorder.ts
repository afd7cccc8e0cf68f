/**
 * What an optimistic pass's run read, for validation (linux/pass.ts): which
 * 8-byte words of guest-physical memory it used — every byte of a plain
 * read, only the decoded fields of a whole-object read (Typed's
 * FieldRecorder) — and a copy of each taken as the run read it. At the end
 * of the run, `changed` compares those words with guest memory now.
 *
 * Words are links or values. A link is what decided what else the run read:
 * a pointer field, a plain read (a walker's `next`, a page-table entry), a
 * whole object's bytes. A value is a decoded integer, string or bitfield
 * that only went into a row (a task's `__state`, a refcount, `rss_stat`). A
 * changed link means the run may have followed a structure that no longer
 * was: the run is retried. A changed value means the row holds what the
 * field held at the instant it was read, as every row of a paused guest
 * does at the pause; it is counted (`changedValues`), and retried only in a
 * strict pass.
 */
import type { AddressSpace } from '../arch/address-space.js';
import type { PhysReader, ReadRecorder } from '../arch/phys-reader.js';
import { gva } from '../core/address.js';
import type { FieldRecorder } from '../profile/typed.js';

/** Most pages one validated run watches (4 KiB copies each: 64 MiB). */
export const MAX_WATCHED_PAGES = 16384;
const PAGE = 4096;
const MASK64 = (1n << 64n) - 1n;

/** One watched page: its page number, and its slot: where its copy lies in the recorder's arena and its 512-bit masks of read words and of links in the mask arrays. */
interface Watched {
  readonly page: number;
  readonly slot: number;
}

/**
 * Granularity of the compare: one 8-byte word. Kernel objects pack fields a
 * run does not read (a running task's runtime statistics, a socket's
 * counters) next to those it does; a coarser unit counts their updates as
 * torn reads (64-byte chunks failed 72 % of passes under churn).
 */
const WORD = 8;
const WORDS = PAGE / WORD;
/** 32-bit mask words per page. */
const MASK_WORDS = WORDS / 32;

/** Most changed places one run keeps for diagnosis. */
const MAX_CHANGED_AT = 32;

/** A recorder's storage: word copies (in page slots) and the three mask arrays, sized for the same number of slots. */
interface Storage {
  arena: Buffer;
  masks: Uint32Array;
  links: Uint32Array;
  /** Words of a slot's arena that hold a copy. */
  copied: Uint32Array;
}

const INITIAL_SLOTS = 64;
/** Storage of released recorders, reused by the next (a run of a validated pass allocated 256 KiB zeroed otherwise). */
const spare: Storage[] = [];
const MAX_SPARE = 4;

function newStorage(slots: number): Storage {
  return { arena: Buffer.allocUnsafe(slots * PAGE), masks: new Uint32Array(slots * MASK_WORDS), links: new Uint32Array(slots * MASK_WORDS), copied: new Uint32Array(slots * MASK_WORDS) };
}

/**
 * Records what a run reads, merged per page: the 8-byte words it read, and a
 * copy of each taken when the run first reads it (into one growing arena of
 * page slots: no allocation per page). Only those words are compared at the
 * end, so other fields and counters sharing the page are no false alarm.
 *
 * Words are copied one range at a time from a view of the page where the
 * memory below is mapped (or kept in this pass's blocks): a run that reads a
 * task's pid and links copies those words, not the page around them (under
 * fork churn those pages are the guest's hottest, and every line we read is
 * one the guest's next write to it must take back), and a word is copied at
 * the instant it is read, so a change between a page's first read and a
 * later read of another word on it is no false alarm. Elsewhere (a copy is a
 * read through the source) the whole page is copied at its first read.
 * `release` hands the storage on to the next recorder.
 */
export class PageRecorder implements ReadRecorder, FieldRecorder {
  readonly pages = new Map<number, Watched>();
  overflow = false;
  /** Inside a whole-object fetch: its bytes are copied, and watched only once decoded (`used`). */
  private fetchDepth = 0;
  /** The object `used` last saw: its address, its offset in its first page, its pages' physical starts. */
  private objBase = -1n;
  private objOff = 0;
  private readonly objPages: number[] = [];
  /** Guest-physical addresses of the first changed link of each page with one (at most MAX_CHANGED_AT). */
  readonly changedAt: number[] = [];
  /** Pages where only value words changed, found by the last `changed` (see the top of this file). */
  changedValues = 0;
  private last: Watched | undefined;
  private store: Storage;
  /** Per slot, while recording (until `changed`): a view of the page to copy words from as they are read; undefined when the whole page was copied. */
  private readonly views: (Buffer | undefined)[] = [];
  private readonly scratch = new Uint8Array(PAGE);

  constructor(
    private readonly phys: PhysReader,
    private readonly space: AddressSpace,
  ) {
    this.store = spare.pop() ?? newStorage(INITIAL_SLOTS);
  }

  fetching<T>(fetch: () => T): T {
    this.fetchDepth++;
    try {
      return fetch();
    } finally {
      this.fetchDepth--;
    }
  }

  used(base: bigint, off: number, len: number, link: boolean): void {
    if (base !== this.objBase) {
      this.objBase = base;
      this.objOff = Number(base & 0xfffn);
      this.objPages.length = 0;
    }
    // Offsets within the object, so a field costs no BigInt arithmetic: its pages are translated once per object.
    let at = this.objOff + off;
    let left = len;
    if (at < 0) {
      // A field before the object's address (a container reached from a member): from that field's own address.
      this.used((base + BigInt(off)) & MASK64, 0, len, link);
      return;
    }
    while (left > 0) {
      const index = Math.floor(at / PAGE);
      const inPage = at - index * PAGE;
      const n = Math.min(left, PAGE - inPage);
      let pa = this.objPages[index];
      if (pa === undefined) {
        // A fresh translation reads (and so watches) the page-table entries it relies on.
        const t = this.space.tryTranslate(gva((base - BigInt(this.objOff) + BigInt(index * PAGE)) & MASK64));
        if (t === undefined) return;
        pa = this.objPages[index] = t.pa - (t.pa % PAGE);
      }
      this.record(pa + inPage, n, link, false);
      at += n;
      left -= n;
    }
  }

  /**
   * A read of guest-physical [pa, pa+len): a plain read (not inside an object fetch) is a link. Inside a
   * fetch only copies are taken (its fields are watched once decoded, `used`), and none for an object
   * decoded in place (`inPlace`): its words are copied as they are decoded.
   */
  touch(pa: number, len: number, inPlace = false): void {
    this.record(pa, len, true, inPlace);
  }

  private record(pa: number, len: number, link: boolean, inPlace: boolean): void {
    if (!(len > 0) || !Number.isSafeInteger(pa) || pa < 0) return;
    // 8-byte reads inside a fetch (page-table entries on the way) are watched.
    const mark = this.fetchDepth === 0 || len <= 8;
    const off = pa % PAGE;
    const last = this.last;
    if (last !== undefined && pa - off === last.page * PAGE && off + len <= PAGE) {
      if (mark) this.mark(last.slot, off, off + len, link);
      else if (!inPlace) this.copy(last.slot, off, off + len);
      return;
    }
    const first = (pa - off) / PAGE;
    const end = pa + len;
    for (let p = first; p * PAGE < end; p++) {
      let w = this.pages.get(p);
      if (w === undefined) {
        if (this.pages.size >= MAX_WATCHED_PAGES) {
          this.overflow = true;
          return;
        }
        w = this.watch(p);
      }
      const from = Math.max(pa, p * PAGE) - p * PAGE;
      const to = Math.min(end, (p + 1) * PAGE) - p * PAGE;
      if (mark) this.mark(w.slot, from, to, link);
      else if (!inPlace) this.copy(w.slot, from, to);
      this.last = w;
    }
  }

  /** Sets the bits of the words covering [from, to) of a slot's page (in the link mask too for a link), copying those not copied yet. */
  private mark(slot: number, from: number, to: number, link: boolean): void {
    this.copy(slot, from, to);
    const { masks, links } = this.store;
    const at = slot * MASK_WORDS;
    const c1 = ((to - 1) / WORD) | 0;
    for (let c = (from / WORD) | 0; c <= c1; c++) {
      masks[at + (c >>> 5)]! |= 1 << (c & 31);
      if (link) links[at + (c >>> 5)]! |= 1 << (c & 31);
    }
  }

  /** Copies the words covering [from, to) of a slot's page that hold no copy yet, from its view, as they are now. */
  private copy(slot: number, from: number, to: number): void {
    const view = this.views[slot];
    if (view === undefined) return;
    const { arena, copied } = this.store;
    const at = slot * MASK_WORDS;
    const base = slot * PAGE;
    const c1 = (((to - 1) / WORD) | 0) + 1;
    for (let c = (from / WORD) | 0; c < c1; ) {
      if (copied[at + (c >>> 5)] === 0xffffffff) {
        c = (c | 31) + 1;
        continue;
      }
      if (isSet(copied, at, c)) {
        c++;
        continue;
      }
      let e = c + 1;
      while (e < c1 && !isSet(copied, at, e)) e++;
      // A field or two at a time: a loop beats Buffer#copy's call below a few words.
      if (e - c <= SHORT_RUN) for (let k = c * WORD, end = e * WORD; k < end; k++) arena[base + k] = view[k]!;
      else view.copy(arena, base + c * WORD, c * WORD, e * WORD);
      for (let w = c; w < e; w++) copied[at + (w >>> 5)]! |= 1 << (w & 31);
      c = e;
    }
  }

  private watch(page: number): Watched {
    const slot = this.pages.size;
    let store = this.store;
    if ((slot + 1) * PAGE > store.arena.length) {
      const bigger = newStorage((store.arena.length / PAGE) * 2);
      store.arena.copy(bigger.arena, 0, 0, slot * PAGE);
      bigger.masks.set(store.masks);
      bigger.links.set(store.links);
      bigger.copied.set(store.copied);
      this.store = store = bigger;
    }
    // A slot's masks start clear (storage handed on by `release` is cleared up to the slots it used).
    const w: Watched = { page, slot };
    const view = this.phys.pageView(page);
    if (view !== undefined) this.views[slot] = Buffer.from(view.buffer, view.byteOffset, PAGE);
    else {
      this.views[slot] = undefined;
      store.arena.set(this.phys.pageCopy(page, this.scratch), slot * PAGE);
      store.copied.fill(0xffffffff, slot * MASK_WORDS, (slot + 1) * MASK_WORDS);
    }
    this.pages.set(page, w);
    return w;
  }

  /**
   * Watched pages in which a link the run read differs now from the copy taken when it was read (recording ends here);
   * `changedValues` is set to the pages where only values did (both, with `strict`, count as changed).
   */
  changed(current: PhysReader, strict = false): number {
    // Recording ends here: the views (of memory that may be unmapped later) are not needed past it.
    this.views.length = 0;
    let n = 0;
    let values = 0;
    const { arena, masks, links } = this.store;
    for (const w of this.pages.values()) {
      const now = current.pageUntracked(w.page, this.scratch);
      const base = w.slot * PAGE;
      const m = w.slot * MASK_WORDS;
      let valueChanged = false;
      let linkChanged = false;
      for (let c = 0; c < WORDS && !linkChanged; ) {
        if (masks[m + (c >>> 5)] === 0) {
          c = (c | 31) + 1;
          continue;
        }
        if (!isSet(masks, m, c)) {
          c++;
          continue;
        }
        let e = c + 1;
        while (e < WORDS && isSet(masks, m, e)) e++;
        // One compare per run of read words, without allocating views; word by word only in a run that differs.
        if (!same(arena, base, now, c, e)) {
          for (let at = c; at < e; at++) {
            if (same(arena, base, now, at, at + 1)) continue;
            if (strict || isSet(links, m, at)) {
              linkChanged = true;
              if (this.changedAt.length < MAX_CHANGED_AT) this.changedAt.push(w.page * PAGE + at * WORD);
              break;
            }
            valueChanged = true;
          }
        }
        c = e;
      }
      if (linkChanged) n++;
      else if (valueChanged) values++;
    }
    this.changedValues = values;
    return n;
  }

  /**
   * True when every word the run read, link or value, holds now what the run read: run again now, it would
   * read the same words and give the same rows (what lets a validated run be reused by the next pass).
   */
  unchanged(current: PhysReader): boolean {
    if (this.overflow) return false;
    const { arena, masks } = this.store;
    for (const w of this.pages.values()) {
      const now = current.pageUntracked(w.page, this.scratch);
      const base = w.slot * PAGE;
      const m = w.slot * MASK_WORDS;
      for (let c = 0; c < WORDS; ) {
        if (masks[m + (c >>> 5)] === 0) {
          c = (c | 31) + 1;
          continue;
        }
        if (!isSet(masks, m, c)) {
          c++;
          continue;
        }
        let e = c + 1;
        while (e < WORDS && isSet(masks, m, e)) e++;
        if (!same(arena, base, now, c, e)) return false;
        c = e;
      }
    }
    return true;
  }

  /** Hands the storage on to the next recorder; this one records nothing more. */
  release(): void {
    const store = this.store;
    const used = this.pages.size * MASK_WORDS;
    store.masks.fill(0, 0, used);
    store.links.fill(0, 0, used);
    store.copied.fill(0, 0, used);
    this.pages.clear();
    this.views.length = 0;
    this.last = undefined;
    this.overflow = true;
    if (spare.length < MAX_SPARE && store.arena.length <= 1024 * PAGE) spare.push(store);
    this.store = newStorage(1);
  }
}

/** Runs of at most this many words are copied and compared in a loop, not by one of Buffer's native calls. */
const SHORT_RUN = 4;

/** True when words [c, e) of the copy at `base` in `arena` equal those of the page `now`. */
function same(arena: Buffer, base: number, now: Uint8Array, c: number, e: number): boolean {
  if (e - c > SHORT_RUN) return arena.compare(now, c * WORD, e * WORD, base + c * WORD, base + e * WORD) === 0;
  for (let k = c * WORD, end = e * WORD; k < end; k++) if (arena[base + k] !== now[k]) return false;
  return true;
}

const isSet = (mask: Uint32Array, at: number, c: number): boolean => ((mask[at + (c >>> 5)]! >>> (c & 31)) & 1) === 1;
