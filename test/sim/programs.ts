// Randomized data-race-free programs whose results are known by construction.
//
// Phases separated by a global barrier. In each phase every thread writes its
// own words (scattered over shared pages: false sharing) and checks words the
// other threads wrote in the previous phase; increments lock-protected
// counters (read, then write +1 under the lock); and adds to atomic counters.
// At the end thread 0 checks every counter with plain loads and the atomic
// counters with Atomics.load too; then the homes' copies are checked.

import { atomicLineBytes, pageBytes } from '../../src/constants.js';
import type { SyncRequest, SyncResult } from '../../src/protocol/engine.js';
import { Prng, SimCluster, checkSingleWriter, readU32, type ThreadOp, type ThreadProgram } from './sim.js';

export interface ProgramSpec {
  nodeCount: number;
  threadCount: number;
  pageCount: number;
  phaseCount: number;
  /** word address -> owner thread */
  owned: Array<{ address: number; owner: number }>;
  counters: Array<{ address: number; lockId: number }>;
  atomics: number[];
  /** A counter guarded by a mutex built from compareExchange + wait/notify on `lockAddress`. */
  casCounter: { address: number; lockAddress: number };
  /**
   * Writer sets that change over time: in phase p the word of owner o is
   * written by thread (o + floor(p / ownerShiftPeriod) * ownerShift) mod
   * threadCount, so a page keeps its writers for that many phases (long
   * enough for its home to move to a sole writer) and then changes them.
   * 0: owners never change.
   */
  ownerShift?: number;
  /**
   * Phases a writer set lasts when ownerShift is set (default 2): 1 in half
   * of those seeds, so a page moves to a sole writer after one window
   * (lendSoleWriterWindowCount) and sees another writer in the very next.
   */
  ownerShiftPeriod?: number;
  /**
   * Pages after the program's (0: none): in phase p thread p mod threadCount
   * writes a word of each, and after the barrier every other thread reads
   * them in order and checks them (a sequential sweep of a band another node
   * wrote: read-ahead streams, issue 13).
   */
  bandPages?: number;
  /**
   * Band pages (the first bandScanPages of them) whose every line the band writer writes with plain stores, and
   * every other thread then loads in order with Atomics.load after the barrier: a scan, which asks for read
   * copies ahead (session 35, src/protocol/lines.ts aheadOf) when lines are on. 0: none.
   */
  bandScanPages?: number;
  /**
   * The phases' barriers written with Atomics (a generation barrier on two
   * words of the atomics' page, as users of worker_threads write one) instead
   * of the engine's barrier: the program then synchronizes through atomics
   * alone, and hlrc's home-migration windows end at its line acquires
   * (docs/PROTOCOL.md "Windows at atomic lines").
   */
  atomicBarrier?: boolean;
  /** per thread, per phase: counter indices to increment, atomic indices to add 1 to */
  plans: Array<Array<{ counters: number[]; atomics: number[]; checks: number[]; casIncrements: number }>>;
}

const wordsPerPage = pageBytes / 4;

export function ownedValue(address: number, phase: number): number {
  return ((address * 2654435761) ^ (phase + 1) * 40503) >>> 0 || 1;
}

function bandValue(page: number, phase: number): number {
  return (phase + 1) * 1000 + page + 1;
}

const linesPerPage = pageBytes / atomicLineBytes;

/** The word of line `line` (1..linesPerPage - 1: line 0 holds the band's own word) of band page `page` that a scan loads. */
function bandScanWord(bandBase: number, page: number, line: number): number {
  return bandBase + page * pageBytes + line * atomicLineBytes + 4 * (line % 16);
}

