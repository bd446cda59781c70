// Eventually visible (hlrc, session 23): stale copies between synchronizations.
//
// A loop polling a plain read (`while (flag[0] === 0) {}`, no Atomics) is a
// data race, outside the model; under hlrc alone it spins forever on 2+
// nodes, because no synchronization ever refreshes the reader's read-only
// copy and a writer that is not the page's home keeps its store in its twin
// until its next release. This rule makes such a write visible after a
// while: a node on which no acquire, release or fault happened for
// staleRefreshDelayMs takes a look; the wait doubles at each look, up to
// staleRefreshDelayMaxMs (longer for a node holding many copies: see
// staleRefreshCopiesPerMs), and comes back to its start only when a look
// dropped a copy with no synchronization since the look before (a poller's;
// a synchronization starts the wait again at its length, see tick):
//
//  (a) its dirty pages' diffs go home now (HlrcCoherence.flushDirty, the
//      early flush of flow control: they stay in the open interval);
//  (b) it sends each other node one staleQuery naming the clean, valid copies
//      it holds of that node's pages, each with a hash of its bytes, and a
//      cursor into that home's log of pages that ever held a non-zero byte.
//      The home answers (staleReply) with the named pages whose master copy
//      hashes otherwise, and the log's entries past the cursor. The asker
//      drops those copies (invalidated as an acquire would: the next read
//      fetches the home's copy), and its implicit copies (pages it never
//      touched: valid and zero from the start, no state) of the pages the log
//      names.
//
// Dropping a clean copy is always safe under hlrc: the page keeps its need,
// so the fetch that follows gets a copy at least as new as the one dropped
// (every diff of this node went to the home before the query, over the same
// FIFO link). A data-race-free program cannot tell (the simulation drops
// copies at random moments: test/sim/programs.ts, --stale-refresh). A program
// that computes for seconds between synchronizations pays one hash of each
// remote copy per look, and refetches only pages that changed.
//
// No clock here (the engine's rule): time comes from onTick.

import { pageBytes, staleCheckPageCountMax, staleRefreshCopiesPerMs, staleRefreshDelayMaxMs } from '../constants.js';
import { assert } from '../errors.js';
import type { ProtocolMessage } from './messages.js';

/** What the rule needs of hlrc (HlrcCoherence). */
export interface StaleHost {
  readonly nodeId: number;
  readonly nodeCount: number;
  readonly pageCount: number;
  /** (a): the open interval's dirty pages' diffs go home now. */
  flushAllDirty(): void;
  /** Clean, valid copies this node holds of other nodes' pages (with state), and their homes. */
  forEachCleanCopy(visit: (page: number, home: number) => void): void;
  /** At the home: pages homed here that may have been written (with state, or in the open interval), but for those `logged` marks 1. */
  forEachOwnTouched(visit: (page: number) => void, logged: Uint8Array): void;
  homeOf(page: number): number;
  /** The page's bytes as this node holds them (any protection). */
  readPage(page: number, dst: Uint8Array): void;
  /** Drops `changed` (copies with state) and `written` (implicit copies) homed at `home` that are still clean here; returns how many. */
  drop(changed: readonly number[], written: readonly number[], home: number): number;
  send(toNode: number, message: ProtocolMessage): void;
}

type StaleQuery = Extract<ProtocolMessage, { type: 'staleQuery' }>;
type StaleReply = Extract<ProtocolMessage, { type: 'staleReply' }>;

/** Two 32-bit hashes of a page's bytes, into `out` (a copy that differs is missed with odds of about 2^-64). */
export function pageHash(bytes: Uint8Array, out: number[]): void {
  assert(bytes.length === pageBytes && bytes.byteOffset % 4 === 0, 'a whole, aligned page');
  const words = new Int32Array(bytes.buffer, bytes.byteOffset, pageBytes / 4);
  let a = 0x811c9dc5 | 0;
  let b = 0x5bd1e995 | 0;
  for (let k = 0; k < words.length; k++) {
    const word = words[k]!;
    a = Math.imul(a ^ word, 0x01000193);
    b = Math.imul(b + word, 0x5bd1e995) ^ (b >>> 15);
  }
  out.push(a >>> 0, b >>> 0);
}

