// worker_threads.postMessageToThread (Node 22.5 on, and Node 20's backport) with dsm's thread ids: Node's takes
// and reports Node's own ids, which are not the ids dsm's threads show (`threadId`, docs/LIMITS.md "Thread ids").
// Between threads of one node, the target's id is translated to Node's before Node's function delivers the
// message, and the source id a 'workerMessage' listener hears back to dsm's, through the node's manager, which
// knows both ids of each of its threads (their hello). To a thread on another node (session 39; refused before),
// the message goes through the managers as a postMessage does (src/runtime/remote-workers.ts, "Posts to a
// thread": dsm's clone, a release and an acquire, MessagePorts relayed); the receiving thread emits
// 'workerMessage' and answers what its listeners did, and the poster's promise settles as Node's would: with
// nothing, or Node's ERR_WORKER_MESSAGING_FAILED (no such thread, no listener, or the thread ended before it read
// the message: under Node that last one waits for good), ERR_WORKER_MESSAGING_ERRORED or
// ERR_WORKER_MESSAGING_TIMEOUT.

import type { ChannelClient } from '../channel/client.js';
import { transferListOf, type MessageBytes } from '../channel/clone.js';
import { threadPostResults, type ThreadEvent } from '../channel/wire.js';
import { DsmError } from '../errors.js';
import { portRelays } from './port-relay.js';

type PostMessageToThread = (threadId: unknown, ...rest: unknown[]) => Promise<void>;

/** Node's own error for a code its postMessageToThread rejects with, as Node words it (lib/internal/errors.js). */
const nodeMessages = {
  ERR_WORKER_MESSAGING_FAILED: 'Cannot find the destination thread or listener',
  ERR_WORKER_MESSAGING_ERRORED: 'The destination thread threw an error while processing the message',
  ERR_WORKER_MESSAGING_TIMEOUT: 'Sending a message to another thread timed out',
} as const;

/** An Error as Node makes its own (`Error [CODE]: message`, a `code`), for a rejection that happened on another node. */
function nodeError(code: keyof typeof nodeMessages): Error {
  const error = new Error(nodeMessages[code]);
  Object.defineProperty(error, 'toString', { value(this: Error) { return `${this.name} [${code}]: ${this.message}`; }, enumerable: false, writable: true, configurable: true });
  error.stack = `Error [${code}]: ${error.message}${(error.stack ?? '').slice(`Error: ${error.message}`.length)}`;
  (error as { code?: string }).code = code;
  return error;
}