export function generateProgram(prng: Prng, nodeCount: number): ProgramSpec {
  const threadCount = nodeCount + prng.int(nodeCount * 2);
  const pageCount = 2 + prng.int(5);
  const phaseCount = 1 + prng.int(4);
  // Draw distinct words from all pages but the last (the atomics' page).
  const used = new Set<number>();
  const word = (): number => {
    for (;;) {
      const w = prng.int((pageCount - 1) * wordsPerPage);
      if (!used.has(w)) { used.add(w); return w * 4; }
    }
  };
  const owned = Array.from({ length: threadCount * (1 + prng.int(6)) }, () => ({ address: word(), owner: prng.int(threadCount) }));
  const lockCount = 1 + prng.int(3);
  const counters = Array.from({ length: 1 + prng.int(4) }, () => ({ address: word(), lockId: 100 + prng.int(lockCount) }));
  const atomicBase = (pageCount - 1) * pageBytes;
  const atomics = Array.from({ length: 1 + prng.int(3) }, (_, k) => atomicBase + k * 8);
  const casCounter = { address: word(), lockAddress: atomicBase + 64 };
  const plans = Array.from({ length: threadCount }, () => Array.from({ length: phaseCount }, () => ({
    casIncrements: prng.int(3),
    counters: Array.from({ length: prng.int(3) }, () => prng.int(counters.length)),
    atomics: Array.from({ length: prng.int(3) }, () => prng.int(atomics.length)),
    checks: Array.from({ length: prng.int(4) }, () => prng.int(owned.length)),
  })));
  return { nodeCount, threadCount, pageCount, phaseCount, owned, counters, atomics, casCounter, plans };
}

const barrierId = 7;

function* sync(request: SyncRequest): Generator<ThreadOp, SyncResult, unknown> {
  const result = (yield { op: 'sync', request }) as SyncResult;
  if (!result.ok) throw new Error(`sync ${request.kind} failed: ${result.code} ${result.message}`);
  return result;
}

function* load(address: number): Generator<ThreadOp, number, unknown> {
  return (yield { op: 'load', address }) as number;
}

/**
 * The run's notifies' counts and its waits answered 'ok': equal at the end (the specification's count: a wait
 * is woken by exactly one notify, which counts it; the programs' waits are untimed and no thread is killed).
 */
const notifyTally = { notified: 0, woken: 0 };

function* atomic(op: 'compareExchange' | 'store' | 'notify' | 'wait' | 'load' | 'add', address: number, operands: string[]): Generator<ThreadOp, string, unknown> {
  const result = yield* sync({ kind: 'atomic', op, address, width: 4, operands, timeoutMs: -1 });
  const value = result.ok ? result.value ?? '' : '';
  if (op === 'notify') notifyTally.notified += Number(value);
  else if (op === 'wait' && value === 'ok') notifyTally.woken += 1;
  return value;
}

/** Drepper's simplest futex mutex: 0 free, 1 held; every unlock notifies one waiter. */
function* casLock(address: number): Generator<ThreadOp, void, unknown> {
  for (let attempt = 0; attempt < 100_000; attempt++) {
    if ((yield* atomic('compareExchange', address, ['0', '1'])) === '0') return;
    yield* atomic('wait', address, ['1']);
  }
  throw new Error('cas lock never acquired');
}

/** The atomic barrier's words (ProgramSpec.atomicBarrier): on a line of the atomics' page of their own. */
function atomicBarrierWords(spec: ProgramSpec): { count: number; generation: number } {
  const base = spec.pageCount * pageBytes - pageBytes + 128;
  return { count: base, generation: base + 4 };
}

/**
 * A generation barrier of `parties` threads written with Atomics on two words
 * of one line: read the generation, count the arrival; the last resets the
 * count, bumps the generation and wakes all; the others wait while the
 * generation is unchanged.
 */
export function* atomicGenerationBarrier(count: number, generation: number, parties: number): Generator<ThreadOp, void, unknown> {
  const seen = yield* atomic('load', generation, []);
  if (Number(yield* atomic('add', count, ['1'])) === parties - 1) {
    yield* atomic('store', count, ['0']);
    yield* atomic('add', generation, ['1']);
    yield* atomic('notify', generation, [String(parties)]);
    return;
  }
  for (let attempt = 0; attempt < 100_000; attempt++) {
    if ((yield* atomic('load', generation, [])) !== seen) return;
    yield* atomic('wait', generation, [seen]);
  }
  throw new Error('atomic barrier never passed');
}

function* phaseBarrier(spec: ProgramSpec): Generator<ThreadOp, void, unknown> {
  if (spec.atomicBarrier === true) {
    const { count, generation } = atomicBarrierWords(spec);
    yield* atomicGenerationBarrier(count, generation, spec.threadCount);
  } else {
    yield* sync({ kind: 'barrier', barrierId, parties: spec.threadCount });
  }
}

/** A tryLock spin that long means a lock nobody holds answers busy. */
const tryLockSpinCountMax = 100_000;

/** The thread that writes a word in a phase (see ProgramSpec.ownerShift). */
export function writerOf(spec: ProgramSpec, owner: number, phase: number): number {
  return (owner + Math.floor(phase / (spec.ownerShiftPeriod ?? 2)) * (spec.ownerShift ?? 0)) % spec.threadCount;
}

