// A condition variable tied to a Mutex: a sequence word that signal and
// broadcast advance; waiters sleep on it with the mutex released.

import { DsmError } from '../errors.js';
import { allocateWords, checkHandle } from './handle.js';
import type { Mutex } from './mutex.js';

const magic = 0x434f4e44; // 'COND'
const wordMagic = 0;
const wordSequence = 1;
export const conditionWordCount = 2;

export class Condition {
  readonly handle: Int32Array;

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
    const sequence = Atomics.load(this.handle, wordSequence);
    mutex.unlock();
    const outcome = Atomics.wait(this.handle, wordSequence, sequence, timeoutMs);
    mutex.lock();
    return outcome !== 'timed-out';
  }

  signal(): void {
    Atomics.add(this.handle, wordSequence, 1);
    Atomics.notify(this.handle, wordSequence, 1);
  }

  broadcast(): void {
    Atomics.add(this.handle, wordSequence, 1);
    Atomics.notify(this.handle, wordSequence);
  }
}
