// A FIFO mutex. On one node (a cluster of one, which holds every lock token): a ticket lock — each locker takes the next
// ticket with one Atomics.add and waits until the `serving` word reaches it,
// so threads get the lock in the order they asked for it. In a multi-node run
// the engine's lock manager does the same with messages (src/sync/route.ts):
// its queue is FIFO, and a grant carries the releases the acquirer must see.
// Its token then stays at the node of its last holder until another node
// asks, in the node's lock token table (src/channel/lock-tokens.ts): a thread
// locks a token that rests there free with one compareExchange and unlocks
// with another, no message and no request to its manager. Only when the
// token is not there free does it ask the manager: the token is elsewhere,
// or held by another thread of this node (the manager queues the waiters of
// this node in FIFO order), or the manager took it back to hand it on.
// Across nodes the order is FIFO but for the keep window: a node whose threads
// still take a contended mutex keeps its token for them up to lockKeepMsMax
// after it arrived (src/protocol/lock-keep.ts), so batches replace crossings.
// And a mutex every node takes once between barriers (a reduction, Water's
// energy sum) has its token sent ahead by the manager to the node that has
// not taken it yet in this phase (token pushes, docs/PROTOCOL.md): that
// node's lock then asks its own node's manager only, with no message.

import { DsmError } from '../errors.js';
import { allocateWords, checkHandle, namedWait, ownerToken } from './handle.js';
import { engineRoute, type EngineRoute } from './route.js';
import { takeHeldHere, takeTaken } from '../channel/lock-tokens.js';

/** Engine-routed mutexes this thread holds (by id): the manager knows, but asking it would cost a message. */
const heldHere = new Set<number>();

const magic = 0x4d555458; // 'MUTX'
const wordMagic = 0;
const wordNext = 1;
const wordServing = 2;
const wordOwner = 3;
export const mutexWordCount = 4;

export class Mutex {
  readonly handle: Int32Array;
  private readonly route: EngineRoute | null;

  constructor(handle?: Int32Array) {
    if (handle === undefined) {
      this.handle = allocateWords(mutexWordCount);
      Atomics.store(this.handle, wordMagic, magic);
    } else {
      this.handle = checkHandle(handle, mutexWordCount, 'Mutex', magic);
    }
    this.route = engineRoute(this.handle);
  }

  /** Rebuilds a mutex from the handle another thread sent. */
  static from(handle: Int32Array): Mutex {
    return new Mutex(handle);
  }

  lock(): void {
    const route = this.route;
    if (route !== null) {
      if (heldHere.has(route.id)) throw notRecursive();
      // The token rests here free: one compareExchange.
      if (route.tokens !== null && route.tokens.take(route.id, route.giveBack) === takeTaken) {
        heldHere.add(route.id);
        return;
      }
      route.call('lock', ownerToken());
      heldHere.add(route.id);
      return;
    }
    const me = ownerToken();
    if (this.isLockedByMe) throw notRecursive();
    const ticket = Atomics.add(this.handle, wordNext, 1);
    for (;;) {
      const serving = Atomics.load(this.handle, wordServing);
      if (serving === ticket) break;
      namedWait(this.handle, wordServing, serving, 1); // waitKindMutex
    }
    Atomics.store(this.handle, wordOwner, me);
  }

  /** Takes the mutex only if nobody holds or waits for it. */
  tryLock(): boolean {
    const route = this.route;
    if (route !== null) {
      if (heldHere.has(route.id)) return false;
      if (route.tokens !== null) {
        const taken = route.tokens.take(route.id, route.giveBack);
        if (taken === takeHeldHere) return false;
        if (taken === takeTaken) { heldHere.add(route.id); return true; }
      }
      if (route.call('lock', ownerToken(), { tryOnly: true }) === 'busy') return false;
      heldHere.add(route.id);
      return true;
    }
    const serving = Atomics.load(this.handle, wordServing);
    if (Atomics.compareExchange(this.handle, wordNext, serving, serving + 1) !== serving) return false;
    Atomics.store(this.handle, wordOwner, ownerToken());
    return true;
  }

  unlock(): void {
    if (this.route !== null) {
      if (!heldHere.has(this.route.id)) {
        throw new DsmError('DSM_ERR_NOT_OWNER', 'Mutex.unlock: this thread does not hold the mutex; only the thread that locked it may unlock it');
      }
      heldHere.delete(this.route.id);
      // In the table in this thread's hands (nobody waits): one compareExchange. Else the manager hands it on.
      if (this.route.tokens !== null && this.route.tokens.give(this.route.id)) return;
      this.route.post('unlock', ownerToken());
      return;
    }
    const owner = Atomics.load(this.handle, wordOwner);
    if (owner !== ownerToken()) {
      throw new DsmError('DSM_ERR_NOT_OWNER', owner === 0
        ? 'Mutex.unlock: the mutex is not locked'
        : 'Mutex.unlock: this thread does not hold the mutex; only the thread that locked it may unlock it');
    }
    Atomics.store(this.handle, wordOwner, 0);
    Atomics.add(this.handle, wordServing, 1);
    Atomics.notify(this.handle, wordServing);
  }

  /** Runs `body` with the mutex held. */
  withLock<T>(body: () => T): T {
    this.lock();
    try {
      return body();
    } finally {
      this.unlock();
    }
  }

  /** The engine id when engine-routed, else null. */
  get routeId(): number | null {
    return this.route?.id ?? null;
  }

  get isLockedByMe(): boolean {
    if (this.route !== null) return heldHere.has(this.route.id);
    return Atomics.load(this.handle, wordOwner) === ownerToken();
  }
}

/** The engine id of `mutex` if it is engine-routed (a multi-node run, dsm memory), else null (src/sync/condition.ts). */
export function routedMutexId(mutex: Mutex): number | null {
  return mutex.routeId;
}

/** Whether this thread holds the engine-routed mutex `id` (src/sync/condition.ts: a signal under it may skip). */
export function holdsRoutedMutex(id: number): boolean {
  return heldHere.has(id);
}

/** The engine-routed mutex this thread holds if it holds exactly one, else null (src/sync/condition.ts binds to it). */
export function soleHeldRoutedMutex(): number | null {
  if (heldHere.size !== 1) return null;
  for (const id of heldHere) return id;
  return null;
}

function notRecursive(): DsmError {
  return new DsmError('DSM_ERR_NOT_OWNER', 'Mutex.lock: this thread already holds the mutex (it is not recursive)');
}
