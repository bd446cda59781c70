// A FIFO mutex: a ticket lock. Each locker takes the next ticket with one
// Atomics.add and waits until the `serving` word reaches it, so threads get
// the lock in the order they asked for it, on any node.

import { DsmError } from '../errors.js';
import { allocateWords, checkHandle, ownerToken } from './handle.js';

const magic = 0x4d555458; // 'MUTX'
const wordMagic = 0;
const wordNext = 1;
const wordServing = 2;
const wordOwner = 3;
export const mutexWordCount = 4;

export class Mutex {
  readonly handle: Int32Array;

  constructor(handle?: Int32Array) {
    if (handle === undefined) {
      this.handle = allocateWords(mutexWordCount);
      Atomics.store(this.handle, wordMagic, magic);
    } else {
      this.handle = checkHandle(handle, mutexWordCount, 'Mutex', magic);
    }
  }

  /** Rebuilds a mutex from the handle another thread sent. */
  static from(handle: Int32Array): Mutex {
    return new Mutex(handle);
  }

  lock(): void {
    const me = ownerToken();
    if (Atomics.load(this.handle, wordOwner) === me) {
      throw new DsmError('DSM_ERR_NOT_OWNER', 'Mutex.lock: this thread already holds the mutex (it is not recursive)');
    }
    const ticket = Atomics.add(this.handle, wordNext, 1);
    for (;;) {
      const serving = Atomics.load(this.handle, wordServing);
      if (serving === ticket) break;
      Atomics.wait(this.handle, wordServing, serving);
    }
    Atomics.store(this.handle, wordOwner, me);
  }

  /** Takes the mutex only if nobody holds or waits for it. */
  tryLock(): boolean {
    const serving = Atomics.load(this.handle, wordServing);
    if (Atomics.compareExchange(this.handle, wordNext, serving, serving + 1) !== serving) return false;
    Atomics.store(this.handle, wordOwner, ownerToken());
    return true;
  }

  unlock(): void {
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

  get isLockedByMe(): boolean {
    return Atomics.load(this.handle, wordOwner) === ownerToken();
  }
}
