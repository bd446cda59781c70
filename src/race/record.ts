// What the race checker is fed (docs/RACE.md). Plain objects: they travel
// from every node to node 0 in runtime messages (msgpack).

/** A synchronization operation that bounds an interval: what it was, and where (file:line) when the app thread said. */
export interface SyncPoint {
  /** e.g. 'Atomics.add', 'Mutex.lock', 'postMessage', 'message received', 'worker start'. */
  op: string;
  /** file:line:column of the program's call, null when unknown (events, not calls). */
  site: string | null;
}

/**
 * One closed interval of one node (in race mode: of one thread), with its
 * vector timestamp and the exact bytes it wrote, from its diffs.
 */
export interface IntervalWrites {
  node: number;
  /** 1-based interval number of `node`. */
  index: number;
  /** vc[node] = index; vc[m]: the intervals of node m this one is ordered after. */
  vc: number[];
  /** Thread ids (as the program sees them) that ran on the node during the interval. */
  threads: number[];
  begin: SyncPoint | null;
  end: SyncPoint | null;
  /** Pages written, ascending. */
  pages: number[];
  /** Per written page: byte runs within the page, [offset, length, offset, length, ...], ascending and disjoint. */
  runs: number[][];
  /** Pages read (faulted on for reading: the first read of each page in the interval), ascending. */
  reads: number[];
  /** Per read page: the byte (offset in the page) whose read faulted, which the interval certainly read. */
  readOffsets: number[];
}

/** A `new SharedArrayBuffer` in race mode: global byte address, length and where it was made. */
export interface AllocationRecord {
  address: number;
  byteLength: number;
  site: string | null;
  thread: number;
  node: number;
}

/**
 * write-write: both wrote these bytes (byte-precise). read-write: the reader
 * certainly read a byte the writer wrote (the byte its first read of the page
 * faulted on). read-write-page: the reader read the page and the writer wrote
 * in it, the bytes read beyond the first unknown (page precision: a race or
 * false sharing; listed only with --race-pages).
 */
export type RaceKind = 'write-write' | 'read-write' | 'read-write-page';

/** One side of a race: the interval and its thread. */
export interface RaceSide {
  node: number;
  threads: number[];
  interval: number;
  begin: SyncPoint | null;
  end: SyncPoint | null;
}

/** A distinct race as reported: the bytes (global addresses; the report resolves the buffer), both sides, how often. */
export interface RaceEntry {
  kind: RaceKind;
  /** First and one-past-last global byte address seen for this race (write-write: exact bytes; read-write: the page). */
  start: number;
  end: number;
  first: RaceSide;
  second: RaceSide;
  count: number;
  /** Further thread pairs seen racing the same way (up to raceThreadPairCountMax). */
  threadPairs: Array<[number[], number[]]>;
  /** Further pairs of intervals (by their bounding sync operations) that raced here (up to raceThreadPairCountMax). */
  otherPlaces: Array<[RaceSide, RaceSide]>;
}
