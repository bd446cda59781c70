// The last module an app thread evaluates before dsm's entry (src/threads/entry.ts imports it last; the bundle
// keeps it a file of its own, scripts/bundle.mjs): it says the thread is about to start the entry, a module with
// top-level await, in the thread's boot word (src/channel/thread-config.ts, trackBoot). Node 20's V8 aborts the
// process when a termination is pending as such a module starts; whoever ends a thread in that state waits the
// few microseconds until the entry's first line. A thread whose end was asked before it got here stops here (a
// module without top-level await, where a termination is safe) and waits for it. Self-contained: no other
// module of dsm's is loaded from here.
import { workerData } from 'node:worker_threads';

/** The boot word's states (the same numbers as in src/channel/thread-config.ts; test/unit/boot-termination.test.ts checks). */
export const bootStates = { booting: 0, loaded: 1, entered: 2, endAsked: 3, parked: 4 } as const;

const word = (workerData as { __dsmBoot?: unknown } | null)?.__dsmBoot;
if (word instanceof Int32Array) {
  if (Atomics.compareExchange(word, 0, bootStates.booting, bootStates.loaded) === bootStates.endAsked) {
    Atomics.store(word, 0, bootStates.parked);
    Atomics.notify(word, 0);
    // Until the termination lands.
    for (;;) Atomics.wait(word, 0, bootStates.parked);
  }
}
