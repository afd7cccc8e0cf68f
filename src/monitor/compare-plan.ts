/**
 * The packed word plan of the watch set (watch-set.ts): word-aligned pieces of one mapped region as runs
 * of 32-bit words, their shadows moved into one Int32Array beside them.
 */

/** What packing needs of a watched piece: where it is in its region, how long, and its shadow (re-pointed into the plan). */
export interface PlanPiece {
  readonly at: number;
  readonly len: number;
  shadow: Buffer;
}

/**
 * The compare plan of a zero-copy source, rebuilt when ranges come or go: every word-aligned piece as a run
 * of 32-bit words of its mapped region, sorted by address, with the shadows packed in one Int32Array beside
 * them. A tick over an unchanged guest is then one tight loop of integer compares over contiguous arrays (no
 * call per range, no object visited): what keeps it cheap when the watched bytes have left the caches
 * between ticks. Pieces that are not word-aligned keep the byte compare.
 */
export interface RegionPlan<P extends PlanPiece> {
  /** The region's bytes as 32-bit words (a view of the mapping, no copy). */
  readonly live: Int32Array;
  /** Word index in `live` of each compared word, ascending. */
  readonly index: Int32Array;
  /** Last seen value of each compared word. */
  readonly shadow: Int32Array;
  /** Piece number (in `pieces`) of each compared word. */
  readonly owner: Int32Array;
  readonly pieces: P[];
  /** First word (in index/shadow) of each piece, and one past the last piece's. */
  readonly first: Int32Array;
}

/** Packs `pieces` (word-aligned, all in the region `bytes`) into a plan; their shadows move into it, same bytes. */
export function packRegion<P extends PlanPiece>(bytes: Uint8Array, pieces: P[], wordViews: Map<Uint8Array, Int32Array>): RegionPlan<P> {
  let live = wordViews.get(bytes);
  if (!live) wordViews.set(bytes, (live = new Int32Array(bytes.buffer, bytes.byteOffset, bytes.length >> 2)));
  pieces.sort((x, y) => x.at - y.at);
  let n = 0;
  for (const p of pieces) n += p.len >> 2;
  const index = new Int32Array(n);
  const shadow = new Int32Array(n);
  const owner = new Int32Array(n);
  const first = new Int32Array(pieces.length + 1);
  let w = 0;
  pieces.forEach((p, i) => {
    first[i] = w;
    // The piece keeps a view of its words in the packed array (a later re-pack copies from it).
    const view = Buffer.from(shadow.buffer, w * 4, p.len);
    view.set(p.shadow);
    p.shadow = view;
    for (let k = 0; k < p.len >> 2; k++, w++) {
      index[w] = (p.at >> 2) + k;
      owner[w] = i;
    }
  });
  first[pieces.length] = w;
  return { live, index, shadow, owner, pieces, first };
}