function isZero(bytes: Uint8Array): boolean {
  const words = new Int32Array(bytes.buffer, bytes.byteOffset, pageBytes / 4);
  for (let k = 0; k < words.length; k++) if (words[k] !== 0) return false;
  return true;
}

export class StaleRefresh {
  // -- when to look (the asker)
  /** The host's synchronization count when last seen (-1: never). */
  private syncSeen = -1;
  private delayMs: number;
  private nextAtMs = 0;
  /** Copies the last look hashed (a node holding many waits longer between looks). */
  private copiesHashed = 0;
  /** A look dropped a copy, with no synchronization since the look before: the wait comes back to its start at the next tick. */
  private found = false;
  /** The synchronization count at the last look, and whether no synchronization happened between it and the look before. */
  private syncAtLook = -1;
  private lookQuiet = false;
  /** Per home: a staleQuery to it is in flight (one at a time). */
  private readonly asking: Uint8Array;
  /** Per home: entries of its written log this node has seen (the cursor of its next query). */
  private readonly writtenSeen: number[];
  /** Per home: where the next query starts among this node's copies of it, when they are more than one query names. */
  private readonly turn: number[];
  // -- the home's log
  /** Pages homed here that have held a non-zero byte, in the order found (each once; at most pageCount). */
  private readonly written: number[] = [];
  /** 1 for a page in `written` (made at the first query). */
  private writtenMark: Uint8Array | null = null;
  private readonly scratch = new Uint8Array(pageBytes);

  /**
   * The shortest and longest waits, scaled by the nodes a look asks (each look sends nodeCount - 1 queries): every
   * node of a larger cluster looks less often, so the queries a node sends per second stay those of two nodes, and so
   * do the homes' hashing and the storms a loaded machine makes of them (16 nodes on 2 cores with the unscaled waits:
   * matmul's threads, starved, looked every 20-160 ms, 18,801 queries in a 7 s run against 856 messages in all).
   */
  private readonly baseDelayMs: number;
  private readonly delayMaxMs: number;

  /** `delayMs`: the first wait on two nodes (0: no timer; looks come only from refresh()). */
  constructor(private readonly host: StaleHost, delayMs: number) {
    assert(delayMs >= 0, 'the stale refresh delay is a duration');
    const scale = Math.max(1, host.nodeCount - 1);
    this.baseDelayMs = delayMs * scale;
    this.delayMaxMs = Math.max(staleRefreshDelayMaxMs * scale, this.baseDelayMs);
    // The first look waits the longest: a program that polls nothing pays the fewest looks; a look that finds a
    // poller's copy changed brings the wait down to the shortest (see tick).
    this.delayMs = this.delayMaxMs;
    this.asking = new Uint8Array(host.nodeCount);
    this.writtenSeen = new Array<number>(host.nodeCount).fill(0);
    this.turn = new Array<number>(host.nodeCount).fill(0);
  }

  tableSizes(): Record<string, number> {
    return { staleWritten: this.written.length };
  }

  /**
   * The engine's tick: `syncCount` counts this node's acquires, releases and
   * faults (a thread that faults reads fresh copies: the node is not quiet).
   * A synchronization starts the wait again, and keeps its length: a program
   * that synchronizes every 30 ms (Jacobi's iterations on a loaded machine)
   * looks a few times, finds its pages written between its barriers (legal
   * under hlrc: that is no polling loop), and its waits soon outgrow its
   * iterations. Only a look that dropped a copy in a stretch with no
   * synchronization (a poller's) brings the wait back to its start.
   */
  tick(nowMs: number, syncCount: number): void {
    // A node that never synchronized runs no thread that could read another node's writes (a worker starts with an
    // acquire, a main thread that starts one releases): it answers queries, and looks from its first synchronization.
    if (this.baseDelayMs === 0 || syncCount === 0) return;
    if (syncCount !== this.syncSeen) {
      this.syncSeen = syncCount;
      this.nextAtMs = nowMs + this.delayMs;
      return;
    }
    if (this.found) {
      this.found = false;
      this.delayMs = this.baseDelayMs;
      this.nextAtMs = nowMs + this.delayMs;
      return;
    }
    if (nowMs < this.nextAtMs) return;
    this.lookQuiet = syncCount === this.syncAtLook;
    this.syncAtLook = syncCount;
    this.refresh();
    const delayMaxMs = Math.max(this.delayMaxMs, this.copiesHashed / staleRefreshCopiesPerMs);
    this.delayMs = Math.min(this.delayMs * 2, delayMaxMs);
    this.nextAtMs = nowMs + this.delayMs;
  }

