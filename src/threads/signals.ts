// The program's own SIGINT and SIGTERM listeners.
//
// Under dsm the program's main thread is a Node worker, and a worker's
// process.on('SIGINT') never fires (Node delivers signals to the process's
// main thread only, which is dsm's). So a program that cleans up on Ctrl-C
// (prints what it has, exits with its own code) lost its handler: the run
// ended with 130 and dsm's interrupted line (users18, sigint-handler.mjs).
// Now the main thread tells its manager when it gains its first or loses its
// last listener for a signal ('signal-listeners'); while it listens, node 0
// hands the signal to it (a 'signal' event, emitted here as Node emits it:
// process.emit(signal, signal)) instead of ending the run, as a plain node
// process leaves the signal to the program's handler. The handler runs when
// the thread's loop runs, as Node's does on a main thread.

import type { ChannelClient } from '../channel/client.js';
import type { ProgramSignal } from '../channel/wire.js';

function isForwarded(event: unknown): event is ProgramSignal {
  return event === 'SIGINT' || event === 'SIGTERM';
}

export function forwardProgramSignals(channel: ChannelClient): void {
  const listening = new Set<ProgramSignal>();
  const update = (signal: ProgramSignal, now: boolean): void => {
    if (now === listening.has(signal)) return;
    if (now) listening.add(signal);
    else listening.delete(signal);
    channel.post({ op: 'signal-listeners', signal, listening: now });
  };
  // 'newListener' comes before the listener is added, 'removeListener' after it is removed.
  process.on('newListener', (event: unknown) => {
    if (isForwarded(event)) update(event, true);
  });
  process.on('removeListener', (event: unknown) => {
    if (isForwarded(event)) update(event, process.listenerCount(event) > 0);
  });
  channel.onEvent((event) => {
    if (event.kind === 'signal') process.emit(event.signal, event.signal);
  });
}
