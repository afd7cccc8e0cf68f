/**
 * What an optimistic pass's run read, for validation (linux/pass.ts): a copy
 * of each guest-physical page taken before its first read, and the 8-byte
 * words of it the run used — every byte of a plain read, only the decoded
 * fields of a whole-object read (Typed's FieldRecorder). At the end of the
 * run, `changed` compares those words with guest memory now.
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

/** One watched page: where its copy lies in the recorder's arena, which 8-byte words of it the run read, and which of those were links (512-bit masks). */
interface Watched {
  readonly page: number;
  readonly slot: number;
  readonly words: Uint32Array;
  readonly links: Uint32Array;
}

/**
 * Granularity of the compare: one 8-byte word. Kernel objects pack fields a
 * run does not read (a running task's runtime statistics, a socket's
 * counters) next to those it does; a coarser unit counts their updates as
 * torn reads (64-byte chunks failed 72 % of passes under churn).
 */
const WORD = 8;
const WORDS = PAGE / WORD;

/** Sets the bits of the words covering [from, to) of a page (in the link mask too for a link). */
function markWords(w: Watched, from: number, to: number, link: boolean): void {
  const c1 = ((to - 1) / WORD) | 0;
  for (let c = (from / WORD) | 0; c <= c1; c++) {
    w.words[c >>> 5]! |= 1 << (c & 31);
    if (link) w.links[c >>> 5]! |= 1 << (c & 31);
  }
}

const isMarked = (w: Watched, c: number): boolean => ((w.words[c >>> 5]! >>> (c & 31)) & 1) === 1;
const isLink = (w: Watched, c: number): boolean => ((w.links[c >>> 5]! >>> (c & 31)) & 1) === 1;

/** Most changed places one run keeps for diagnosis. */
const MAX_CHANGED_AT = 32;

/**
 * Records what a run reads, merged per page: a copy of each page taken
 * before its first read (into one growing arena: no allocation per page),
 * and the 8-byte words of it read since. Only those words are compared at
 * the end, so other fields and counters sharing the page are no false alarm.
 */
export class PageRecorder implements ReadRecorder, FieldRecorder {
  readonly pages = new Map<number, Watched>();
  overflow = false;
  /** Inside a whole-object fetch: its bytes are copied, and watched only once decoded (`used`). */
  private fetchDepth = 0;
  /** The last page `used` translated (virtual page → physical page start). */
  private vaPage = -1n;
  private paPage = -1;
  /** Guest-physical addresses of the first changed link of each page with one (at most MAX_CHANGED_AT). */
  readonly changedAt: number[] = [];
  /** Pages where only value words changed, found by the last `changed` (see the top of this file). */
  changedValues = 0;
  private last: Watched | undefined;
  private arena = Buffer.alloc(64 * PAGE);
  private masks = new Uint32Array(64 * (WORDS / 32));
  private linkMasks = new Uint32Array(64 * (WORDS / 32));
  private readonly scratch = new Uint8Array(PAGE);

  constructor(
    private readonly phys: PhysReader,
    private readonly space: AddressSpace,
  ) {}

  fetching<T>(fetch: () => T): T {
    this.fetchDepth++;
    try {
      return fetch();
    } finally {
      this.fetchDepth--;
    }
  }

  used(va: bigint, len: number, link: boolean): void {
    let v = va;
    let left = len;
    while (left > 0) {
      const off = Number(v & 0xfffn);
      const n = Math.min(left, PAGE - off);
      const vp = v - BigInt(off);
      if (vp !== this.vaPage) {
        // A fresh translation reads (and so watches) the page-table entries it relies on.
        const t = this.space.tryTranslate(gva(vp));
        if (t === undefined) return;
        this.vaPage = vp;
        this.paPage = t.pa;
      }
      this.touch(this.paPage + off, n, link);
      v += BigInt(n);
      left -= n;
    }
  }

  /** A read of guest-physical [pa, pa+len): a plain read (not inside an object fetch) is a link. */
  touch(pa: number, len: number, link = true): void {
    if (!(len > 0) || !Number.isSafeInteger(pa) || pa < 0) return;
    // Inside an object fetch only copies are taken; 8-byte reads (page-table entries on the way) are watched.
    const mark = this.fetchDepth === 0 || len <= 8;
    const off = pa % PAGE;
    const last = this.last;
    if (last !== undefined && pa - off === last.page * PAGE && off + len <= PAGE) {
      if (mark) markWords(last, off, off + len, link);
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
      if (mark) markWords(w, Math.max(pa, p * PAGE) - p * PAGE, Math.min(end, (p + 1) * PAGE) - p * PAGE, link);
      this.last = w;
    }
  }

  private watch(page: number): Watched {
    const slot = this.pages.size;
    if ((slot + 1) * PAGE > this.arena.length) {
      const bigger = Buffer.alloc(this.arena.length * 2);
      this.arena.copy(bigger);
      this.arena = bigger;
      const masks = new Uint32Array(this.masks.length * 2);
      masks.set(this.masks);
      this.masks = masks;
      const links = new Uint32Array(this.linkMasks.length * 2);
      links.set(this.linkMasks);
      this.linkMasks = links;
      // Views into the old mask arrays are re-pointed at the new ones.
      for (const o of this.pages.values()) {
        (o as { words: Uint32Array }).words = masks.subarray(o.slot * (WORDS / 32), (o.slot + 1) * (WORDS / 32));
        (o as { links: Uint32Array }).links = links.subarray(o.slot * (WORDS / 32), (o.slot + 1) * (WORDS / 32));
      }
    }
    const at = slot * (WORDS / 32);
    const w: Watched = { page, slot, words: this.masks.subarray(at, at + WORDS / 32), links: this.linkMasks.subarray(at, at + WORDS / 32) };
    this.arena.set(this.phys.pageUntracked(page, this.scratch), slot * PAGE);
    this.pages.set(page, w);
    return w;
  }

  /**
   * Watched pages in which a link the run read differs now from the copy taken before it was read;
   * `changedValues` is set to the pages where only values did (both, with `strict`, count as changed).
   */
  changed(current: PhysReader, strict = false): number {
    let n = 0;
    let values = 0;
    for (const w of this.pages.values()) {
      const now = current.pageUntracked(w.page, this.scratch);
      const base = w.slot * PAGE;
      let valueChanged = false;
      let linkChanged = false;
      for (let c = 0; c < WORDS && !linkChanged; ) {
        if (w.words[c >>> 5] === 0) {
          c = (c | 31) + 1;
          continue;
        }
        if (!isMarked(w, c)) {
          c++;
          continue;
        }
        let e = c + 1;
        while (e < WORDS && isMarked(w, e)) e++;
        // One compare per run of read words, without allocating views; word by word only in a run that differs.
        if (this.arena.compare(now, c * WORD, e * WORD, base + c * WORD, base + e * WORD) !== 0) {
          for (let at = c; at < e; at++) {
            if (this.arena.compare(now, at * WORD, (at + 1) * WORD, base + at * WORD, base + (at + 1) * WORD) === 0) continue;
            if (strict || isLink(w, at)) {
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
}