export function installPostMessageToThread(wt: Record<string, unknown>, channel: ChannelClient, threadIdSeen: number, nodeCount: number): void {
  const native = wt.postMessageToThread;
  if (typeof native !== 'function') return;
  const post = native as PostMessageToThread;
  // A source's id is never reused (Node's nor dsm's), so a translation found holds. A target's is asked each
  // time: a thread that ended is no target any more (-1), whose post fails at once as Node's does.
  const seenOf = new Map<number, number>();
  function nativeIdOf(id: number): number {
    return channel.call({ op: 'thread-native-id', threadIdSeen: id }) as number;
  }
  // Posts to threads on other nodes waiting for their answers, by this thread's id for them.
  const waiting = new Map<number, (result: number) => void>();
  let nextId = 0;
  function remotePost(threadId: number, value: unknown, transferList: unknown, timeout: unknown): Promise<void> {
    // Node's argument handling, in its order: a number in the transferList's place is the timeout.
    if (typeof transferList === 'number' && timeout === undefined) {
      timeout = transferList;
      transferList = [];
    }
    // A timeout Node would refuse: Node's own error (its validation runs before the post goes anywhere).
    if (timeout !== undefined && (typeof timeout !== 'number' || !(timeout >= 0))) return post(-1, value, [], timeout);
    const relays = portRelays();
    if (relays === null) throw new DsmError('DSM_ERR_INTERNAL', 'a thread of a cluster has port relays');
    const message: MessageBytes & { ports?: string[] } = relays.serialize(value, transferList as readonly unknown[] | undefined, 'a thread');
    const id = nextId++;
    return new Promise<void>((resolve, reject) => {
      // The answer always comes (no thread, and a thread's end, are answered too): this thread stays alive until then.
      const alive = setInterval(() => {}, 2 ** 31 - 1);
      const timer = typeof timeout === 'number' && Number.isFinite(timeout)
        ? setTimeout(() => settle(-1), timeout) : null;
      timer?.unref();
      function settle(result: number): void {
        if (!waiting.delete(id)) return;
        clearInterval(alive);
        if (timer !== null) clearTimeout(timer);
        if (result === -1) reject(nodeError('ERR_WORKER_MESSAGING_TIMEOUT'));
        else if (result === threadPostResults.noListener) reject(nodeError('ERR_WORKER_MESSAGING_FAILED'));
        else if (result === threadPostResults.listenerThrew) reject(nodeError('ERR_WORKER_MESSAGING_ERRORED'));
        else resolve();
      }
      waiting.set(id, settle);
      try {
        channel.call({ op: 'thread-post', threadId, id, ...message }, transferListOf(message.bytes));
      } catch (error) {
        waiting.delete(id);
        clearInterval(alive);
        if (timer !== null) clearTimeout(timer);
        reject(error as Error);
      }
    });
  }
  wt.postMessageToThread = {
    async postMessageToThread(threadId: unknown, ...rest: unknown[]): Promise<void> {
      // Not an id: Node's answer as it is (an ended handle's -1 and the like are routed and fail), kept alive for it.
      if (typeof threadId !== 'number' || !Number.isInteger(threadId) || threadId < 0) return answeredByRouter(threadId, rest);
      const target = threadId === threadIdSeen ? channel.call({ op: 'thread-native-id', threadIdSeen }) as number : nativeIdOf(threadId);
      // Not a thread of this node: its manager finds where it runs (or that it runs nowhere).
      if (target === -1 && nodeCount > 1) return remotePost(threadId, rest[0], rest[1], rest[2]);
      // A thread of this node: Node's own post, which keeps no thread alive (a target that ends before it reads
      // the message leaves it unsettled, and the poster may end: as under node; session 38's build kept the poster
      // alive for good). -1 is no thread: Node rejects with ERR_WORKER_MESSAGING_FAILED, as for an id no thread
      // has; the answer comes from the process's main thread (dsm's manager), so until it does this thread's loop
      // stays alive (the program's main thread is a worker of dsm's; under node its post is answered at once).
      if (target !== -1) return post(target, ...rest);
      return answeredByRouter(target, rest);
    },
  }.postMessageToThread;
  /** Node's post to no thread of this node: the process's main thread answers it (or Node's checks throw), this thread alive until then. */
  async function answeredByRouter(target: unknown, rest: unknown[]): Promise<void> {
    const alive = setInterval(() => {}, 2 ** 31 - 1);
    try {
      return await post(target, ...rest);
    } finally {
      clearInterval(alive);
    }
  }
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
  if (nodeCount === 1) return;
  channel.onEvent((event: ThreadEvent) => {
    if (event.kind === 'thread-post-done') {
      waiting.get(event.id)?.(event.result);
      return;
    }
    if (event.kind !== 'thread-message') return;
    // As Node's receiving side: the listeners run in the message's turn; what they did is the answer. The source
    // is dsm's id already (emitted past the translation above). A message that does not decode is "errored".
    let result: number = threadPostResults.noListener;
    try {
      const value = portRelays()!.deserialize(event);
      if (emit.call(process, 'workerMessage', value, event.source)) result = threadPostResults.delivered;
    } catch {
      result = threadPostResults.listenerThrew;
    }
    channel.post({ op: 'thread-message-done', key: event.key, result });
  });
}
