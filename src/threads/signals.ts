// The program's own signal listeners (SIGINT and SIGTERM, session 45; SIGHUP, SIGQUIT, SIGUSR2, SIGWINCH and
// SIGCONT, session 46: users20's reload on SIGHUP killed the run).
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
// the thread's loop runs, as Node's does on a main thread. The manager is told
// by a call, not a post: when process.on returns, node 0 takes the signal (a
// program that listens and then signals itself found node 0 not told yet).

import type { ChannelClient } from '../channel/client.js';
import type { ProgramSignal } from '../channel/wire.js';
import { programSignalNames } from '../constants.js';

function isForwarded(event: unknown): event is ProgramSignal {
  return (programSignalNames as readonly unknown[]).includes(event);
}

export function forwardProgramSignals(channel: ChannelClient): void {
  const listening = new Set<ProgramSignal>();
  const update = (signal: ProgramSignal, now: boolean): void => {
    if (now === listening.has(signal)) return;
    if (now) listening.add(signal);
    else listening.delete(signal);
    channel.call({ op: 'signal-listeners', signal, listening: now });
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