  /** One look: (a) and (b) above. */
  refresh(): void {
    this.host.flushAllDirty();
    const byHome: number[][] = Array.from({ length: this.host.nodeCount }, () => []);
    this.host.forEachCleanCopy((page, home) => { byHome[home]!.push(page); });
    this.copiesHashed = 0;
    for (let home = 0; home < this.host.nodeCount; home++) {
      if (home === this.host.nodeId || this.asking[home] === 1) continue;
      let pages = byHome[home]!;
      if (pages.length > staleCheckPageCountMax) {
        const start = this.turn[home]! % pages.length;
        pages = [...pages.slice(start), ...pages.slice(0, start)].slice(0, staleCheckPageCountMax);
        this.turn[home] = start + staleCheckPageCountMax;
      }
      this.copiesHashed += pages.length;
      const hashes: number[] = [];
      for (const page of pages) {
        this.host.readPage(page, this.scratch);
        pageHash(this.scratch, hashes);
      }
      this.asking[home] = 1;
      this.host.send(home, { type: 'staleQuery', pages, hashes, writtenFrom: this.writtenSeen[home]! });
    }
  }

  /** At the home: which named copies differ from the master copy, and the written log past the asker's cursor. */
  onQuery(from: number, message: StaleQuery): void {
    assert(message.pages.length <= staleCheckPageCountMax && message.hashes.length === 2 * message.pages.length, 'a stale query within its limit, two hashes a page');
    const changed: number[] = [];
    const hash: number[] = [];
    message.pages.forEach((page, k) => {
      // A page lent away (or never ours) is not answered for: the asker's view of its home is behind.
      if (page < 0 || page >= this.host.pageCount || this.host.homeOf(page) !== this.host.nodeId) return;
      this.host.readPage(page, this.scratch);
      hash.length = 0;
      pageHash(this.scratch, hash);
      if (hash[0] !== message.hashes[2 * k] || hash[1] !== message.hashes[2 * k + 1]) changed.push(page);
    });
    this.logWritten();
    const writtenFrom = Math.min(Math.max(0, message.writtenFrom), this.written.length);
    const written = this.written.slice(writtenFrom, writtenFrom + staleCheckPageCountMax);
    this.host.send(from, { type: 'staleReply', changed, written, writtenTo: writtenFrom + written.length });
  }

  /** At the asker: drops what the home found out of date. */
  onReply(from: number, message: StaleReply): void {
    assert(message.changed.length <= staleCheckPageCountMax && message.written.length <= staleCheckPageCountMax, 'a stale reply within its limit');
    this.asking[from] = 0;
    this.writtenSeen[from] = Math.max(this.writtenSeen[from]!, message.writtenTo);
    if (this.host.drop(message.changed, message.written, from) > 0 && this.lookQuiet) this.found = true;
  }

  /** Adds the pages homed here that hold a non-zero byte now and are not logged yet. */
  private logWritten(): void {
    const mark = this.writtenMark ??= new Uint8Array(this.host.pageCount);
    this.host.forEachOwnTouched((page) => {
      if (mark[page] === 1) return;
      this.host.readPage(page, this.scratch);
      if (isZero(this.scratch)) return;
      mark[page] = 1;
      assert(this.written.length < this.host.pageCount, 'the written log holds each page once');
      this.written.push(page);
    }, mark);
  }
}
