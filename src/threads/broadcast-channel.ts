// BroadcastChannel across nodes. Node's BroadcastChannel reaches the
// instances of a name in every thread of one process; in a cluster of 2 or
// more nodes a program's threads are spread over several processes, so dsm
// replaces it (globalThis and node:worker_threads) with this subclass:
//
// - a post goes to this node's other instances as Node's own (the native
//   post, unchanged: same clone, same order, the same errors), and then to
//   every other node through the channel ('bc-post', a release to each node,
//   as a worker.postMessage is);
// - each node's manager acquires and hands the message to the threads of
//   that node with an instance of the name open ('bc-message' events), and
//   each such thread dispatches a 'message' MessageEvent on each of its open
//   instances, with a clone of its own;
// - a thread tells its manager when it opens its first instance of a name
//   (a call: it is registered before the thread goes on, so a message posted
//   after anything this thread did next reaches it) and closes its last.
//
// dsm buffers in a message travel by range (src/channel/clone.ts) with a
// weight the sender's node gives once to each other node ('escape-broadcast'),
// and each receiving manager splits its node's among the threads it hands the
// message to (src/runtime/heap-service.ts, expectSharedHolds): a thread holds
// its share once, however many instances it has open, and a thread with none
// open any more gives it back ('holds-unread'), so the buffers of broadcast
// messages are reused once every reader dropped them (before session 40 they
// were kept for good). Messages from one sender
// arrive in order on every node; as under Node, nothing orders the messages of
// different senders.

import { BroadcastChannel as NodeBroadcastChannel } from 'node:worker_threads';
import type { ChannelClient } from '../channel/client.js';
import { deserializeMessage, heldRangesOf, serializeMessage, transferListOf, type BufferRanges } from '../channel/clone.js';
import type { ChannelEvent } from '../channel/wire.js';

/** Node's class, held before dsm replaces the exported one. */
const NativeBroadcastChannel = NodeBroadcastChannel;

export function makeBroadcastChannelClass(channel: ChannelClient, ranges: BufferRanges): typeof NodeBroadcastChannel {
  /** This thread's open instances, by name. */
  const open = new Map<string, Set<BroadcastChannel>>();
  // Sending: the same ranges, but the weight goes to every other node.
  const broadcastRanges: BufferRanges = {
    ...ranges,
    onEscape: (offset: number) => channel.call({ op: 'escape-broadcast', offset }) as number,
  };
  // Receiving: the buffers of one message are held once by this thread (the first instance's clone holds them).
  const { onHold: _hold, ...heldAlready } = ranges;

  channel.onEvent((event: ChannelEvent) => {
    if (event.kind !== 'bc-message') return;
    const instances = open.get(event.name);
    let held = false;
    for (const instance of instances === undefined ? [] : [...instances]) {
      // One closed by an earlier instance's listener gets nothing.
      if (!instances!.has(instance)) continue;
      let data: unknown;
      try {
        data = deserializeMessage(event, held ? heldAlready : ranges);
        held = true;
      } catch (error) {
        instance.dispatchEvent(new MessageEvent('messageerror', { data: error }));
        continue;
      }
      instance.dispatchEvent(new MessageEvent('message', { data }));
    }
    // No instance open any more (closed after the manager sent it): this thread's shares go back.
    if (!held && event.form === undefined) {
      const unread = heldRangesOf(event.bytes, 'another node');
      if (unread.length > 0) channel.post({ op: 'holds-unread', held: unread });
    }
  });

  class BroadcastChannel extends NativeBroadcastChannel {
    /** The name as Node has it (the getter is Node's; kept here to key this thread's map without calling it again). */
    readonly #key: string;
    #open = true;

    constructor(name: string) {
      super(name);
      this.#key = String(name);
      let instances = open.get(this.#key);
      if (instances === undefined) {
        // The manager may refuse (its name limit): then this instance is not open anywhere.
        try {
          channel.call({ op: 'bc-open', name: this.#key });
        } catch (error) {
          super.close();
          throw error;
        }
        instances = new Set();
        open.set(this.#key, instances);
      }
      instances.add(this);
    }

    override postMessage(message: unknown): void {
      // Node's post first: a closed channel, or a value that cannot be cloned, throws as under Node, and nothing leaves.
      super.postMessage(message);
      const bytes = serializeMessage(message, broadcastRanges);
      // Without waiting but for every postsInFlightMax-th (ChannelClient.postMessageRequest).
      channel.postMessageRequest({ op: 'bc-post', name: this.#key, ...bytes }, transferListOf(bytes.bytes));
    }

    override close(): void {
      super.close();
      if (!this.#open) return;
      this.#open = false;
      const instances = open.get(this.#key);
      if (instances === undefined || !instances.delete(this)) return;
      if (instances.size === 0) {
        open.delete(this.#key);
        channel.post({ op: 'bc-close', name: this.#key });
      }
    }
  }
  Object.defineProperty(BroadcastChannel, 'name', { value: 'BroadcastChannel' });
  return BroadcastChannel;
}