/** The thread holding each mutex of a running program (its threads share one cluster, so one map per spec). */
const holdersOf = new WeakMap<ProgramSpec, Map<number, number>>();
function lockHolders(spec: ProgramSpec): Map<number, number> {
  let holders = holdersOf.get(spec);
  if (holders === undefined) { holders = new Map(); holdersOf.set(spec, holders); }
  return holders;
}

export function* threadProgram(spec: ProgramSpec, thread: number): ThreadProgram {
  for (let phase = 0; phase < spec.phaseCount; phase++) {
    const plan = spec.plans[thread]![phase]!;
    for (const { address, owner } of spec.owned) {
      if (writerOf(spec, owner, phase) === thread) yield { op: 'store', address, value: ownedValue(address, phase) };
    }
    const bandBase = spec.pageCount * pageBytes;
    const bandWriter = phase % spec.threadCount;
    if (thread === bandWriter) {
      for (let k = 0; k < (spec.bandPages ?? 0); k++) yield { op: 'store', address: bandBase + k * pageBytes + 4 * (k % 8), value: bandValue(k, phase) };
      for (let k = 0; k < (spec.bandScanPages ?? 0); k++) {
        for (let l = 1; l < linesPerPage; l++) yield { op: 'store', address: bandScanWord(bandBase, k, l), value: bandValue(k, phase) * linesPerPage + l };
      }
    }
    for (const c of plan.counters) {
      const counter = spec.counters[c]!;
      // Some increments spin on tryLock (chosen without the prng, so every seed's
      // program stays as it was): a free token resting at another node must be granted.
      if ((thread + c + phase) % 3 === 0) {
        let tries = 0;
        for (;;) {
          const result = yield* sync({ kind: 'lock', lockId: counter.lockId, threadId: thread, tryOnly: true });
          if (!result.ok || result.value !== 'busy') break;
          if (++tries > tryLockSpinCountMax) throw new Error(`thread ${thread}: tryLock of lock ${counter.lockId} busy ${tries} times`);
        }
      } else {
        yield* sync({ kind: 'lock', lockId: counter.lockId, threadId: thread });
      }
      // Mutual exclusion, asserted (not only seen in the counters' final values): one holder at a time.
      const holders = lockHolders(spec);
      const other = holders.get(counter.lockId);
      if (other !== undefined) throw new Error(`thread ${thread} got lock ${counter.lockId} while thread ${other} holds it`);
      holders.set(counter.lockId, thread);
      const value = yield* load(counter.address);
      yield { op: 'store', address: counter.address, value: value + 1 };
      holders.delete(counter.lockId);
      yield* sync({ kind: 'unlock', lockId: counter.lockId, threadId: thread });
    }
    for (const a of plan.atomics) {
      yield* sync({ kind: 'atomic', op: 'add', address: spec.atomics[a]!, width: 4, operands: ['1'], timeoutMs: -1 });
    }
    for (let k = 0; k < plan.casIncrements; k++) {
      yield* casLock(spec.casCounter.lockAddress);
      const value = yield* load(spec.casCounter.address);
      yield { op: 'store', address: spec.casCounter.address, value: value + 1 };
      yield* atomic('store', spec.casCounter.lockAddress, ['0']);
      yield* atomic('notify', spec.casCounter.lockAddress, ['1']);
    }
    yield* phaseBarrier(spec);
    for (const k of plan.checks) {
      const { address } = spec.owned[k]!;
      const value = yield* load(address);
      const expected = ownedValue(address, phase);
      if (value !== expected) throw new Error(`thread ${thread} phase ${phase}: word @${address} is ${value}, expected ${expected}`);
    }
    if (thread !== bandWriter) {
      for (let k = 0; k < (spec.bandPages ?? 0); k++) {
        const value = yield* load(bandBase + k * pageBytes + 4 * (k % 8));
        if (value !== bandValue(k, phase)) throw new Error(`thread ${thread} phase ${phase}: band page ${k} reads ${value}, expected ${bandValue(k, phase)}`);
      }
      for (let k = 0; k < (spec.bandScanPages ?? 0); k++) {
        for (let l = 1; l < linesPerPage; l++) {
          const value = Number(yield* atomic('load', bandScanWord(bandBase, k, l), []));
          const expected = bandValue(k, phase) * linesPerPage + l;
          if (value !== expected) throw new Error(`thread ${thread} phase ${phase}: Atomics.load of band page ${k} line ${l} is ${value}, expected ${expected}`);
        }
      }
    }
    // A second barrier keeps the next phase's stores away from these checks.
    yield* phaseBarrier(spec);
  }
  if (thread !== 0) return;
  const expect = expectedCounts(spec);
  for (let c = 0; c < spec.counters.length; c++) {
    const value = yield* load(spec.counters[c]!.address);
    if (value !== expect.counters[c]) throw new Error(`counter ${c} is ${value}, expected ${expect.counters[c]}`);
  }
  const casValue = yield* load(spec.casCounter.address);
  if (casValue !== expect.casCount) throw new Error(`cas-locked counter is ${casValue}, expected ${expect.casCount}`);
  for (let a = 0; a < spec.atomics.length; a++) {
    const plain = yield* load(spec.atomics[a]!);
    const result = yield* sync({ kind: 'atomic', op: 'load', address: spec.atomics[a]!, width: 4, operands: [], timeoutMs: -1 });
    const atomic = result.ok ? result.value : null;
    if (plain !== expect.atomics[a] || atomic !== String(expect.atomics[a])) {
      throw new Error(`atomic ${a}: plain ${plain}, Atomics.load ${atomic}, expected ${expect.atomics[a]}`);
    }
  }
}

