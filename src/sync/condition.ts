// A condition variable tied to a Mutex: a sequence word that signal and
// broadcast advance; waiters sleep on it with the mutex released.
//
// A wake-up that wakes nobody costs nothing in a multi-node run (issue 13,
// TSP: every job ended with a broadcast under the lock, and each was an
// Atomics.add and an Atomics.notify, a round trip to the node's manager at
// least and, away from the word's line, one to its directory as well, all
// inside the critical section). A waiter counts itself in a plain word while
// it holds the mutex, and says which mutex it waits with (`wordMutex`, bound
// once by the first waiter); a signal or broadcast made while its thread holds
// that same mutex reads the count with plain loads: the mutex orders every
// waiter's count before that read (release consistency), so a count of zero
// means nobody is waiting or on the way to waiting, and both Atomics ops are
// skipped. Anything else (no mutex held, another mutex, an unbound condition,
// one node, plain node) signals as before.
//
// A condition used with two mutexes (POSIX leaves it undefined; JavaScript
// allows it), or with a mutex over memory that is not dsm's: a waiter whose
// mutex is not the bound one is not counted, so a broadcast under the bound
// mutex may skip it; in a multi-node run it therefore sleeps at most
// conditionUncountedWaitMsMax at a time and then returns as woken (a spurious
// wake-up, which every condition variable allows: callers re-check their
// predicate in a loop). On one node and under plain node nothing is counted
// or skipped, and waits are as before.

import { conditionUncountedWaitMsMax, pageBytes } from '../constants.js';
import { DsmError } from '../errors.js';
import { allocateWords, checkHandle } from './handle.js';
import { holdsRoutedMutex, routedMutexId, soleHeldRoutedMutex, type Mutex } from './mutex.js';
import { multiNodeRun } from './route.js';

const magic = 0x434f4e44; // 'COND'
const wordMagic = 0;
const wordSequence = 1;
/** The id + 1 of the engine-routed mutex waiters use (0: none yet); set once, by compareExchange. */
const wordMutex = 2;
/**
 * Threads inside wait() with the bound mutex, and the bound word again (as
 * wordMutex): plain loads and stores, only while holding that mutex, on a
 * page of their own. A signaller reads these, not wordMutex, and with plain
 * loads: data the mutex guards like any other, on a page no Atomics op writes,
 * so the copy a signaller's node has stays valid across acquires (the page of
 * the Atomics words changes with every signal that does wake someone, and with
 * its line's moves; a read there would often be a fault and a fetch).
 */
const wordWaiters = pageBytes / 4;
const wordMutexSeen = wordWaiters + 1;
export const conditionWordCount = wordMutexSeen + 1;

export class Condition {
  readonly handle: Int32Array;
  /** The bound word (a mutex id + 1) once this thread bound the condition or found it bound (0: not known here). */
  private boundHere = 0;

  constructor(handle?: Int32Array) {
    if (handle === undefined) {
      this.handle = allocateWords(conditionWordCount);
      Atomics.store(this.handle, wordMagic, magic);
    } else {
      this.handle = checkHandle(handle, conditionWordCount, 'Condition', magic);
    }
  }

  static from(handle: Int32Array): Condition {
    return new Condition(handle);
  }

  /**
   * Releases `mutex`, sleeps until signalled (or `timeoutMs` passes), then
   * takes `mutex` again. Returns false on timeout. As with every condition
   * variable, wake-ups may be spurious: wait in a loop that checks the predicate.
   */
  wait(mutex: Mutex, timeoutMs = Infinity): boolean {
    if (!mutex.isLockedByMe) {
      throw new DsmError('DSM_ERR_NOT_OWNER', 'Condition.wait: the calling thread must hold the mutex');
    }
    const mutexId = routedMutexId(mutex);
    const counted = this.bindTo(mutexId);
    if (counted) {
      this.handle[wordMutexSeen] = mutexId! + 1;
      this.handle[wordWaiters] = this.handle[wordWaiters]! + 1;
    }
    const sequence = Atomics.load(this.handle, wordSequence);
    mutex.unlock();
    // A waiter a skipping signaller cannot see (not counted, in a run where signals may be skipped) wakes by itself now and then.
    const sleepMs = counted || !multiNodeRun() ? timeoutMs : Math.min(timeoutMs, conditionUncountedWaitMsMax);
    const outcome = Atomics.wait(this.handle, wordSequence, sequence, sleepMs);
    mutex.lock();
    if (counted) this.handle[wordWaiters] = this.handle[wordWaiters]! - 1;
    return outcome !== 'timed-out' || sleepMs < timeoutMs;
  }

  signal(): void {
    if (this.nobodyWaits()) return;
    Atomics.add(this.handle, wordSequence, 1);
    Atomics.notify(this.handle, wordSequence, 1);
  }

  broadcast(): void {
    if (this.nobodyWaits()) return;
    Atomics.add(this.handle, wordSequence, 1);
    Atomics.notify(this.handle, wordSequence);
  }

  /**
   * Binds the condition to the engine-routed mutex `mutexId` (null: not
   * routed) unless it is bound already. Returns whether it is bound to this
   * mutex (a waiter is then counted). One compareExchange the first time this
   * thread's Condition object looks; a binding never changes.
   */
  private bindTo(mutexId: number | null): boolean {
    if (mutexId === null) return false;
    if (this.boundHere === 0) {
      const bound = Atomics.compareExchange(this.handle, wordMutex, 0, mutexId + 1);
      this.boundHere = bound === 0 ? mutexId + 1 : bound;
    }
    return this.boundHere === mutexId + 1;
  }

  /**
   * Whether this thread holds the mutex the condition is bound to and no
   * thread waits under it: then a signal would wake nobody. Plain loads: the
   * held mutex orders every counted waiter's stores before them. A condition
   * nobody has waited on yet is bound here to the one mutex this thread holds
   * (a signaller with none, or several, signals as before).
   */
  private nobodyWaits(): boolean {
    const seen = this.handle[wordMutexSeen]!;
    if (seen > 0) return holdsRoutedMutex(seen - 1) && this.handle[wordWaiters] === 0;
    if (this.boundHere === 0) {
      const held = soleHeldRoutedMutex();
      if (held === null || !this.bindTo(held)) return false;
    }
    if (!holdsRoutedMutex(this.boundHere - 1)) return false;
    // Bound to the mutex held here, and no counted waiter has said so under it yet: nobody waits. Say so for the next signallers.
    this.handle[wordMutexSeen] = this.boundHere;
    return this.handle[wordWaiters] === 0;
  }
}
