// Which pages a lock's next holder will write (issue 13, matmul 16 x 16): the
// lock manager learns, per node, where that node's critical sections write
// relative to where its previous one under the lock ended, so a grant pushes
// the pages of earlier sections the acquirer will write, and not the others.
//
// Before (session 10), a grant pushed every page written in the lock's last 16
// critical sections that the acquirer had not seen (up to
// grantPagePushCountMax): on 16 nodes each acquirer then wrote about one of
// them. DSM64's matmul: node k writes rows k, k + 16, ... of C, each in the
// page 5-7 pages past the last page of its previous row; a shared counter or a
// job queue under a lock (migratory data): the same pages every time (offset 0
// and a few below). Both are offsets from the anchor: the highest page the
// node's last critical section under the lock wrote.
//
// Pure: the caller (the lock manager, sync.ts) feeds each release's written
// pages and asks for a node's predicted pages at a grant. Bounded: at most
// pushOffsetCountMax offsets per node, each within pushOffsetPagesMax pages of
// the anchor; at each release every count is multiplied by pushOffsetWeightKept
// (recent sections weigh most), so an access pattern that changes is relearned
// in a few sections.

import { pushOffsetCountMax, pushOffsetPagesMax, pushOffsetWeightKept } from '../constants.js';
import { assert } from '../errors.js';

/** An offset whose weight falls below this is forgotten (seen once, then not for about 20 releases). */
const offsetWeightMin = 1 / 16;

interface NodeHistory {
  /** The highest page the node's last release under the lock wrote. */
  anchor: number;
  /** Offset from the previous anchor -> how often a release wrote a page there (recent releases weigh most). */
  offsets: Map<number, number>;
  /** Pages per release, averaged over the last few (exponentially: each new one weighs 1/4). */
  pagesPerRelease: number;
}

/** A grant's push for a node: pages most often seen first, and how many of them to push at most. */
export interface PushPrediction {
  pages: number[];
  pushMax: number;
}

export class PushPredictor {
  private readonly nodes = new Map<number, NodeHistory>();

  /** A release by `node` under the lock wrote `pages` (its interval's pages: any order). */
  noteRelease(node: number, pages: readonly number[]): void {
    if (pages.length === 0) return;
    let anchor = pages[0]!;
    for (const page of pages) anchor = Math.max(anchor, page);
    const history = this.nodes.get(node);
    if (history === undefined) {
      this.nodes.set(node, { anchor, offsets: new Map(), pagesPerRelease: pages.length });
      return;
    }
    history.pagesPerRelease += (pages.length - history.pagesPerRelease) / 4;
    for (const [offset, weight] of history.offsets) {
      if (weight * pushOffsetWeightKept < offsetWeightMin) history.offsets.delete(offset);
      else history.offsets.set(offset, weight * pushOffsetWeightKept);
    }
    // A section that wrote more pages than offsets are kept teaches nothing a 16-page push could use (and would cost a sort).
    for (const page of pages.length <= pushOffsetCountMax ? pages : []) {
      const offset = page - history.anchor;
      if (Math.abs(offset) <= pushOffsetPagesMax) history.offsets.set(offset, (history.offsets.get(offset) ?? 0) + 1);
    }
    history.anchor = anchor;
    if (history.offsets.size > pushOffsetCountMax) {
      // The lightest go (one release of many scattered pages).
      history.offsets = new Map([...history.offsets].sort((x, y) => y[1] - x[1]).slice(0, pushOffsetCountMax));
    }
    assert(history.offsets.size <= pushOffsetCountMax, 'push offsets within their limit');
  }

  /**
   * The pages `node` is predicted to write next (its anchor plus each offset
   * seen), most often seen first, and at most how many to push: about as many
   * as its releases write (one more, for a row that straddles two pages);
   * null when nothing is known of it yet (the caller then pushes as for a stranger).
   */
  predicted(node: number): PushPrediction | null {
    const history = this.nodes.get(node);
    if (history === undefined || history.offsets.size === 0) return null;
    const ranked = [...history.offsets].sort((x, y) => y[1] - x[1] || Math.abs(x[0]) - Math.abs(y[0]));
    const pages: number[] = [];
    for (const [offset] of ranked) if (history.anchor + offset >= 0) pages.push(history.anchor + offset);
    return { pages, pushMax: Math.ceil(history.pagesPerRelease) + 1 };
  }

}