export function expectedCounts(spec: ProgramSpec): { counters: number[]; atomics: number[]; casCount: number } {
  const counters = spec.counters.map(() => 0);
  const atomics = spec.atomics.map(() => 0);
  let casCount = 0;
  for (const plan of spec.plans) for (const phase of plan) {
    casCount += phase.casIncrements;
    for (const c of phase.counters) counters[c]!++;
    for (const a of phase.atomics) atomics[a]!++;
  }
  return { counters, atomics, casCount };
}

export interface RunOutcome { messageCount: number; stepCount: number; pagesLent: number; aheadFetches: number; shippedOps: number; quietNotifies: number; threadNotifies: number; keepTakes: number; lockPushes: number; lockPushesTaken: number; writtenAhead: number; fastTouches: number; staleDropped: number; lineShares: number; lineEvictions: number; lineSharesAhead: number }

/** Builds the cluster for a seed, runs the program, checks final memory at the homes. */
/**
 * `concurrent`: 'seeded' (half the seeds run app threads inside engine calls,
 * SimCluster's concurrentStepsMax), 'always' or 'never'.
 */
export function runSeed(
  seed: number, protocol = 'hlrc', concurrent: 'seeded' | 'always' | 'never' = 'seeded', earlyFlushChance = 0,
  /** hlrc: Atomics by line ownership (src/protocol/lines.ts); 'seeded': half the seeds. */
  atomicLines: 'seeded' | 'always' | 'never' = 'never',
  /** Lock tokens in a node table (src/channel/lock-tokens.ts); 'seeded': half the seeds, tables of 1..16 slots (slots re-keyed, locks without room). */
  lockTokens: 'seeded' | 'always' | 'never' = 'seeded',
  /** The keep window of contended lock tokens (src/protocol/lock-keep.ts); 'seeded': half the seeds. */
  lockKeep: 'seeded' | 'always' | 'never' = 'seeded',
  /** hlrc: deferred diffs (EngineOptions.deferDiffPageCountMin, 1..3 pages); 'seeded': a quarter of the seeds. */
  deferDiffs: 'seeded' | 'always' | 'never' = 'seeded',
  /** The phases' barriers written with Atomics (ProgramSpec.atomicBarrier); 'seeded': a quarter of the seeds. */
  atomicBarrier: 'seeded' | 'always' | 'never' = 'never',
  /** hlrc: looks for stale copies at random steps (SimOptions.staleRefreshChance, 1..5%); 'seeded': a quarter of the seeds. */
  staleRefresh: 'seeded' | 'always' | 'never' = 'seeded',
): RunOutcome {
  const prng = new Prng(seed ^ 0x5eed);
  const nodeCount = 1 + prng.int(4);
  const spec = generateProgram(prng, nodeCount);
  // Drawn after the program so earlier seeds keep their programs.
  const reclaimDraw = prng.next();
  const placement = prng.chance(0.5) ? 'roundRobin' : 'block';
  const deliverBias = 0.2 + prng.next() * 0.7;
  // Drawn last so seeds that run without it keep their schedules.
  const concurrentDraw = prng.next();
  const concurrentStepsMax = concurrent === 'never' ? 0 : concurrent === 'always' || concurrentDraw < 0.5 ? 1 + Math.floor(concurrentDraw * 8) : 0;
  // Drawn after everything else (earlier seeds keep their runs): half the
  // seeds run hlrc with a twin limit of 1..4 pages, so the oldest dirty pages
  // are flushed early whenever a node writes more pages of other homes.
  const twinDraw = prng.next();
  const twinPageCountMax = twinDraw < 0.5 ? 1 + Math.floor(twinDraw * 8) : 0;
  // Drawn after everything else: half the seeds change their writer sets
  // every two phases over 4..7 phases (extra phases' plans drawn here), so
  // homes move to sole writers and then see other writers.
  const shiftDraw = prng.next();
  if (shiftDraw < 0.5 && spec.threadCount > 1) {
    spec.ownerShift = 1 + Math.floor(shiftDraw * 2 * (spec.threadCount - 1));
    const phaseCount = 4 + prng.int(4);
    for (const plan of spec.plans) {
      while (plan.length < phaseCount) {
        plan.push({
          casIncrements: prng.int(2),
          counters: Array.from({ length: prng.int(2) }, () => prng.int(spec.counters.length)),
          atomics: Array.from({ length: prng.int(2) }, () => prng.int(spec.atomics.length)),
          checks: Array.from({ length: prng.int(4) }, () => prng.int(spec.owned.length)),
        });
      }
    }
    spec.phaseCount = Math.max(spec.phaseCount, phaseCount);
    // Drawn last: half of these seeds change writers every phase.
    spec.ownerShiftPeriod = prng.next() < 0.5 ? 1 : 2;
  }
  // A quarter of the seeds (those fetching two pages at a time, below) sweep a band of 12 pages every phase.
  if (seed % 4 === 3) spec.bandPages = 12;
  // Half of those scan the lines of the band's first 3 pages with Atomics.load (read copies ahead).
  if (seed % 8 === 7) spec.bandScanPages = 3;
  if (atomicBarrier === 'always' || (atomicBarrier === 'seeded' && Math.floor(seed / 32) % 4 === 2)) spec.atomicBarrier = true;
  const cluster = new SimCluster({
    seed, nodeCount, pageCount: spec.pageCount + (spec.bandPages ?? 0), protocol, placement, deliverBias, concurrentStepsMax, twinPageCountMax, earlyFlushChance,
    // Half the seeds keep read-ahead pages at no access until touched (wasted read-ahead stats).
    readAheadTracking: seed % 2 === 1,
    // A quarter of them fetch at most two pages at a time: streams of a few pages continue, and stream (issue 13).
    ...(seed % 4 === 3 ? { prefetchPageCount: 2 } : {}),
    ...(reclaimDraw < 0.5 ? { logReclaimCount: 1 + Math.floor(reclaimDraw * 8) } : {}),
    ...(protocol === 'sc' ? { afterStep: checkSingleWriter } : {}),
    ...(atomicLines === 'always' || (atomicLines === 'seeded' && seed % 4 < 2)
      ? { atomicLines: true, lineRefuseChance: (seed % 5) / 10 } : {}),
    ...(lockTokens === 'always' || (lockTokens === 'seeded' && Math.floor(seed / 2) % 2 === 0)
      ? { lockTokenSlots: 1 << (seed % 5) } : {}),
    ...(lockKeep === 'always' || (lockKeep === 'seeded' && Math.floor(seed / 4) % 2 === 0) ? { lockKeep: true } : {}),
    ...(deferDiffs === 'always' || (deferDiffs === 'seeded' && Math.floor(seed / 8) % 4 === 1) ? { deferDiffPageCountMin: 1 + (seed % 3) } : {}),
    // Half the seeds twin pages ahead of sequential write streams (the native fast path's write-ahead), 1, 2, 4 or 15 at most.
    ...(Math.floor(seed / 16) % 2 === 1 ? { writeAheadPageCountMax: [1, 2, 4, 15][seed % 4]! } : {}),
    // Half the seeds serve read-ahead copies' first touches in the "signal handler" (tracked seeds only use it).
    ...(Math.floor(seed / 32) % 2 === 1 ? { touchAhead: true } : {}),
    // Half the seeds upgrade a node's own pages ahead of its write streams (as far as the engine asks: not sc, not race mode).
    ...(Math.floor(seed / 128) % 2 === 1 ? { ownWriteAhead: true } : {}),
    ...(staleRefresh === 'always' || (staleRefresh === 'seeded' && Math.floor(seed / 64) % 4 === 3) ? { staleRefreshChance: (1 + (seed % 5)) / 100 } : {}),
  });
  for (let t = 0; t < spec.threadCount; t++) cluster.addThread(t % nodeCount, (index) => threadProgram(spec, index));
  notifyTally.notified = 0;
  notifyTally.woken = 0;
  cluster.run();
  cluster.drain();
  if (notifyTally.notified !== notifyTally.woken) throw new Error(`the notifies counted ${notifyTally.notified} waiters, the waits woken were ${notifyTally.woken}`);
  const pagesLent = cluster.engines.reduce((sum, engine) => sum + (engine.counters().pagesLent ?? 0), 0);
  const aheadFetches = cluster.engines.reduce((sum, engine) => sum + (engine.counters().prefetchAheadFetches ?? 0), 0);
  const shippedOps = cluster.shippedResults;
  const threadNotifies = cluster.notifiesInThread;
  const quietNotifies = cluster.engines.reduce((sum, engine) => sum + ((engine.counters() as { lineNotifiesQuiet?: number }).lineNotifiesQuiet ?? 0), 0);
  const keepTakes = cluster.engines.reduce((sum, engine) => sum + (engine.counters().lockKeepTakes ?? 0), 0);
  const lockPushes = cluster.engines.reduce((sum, engine) => sum + (engine.counters().lockPushes ?? 0), 0);
  const lockPushesTaken = cluster.engines.reduce((sum, engine) => sum + (engine.counters().lockPushesTaken ?? 0), 0);
  const writtenAhead = cluster.memories.reduce((sum, memory) => sum + memory.writeAheadPages, 0);
  const fastTouches = cluster.memories.reduce((sum, memory) => sum + memory.fastTouches, 0);
  const staleDropped = cluster.engines.reduce((sum, engine) => sum + (engine.counters().staleDropped ?? 0), 0);
  const lineShares = cluster.engines.reduce((sum, engine) => sum + ((engine.counters() as { lineShareGrants?: number }).lineShareGrants ?? 0), 0);
  const lineEvictions = cluster.engines.reduce((sum, engine) => sum + ((engine.counters() as { lineEvictions?: number }).lineEvictions ?? 0), 0);
  const lineSharesAhead = cluster.engines.reduce((sum, engine) => sum + ((engine.counters() as { lineShareAheadGrants?: number }).lineShareAheadGrants ?? 0), 0);
  if (protocol === 'sc') return { messageCount: cluster.messageCount, stepCount: cluster.stepCount, pagesLent, aheadFetches, shippedOps, quietNotifies, threadNotifies, keepTakes, lockPushes, lockPushesTaken, writtenAhead, fastTouches, staleDropped, lineShares, lineEvictions, lineSharesAhead };
  // Homes converge: every word's home copy holds its final value.
  const last = spec.phaseCount - 1;
  const expect = expectedCounts(spec);
  const homeWord = (address: number): number => {
    // The home as its holder knows it (a lent page's home is known to its lender and borrower only).
    const page = Math.floor(address / pageBytes);
    const home = cluster.engines.findIndex((engine) => engine.homeOf(page) === engine.nodeId);
    return readU32(cluster.memories[home]!.data, address);
  };
  for (const { address } of spec.owned) {
    const value = homeWord(address);
    if (value !== ownedValue(address, last)) throw new Error(`home copy of word @${address} is ${value}, expected ${ownedValue(address, last)}`);
  }
  spec.counters.forEach((c, k) => {
    if (homeWord(c.address) !== expect.counters[k]) throw new Error(`home copy of counter ${k} is ${homeWord(c.address)}`);
  });
  for (const engine of cluster.engines) {
    const sizes = engine.tableSizes();
    if (sizes['pending'] !== 0) throw new Error(`node ${engine.nodeId} ends with pending requests`);
    if ((sizes['linePending'] ?? 0) !== 0 || (sizes['lineWaiters'] ?? 0) !== 0) throw new Error(`node ${engine.nodeId} ends with line requests or waiters`);
  }
  return { messageCount: cluster.messageCount, stepCount: cluster.stepCount, pagesLent, aheadFetches, shippedOps, quietNotifies, threadNotifies, keepTakes, lockPushes, lockPushesTaken, writtenAhead, fastTouches, staleDropped, lineShares, lineEvictions, lineSharesAhead };
}
