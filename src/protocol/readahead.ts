// hlrc read-ahead: which pages after a faulting one a fetch also asks for.
// The policy alone lives here; the coherence (hlrc.ts) calls it at one place,
// HlrcCoherence.fetch (`this.readAhead.pick(home, page, eligible)`), and
// reports what became of read-ahead pages (installed, touched, invalidated
// untouched) through the `installed`/`useful`/`wasted` calls.
//
// Policy: per home, up to prefetchStreamCountMax streams (least recently used
// first), each the page after its last fetch's pages and its window. A fault
// just past a stream's window (within one more window) doubles the window; any
// other fault starts a new stream at prefetchPageCountInitial. A window is at
// most prefetchPageCount pages, the faulting one included.

import { assert } from '../errors.js';
import { prefetchPageCountInitial, prefetchPageCountMax, prefetchStreamCountMax } from '../constants.js';
import type { EngineCounters } from './types.js';

interface Stream {
  /** The page after the last fetch's pages. */
  end: number;
  /** The last fetch's window (pages, the faulting one included). */
  window: number;
}

export class ReadAhead {
  /** Pages one fetch may bring, the faulting one included (1: no read-ahead). */
  private readonly pageCountMax: number;
  /**
   * Whether read-ahead pages stay at no access until first touched, so their
   * use can be counted (EngineOptions.readAheadTracking).
   */
  readonly tracking: boolean;
  /** Per home, its streams, least recently used first. */
  private readonly streams: Stream[][];

  constructor(private readonly pageCount: number, nodeCount: number, private readonly stats: EngineCounters, options: { prefetchPageCount?: number; readAheadTracking?: boolean }) {
    this.pageCountMax = options.prefetchPageCount ?? prefetchPageCountMax;
    this.tracking = options.readAheadTracking ?? false;
    assert(Number.isInteger(this.pageCountMax) && this.pageCountMax >= 1 && this.pageCountMax <= prefetchPageCountMax, 'prefetch page count within 1..prefetchPageCountMax');
    this.streams = Array.from({ length: nodeCount }, () => []);
  }

  /**
   * A fetch of `page` from `home`: the pages after it to ask for too, in
   * order, each one `eligible` (invalid here, not being fetched, same home);
   * the first one that is not ends the run.
   */
  pick(home: number, page: number, eligible: (next: number) => boolean): number[] {
    const streams = this.streams[home]!;
    let stream = streams.find((s) => page >= s.end && page < s.end + s.window);
    const forward = stream !== undefined;
    if (stream === undefined) {
      // A new stream replaces the least recently used one.
      if (streams.length >= prefetchStreamCountMax) streams.shift();
      stream = { end: -1, window: 0 };
    } else {
      streams.splice(streams.indexOf(stream), 1);
    }
    streams.push(stream);
    const window = Math.min(forward ? stream.window * 2 : prefetchPageCountInitial, this.pageCountMax);
    const extra: number[] = [];
    for (let next = page + 1; next < this.pageCount && extra.length < window - 1; next++) {
      if (!eligible(next)) break;
      extra.push(next);
    }
    stream.end = page + 1 + extra.length;
    stream.window = window;
    return extra;
  }

  /** A read-ahead page was installed untouched (tracking only). */
  installed(_page: number): void {
    this.stats.prefetchedPages = (this.stats.prefetchedPages ?? 0) + 1;
  }

  /** The first touch of a read-ahead page (tracking only): it was worth fetching. */
  useful(_page: number): void {
    this.stats.prefetchUsefulPages = (this.stats.prefetchUsefulPages ?? 0) + 1;
  }

  /** A read-ahead page was invalidated before any thread touched it (tracking only). */
  wasted(_page: number): void {
    this.stats.prefetchWastedPages = (this.stats.prefetchWastedPages ?? 0) + 1;
  }
}
