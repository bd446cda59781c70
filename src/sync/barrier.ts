// A reusable barrier for a fixed number of parties. On one node: arrivals
// count up; the last one resets the count and advances the generation, waking
// the rest. In a multi-node run the engine's barrier manager does it with
// 2(n-1) messages for n nodes whatever the threads per node (src/sync/route.ts):
// after the first round each node combines its threads' arrivals into one
// message up a tree rooted at the manager (src/protocol/sync.ts, issue 12.3).

import { DsmError } from '../errors.js';
import { allocateWords, checkHandle, namedWait, ownerToken } from './handle.js';
import { engineRoute, type EngineRoute } from './route.js';

const magic = 0x42415252; // 'BARR'
const wordMagic = 0;
const wordParties = 1;
const wordCount = 2;
const wordGeneration = 3;
export const barrierWordCount = 4;

export class Barrier {
  readonly handle: Int32Array;
  readonly parties: number;
  /** In a multi-node run, the engine's barrier manager (src/sync/route.ts). */
  private readonly route: EngineRoute | null;

  constructor(parties: number, handle?: Int32Array) {
    if (!Number.isInteger(parties) || parties < 1 || parties > 0x7fffffff) {
      throw new DsmError('DSM_ERR_BARRIER_PARTIES', `Barrier: parties must be a positive integer; got ${String(parties)}`);
    }
    if (handle === undefined) {
      this.handle = allocateWords(barrierWordCount);
      Atomics.store(this.handle, wordParties, parties);
      Atomics.store(this.handle, wordMagic, magic);
    } else {
      this.handle = checkHandle(handle, barrierWordCount, 'Barrier', magic);
      const created = Atomics.load(this.handle, wordParties);
      if (created !== parties) {
        throw new DsmError('DSM_ERR_BARRIER_PARTIES', `Barrier.from: the barrier was created for ${created} parties, not ${parties}`);
      }
    }
    this.parties = parties;
    this.route = engineRoute(this.handle);
  }

  /** Rebuilds a barrier from its handle; `parties`, if given, must match the creator's. */
  static from(handle: Int32Array, parties?: number): Barrier {
    const created = Atomics.load(checkHandle(handle, barrierWordCount, 'Barrier', magic), wordParties);
    return new Barrier(parties ?? created, handle);
  }

  /** Waits until all parties have arrived. Returns true in exactly one thread per round (the last to arrive). */
  wait(): boolean {
    if (this.route !== null) return this.route.call('barrier', ownerToken(), { parties: this.parties }) === 'serial';
    const generation = Atomics.load(this.handle, wordGeneration);
    const arrived = Atomics.add(this.handle, wordCount, 1) + 1;
    if (arrived > this.parties) {
      throw new DsmError('DSM_ERR_BARRIER_PARTIES', `Barrier.wait: more than ${this.parties} parties arrived in one round`);
    }
    if (arrived === this.parties) {
      Atomics.store(this.handle, wordCount, 0);
      Atomics.add(this.handle, wordGeneration, 1);
      Atomics.notify(this.handle, wordGeneration);
      return true;
    }
    while (Atomics.load(this.handle, wordGeneration) === generation) {
      namedWait(this.handle, wordGeneration, generation, 2); // waitKindBarrier
    }
    return false;
  }
}
