// worker_threads.postMessageToThread (Node 22.5 on) with dsm's thread ids: Node's takes and reports Node's own
// ids, which are not the ids dsm's threads show (`threadId`, docs/LIMITS.md "Thread ids"). The target's id is
// translated to Node's before Node's function delivers the message, and the source id a 'workerMessage'
// listener hears back to dsm's, through the node's manager, which knows both ids of each of its threads (their
// hello). Between threads of one node only: a thread on another node gets DSM_ERR_INVALID_OPTION.

import type { ChannelClient } from '../channel/client.js';
import { DsmError } from '../errors.js';

type PostMessageToThread = (threadId: unknown, ...rest: unknown[]) => Promise<void>;

export function installPostMessageToThread(wt: Record<string, unknown>, channel: ChannelClient, threadIdSeen: number, nodeId: number, nodeCount: number): void {
  const native = wt.postMessageToThread;
  if (typeof native !== 'function') return;
  const post = native as PostMessageToThread;
  // Ids are never reused (Node's nor dsm's), so a translation found holds; one not found (a worker not started
  // yet) is asked again next time.
  const nativeOf = new Map<number, number>();
  const seenOf = new Map<number, number>();
  function nativeIdOf(id: number): number {
    const known = nativeOf.get(id);
    if (known !== undefined) return known;
    const found = channel.call({ op: 'thread-native-id', threadIdSeen: id }) as number;
    if (found !== -1) nativeOf.set(id, found);
    return found;
  }
  wt.postMessageToThread = {
    async postMessageToThread(threadId: unknown, ...rest: unknown[]): Promise<void> {
      // Not an id (Node's own error), or this thread (ERR_WORKER_MESSAGING_SAME_THREAD): Node's answer as it is.
      if (typeof threadId !== 'number' || !Number.isInteger(threadId) || threadId < 0) return post(threadId, ...rest);
      const target = threadId === threadIdSeen ? channel.call({ op: 'thread-native-id', threadIdSeen }) as number : nativeIdOf(threadId);
      if (target === -1 && nodeCount > 1) {
        throw new DsmError('DSM_ERR_INVALID_OPTION',
          `postMessageToThread(${threadId}): thread ${threadId} is not on this node (node ${nodeId}); dsm delivers postMessageToThread between the threads of one node only: post to a thread on another node with worker.postMessage, parentPort.postMessage or a MessagePort`);
      }
      // -1 is no thread: Node rejects with ERR_WORKER_MESSAGING_FAILED, as for an id no thread has. The answer
      // comes from the process's main thread (dsm's manager): until it does, this thread's loop stays alive (the
      // program's main thread is a worker of dsm's; under node its post is answered at once, in the call).
      const alive = setInterval(() => {}, 2 ** 31 - 1);
      try {
        return await post(target, ...rest);
      } finally {
        clearInterval(alive);
      }
    },
  }.postMessageToThread;
  // The source a 'workerMessage' listener hears is dsm's id of the posting thread.
  const emit = process.emit as (this: unknown, event: string | symbol, ...args: unknown[]) => boolean;
  process.emit = function emitWithDsmSource(this: unknown, event: string | symbol, ...args: unknown[]): boolean {
    if (event === 'workerMessage' && typeof args[1] === 'number') {
      const source = args[1];
      let seen = seenOf.get(source);
      if (seen === undefined) {
        seen = channel.call({ op: 'thread-seen-id', nativeThreadId: source }) as number;
        if (seen !== -1) seenOf.set(source, seen);
      }
      if (seen !== -1) args[1] = seen;
    }
    return emit.call(this, event, ...args);
  } as typeof process.emit;
}
