// MessagePorts that cross nodes. A MessagePort cannot leave its process, so a
// port posted to a thread on another node is relayed:
//
// - the sending thread takes the port from the program (a transfer to itself:
//   the program's object is detached, as a posted port is under Node), gives
//   it a relay id unique in the cluster (node, thread, counter) and writes the
//   id in the clone (src/channel/clone.ts). It keeps listening on the port
//   (unref'd: a relay does not keep its thread alive) and sends what arrives
//   there to the relay's far end ('port-post', a call admitted with flow
//   control as worker-post is); the port's 'close' goes as 'port-close';
// - the receiving thread makes a MessageChannel for the id: the program gets
//   one end, a real MessagePort (receiveMessageOnPort, once, close events and
//   instanceof behave as Node's), and this module relays the other end both
//   ways ('port-open' registers it with the manager, which holds the relay's
//   messages until then);
// - the managers route by id and make each crossing a release at the sender's
//   node and an acquire at the receiver's (src/runtime/remote-workers.ts).
//
// Both ends of one MessageChannel in one message travel as a pair, not
// relayed: the receiver makes a new MessageChannel for them (pairsIn).
//
// Relayed messages may carry ports themselves: each is relayed the same way,
// from the thread that relays the message. A relay ends when either side
// closes, or when the thread holding one of its ends ends (the far side sees
// 'close'), with one exception: two relay ends of a thread that are the two
// ends of one local channel (a received port posted on to another node, or a
// pair relayed with messages waiting) are spliced when the thread ends
// (splice()): its manager routes each relay's far end to the other's, so the
// port outlives the thread it passed through, as under Node.

import { isArrayBuffer, isSharedArrayBuffer } from 'node:util/types';
import { MessageChannel, MessagePort, receiveMessageOnPort } from 'node:worker_threads';
import { portRelayDrainCountMax } from '../constants.js';
import type { ChannelClient } from '../channel/client.js';
import { assertFits, deserializeMessage, serializeMessage, serializeValue, transferListOf, type BufferRanges, type MessageBytes, type PortCodec } from '../channel/clone.js';
import type { ChannelEvent } from '../channel/wire.js';
import { DsmError, assert } from '../errors.js';

/** A message serialized to cross nodes, with the relay ids of its ports. */
export type RelayedMessage = MessageBytes;

export class PortRelays {
  private readonly channel: ChannelClient;
  private readonly ranges: BufferRanges;
  /** Relay ids start with it: this thread's node and thread id. */
  private readonly idPrefix: string;
  private idCounter = 0;
  /** This thread's relay ends, by relay id: the port this module listens on and posts to. */
  private readonly relays = new Map<string, MessagePort>();
  /** Messages that waited on a relayed pair's ends when it left (pairsIn), by relay id: forwarded before the rest. */
  private readonly backlogs = new Map<string, unknown[]>();
  /**
   * Relay ends of this thread that are the two ends of one local channel, by relay id, each to the other: what
   * arrives on one goes out on the other, so the pair is spliced at the manager when this thread ends (splice).
   */
  private readonly entangled = new Map<string, string>();

  constructor(channel: ChannelClient, ranges: BufferRanges, nodeId: number, threadId: number) {
    this.channel = channel;
    this.ranges = ranges;
    this.idPrefix = `${nodeId}.${threadId}.`;
    channel.onEvent((event: ChannelEvent) => {
      if (event.kind === 'port-message') this.deliver(event);
      else if (event.kind === 'port-close') this.closedFar(event.id);
    });
  }

  /** Relay ends this thread holds (tests, limits). */
  get size(): number {
    return this.relays.size;
  }

  /**
   * A program's message for a thread on another node: its transferList's
   * ArrayBuffers are detached as Node does, its MessagePorts leave the
   * program for relays. Anything else in the list cannot cross nodes.
   */
  serialize(value: unknown, transferList: readonly unknown[] | undefined, toWhom: string): RelayedMessage {
    return this.serializeWith(value, transferList, toWhom, (buffers, ports) => serializeMessage(value, this.ranges, buffers, ports));
  }

  /**
   * A new remote worker's workerData (a value, not a message: no `form`): its
   * MessagePorts leave for relays as a message's; its ArrayBuffers are
   * copied, not detached (as before relays: a remote worker's start).
   */
  serializeValue(value: unknown, transferList: readonly unknown[], toWhom: string): RelayedMessage {
    // Too large throws before any port leaves the program.
    return this.serializeWith(value, transferList, toWhom, (_buffers, ports) => ({ bytes: assertFits(serializeValue(value, this.ranges, ports), 'workerData') }));
  }

  private serializeWith(value: unknown, transferList: readonly unknown[] | undefined, toWhom: string,
    write: (buffers: ArrayBuffer[], ports: PortCodec) => MessageBytes): RelayedMessage {
    const buffers: ArrayBuffer[] = [];
    const ids = new Map<MessagePort, string>();
    for (const item of transferItems(transferList)) {
      if (isArrayBuffer(item)) {
        // Node's checks, in its order: a duplicate is an error; a detached buffer is passed over by Node 20 and
        // refused by Node 24 (DataCloneError), as the running Node does (asked on a channel of its own).
        if (buffers.includes(item)) throw nodesOwnError((port) => { const twice = new ArrayBuffer(0); port.postMessage(undefined, [twice, twice]); });
        if (!isDetached(item)) buffers.push(item);
        else {
          const refused = nodesRefusal((port) => port.postMessage(undefined, [item]));
          if (refused !== null) throw refused;
        }
      } else if (item instanceof MessagePort) {
        if (ids.has(item)) throw new DOMException('Transfer list contains duplicate MessagePort', 'DataCloneError');
        ids.set(item, this.nextId());
      } else if (neverTransferable(item)) {
        // Node's own TypeError (ERR_INVALID_TRANSFER_OBJECT): it throws before it moves anything.
        throw nodesOwnError((port) => port.postMessage(undefined, [item] as never));
      } else {
        throw new DsmError('DSM_ERR_NOT_DSM_MEMORY', `postMessage to ${toWhom} on another node can transfer ArrayBuffers and MessagePorts, not other handles`);
      }
    }
    // Both ends of one MessageChannel in one message: they travel as a pair, and the receiver makes a new
    // MessageChannel for them (entangled there as here), with no relay: the ends no longer depend on this
    // thread (a thread that makes a channel, posts both ends and ends, as under Node). Only when neither end
    // has messages waiting (read here: a pair with some is relayed as before, the messages forwarded first).
    const paired = this.pairsIn(ids);
    const written = new Set<string>();
    let message: MessageBytes;
    try {
      message = this.writeWithPairs(write, buffers, ids, paired, written);
    } catch (error) {
      this.unreadBacklogs(ids);
      throw error;
    }
    if (ids.size === 0) return message;
    // A pair's ends are detached for the program, as posted ports, and closed (both taken first: closing one
    // closes the other); the receiver makes the pair anew.
    const pairTaken: MessagePort[] = [];
    const relayedPartners: Array<[MessagePort, string]> = [];
    for (const [port, id] of ids) {
      // The program's object is detached (its posts go nowhere, as a transferred port's); this thread holds the port now.
      if (paired.has(port)) {
        partners.delete(port);
        pairTaken.push(structuredClone(port, { transfer: [port] }));
        continue;
      }
      const taken = structuredClone(port, { transfer: [port] });
      // A port in the transferList but not in the message: nobody could ever read it there (under Node it moves, unreachable): closed.
      if (written.has(id)) {
        this.listen(id, taken);
        // The program's end of a relay this thread holds: the two relay ends are one local channel's.
        const received = programEnds.get(port);
        if (received !== undefined) this.entangle(id, received);
        const partner = partners.get(port);
        if (partner !== undefined && partners.get(partner) === port) relayedPartners.push([partner, id]);
      } else {
        this.backlogs.delete(id);
        taken.close();
      }
      // What waited on a pair relayed after all: after this message (which opens the relay), before anything else.
      if (this.backlogs.has(id)) queueMicrotask(() => this.flushBacklog(id));
    }
    for (const taken of pairTaken) taken.close();
    // Both ends of one channel relayed from here (a pair with messages waiting): one local channel's two relay ends.
    for (const [partner, id] of relayedPartners) {
      const partnerId = ids.get(partner);
      if (partnerId !== undefined && written.has(partnerId)) this.entangle(id, partnerId);
    }
    return written.size === 0 ? message : { ...message, ports: [...written] };
  }

  private writeWithPairs(write: (buffers: ArrayBuffer[], ports: PortCodec) => MessageBytes, buffers: ArrayBuffer[],
    ids: Map<MessagePort, string>, paired: Map<MessagePort, string>, written: Set<string>): MessageBytes {
    return write(buffers, {
      idOf: (port) => {
        const pairId = paired.get(port);
        if (pairId !== undefined) return pairId;
        const id = ids.get(port);
        // Node's own error for a port in a message but not in its transferList.
        if (id === undefined) throw missingTransferable();
        written.add(id);
        return id;
      },
    });
  }

  /**
   * The pairs among a message's transferred ports (both ends of a MessageChannel this thread made, or received as
   * a pair), each end's id in the clone (`pair:<id>:1` or `:2`). A pair whose ends have messages waiting is not
   * one: its ends are relayed, those messages forwarded first (`backlogs`, read from the program's ends now).
   */
  private pairsIn(ids: Map<MessagePort, string>): Map<MessagePort, string> {
    const paired = new Map<MessagePort, string>();
    const seen = new Set<MessagePort>();
    for (const [port, id] of ids) {
      const partner = partners.get(port);
      if (partner === undefined || seen.has(port) || partners.get(partner) !== port || !ids.has(partner)) continue;
      seen.add(partner);
      const partnerId = ids.get(partner)!;
      let waiting = false;
      for (const [end, endId] of [[port, id], [partner, partnerId]] as const) {
        const backlog: unknown[] = [];
        for (let got = nativeReceiveMessageOnPort(end); got !== undefined; got = nativeReceiveMessageOnPort(end)) backlog.push(got.message);
        if (backlog.length === 0) continue;
        waiting = true;
        this.backlogs.set(endId, backlog);
      }
      if (waiting) continue;
      paired.set(port, `pair:${id}:1`);
      paired.set(partner, `pair:${id}:2`);
    }
    return paired;
  }

  /** The message could not be written: what pairsIn read from a port waits there again, in order (the ends stay the program's). */
  private unreadBacklogs(ids: Map<MessagePort, string>): void {
    for (const [port, id] of ids) {
      const backlog = this.backlogs.get(id);
      const partner = partners.get(port);
      if (backlog === undefined || partner === undefined) continue;
      this.backlogs.delete(id);
      for (const data of backlog) {
        try {
          partner.postMessage(data);
        } catch {
          // One carrying ports of its own (not listed here): lost with the failed post.
        }
      }
    }
  }

  /** The ports of a received message: each becomes a new local channel, one end for the program, the other relayed. */
  deserialize(message: MessageBytes): unknown {
    return deserializeMessage(message, this.ranges, this.receiving());
  }

  /** The PortCodec that opens received relay ids (for deserializeMessage's callers). */
  receiving(): PortCodec {
    // A pair's ends (pairsIn) become one new MessageChannel: its second end is made with the first.
    const pairs = new Map<string, { ends: [MessagePort, MessagePort]; taken: [boolean, boolean] }>();
    return {
      portAt: (id) => {
        const pair = /^pair:(.+):([12])$/.exec(id);
        if (pair !== null) {
          let made = pairs.get(pair[1]!);
          if (made === undefined) {
            const { port1, port2 } = new MessageChannel();
            recordPair(port1, port2);
            const entry = { ends: [port1, port2] as [MessagePort, MessagePort], taken: [false, false] as [boolean, boolean] };
            made = entry;
            pairs.set(pair[1]!, entry);
            // An end the message does not hold (it was only in the transferList): nobody can read it, closed (the other sees 'close').
            queueMicrotask(() => entry.ends.forEach((end, index) => { if (!entry.taken[index]) end.close(); }));
          }
          const index = pair[2] === '1' ? 0 : 1;
          made.taken[index] = true;
          return made.ends[index];
        }
        const { port1, port2 } = new NativeMessageChannel();
        this.listen(id, port2);
        programEnds.set(port1, id);
        // Registered before the program can use port1: the manager hands over what waited for this id, then the rest.
        this.channel.call({ op: 'port-open', id });
        return port1;
      },
    };
  }

  private nextId(): string {
    const id = `${this.idPrefix}${this.idCounter}`;
    this.idCounter += 1;
    return id;
  }

  /** Relay ends `a` and `b` of this thread are the two ends of one local channel. */
  private entangle(a: string, b: string): void {
    if (!this.relays.has(a) || !this.relays.has(b)) return;
    this.entangled.set(a, b);
    this.entangled.set(b, a);
  }

  /** Relay `id`'s end here is gone: it is nobody's partner any more. */
  private untangle(id: string): void {
    const other = this.entangled.get(id);
    if (other === undefined) return;
    this.entangled.delete(id);
    this.entangled.delete(other);
  }

  /**
   * This thread is ending: each pair of its relay ends that are one local channel's two ends is spliced at the
   * manager, which routes each relay's far end to the other's from then on (under Node the port lives on in the
   * thread it went to). First the manager holds what comes for them (a call: what it sent before is here now),
   * then what reached this thread for them is delivered and forwarded on the other relay (drain), then the
   * manager joins them, after those messages: the far ends' messages keep their order. Run after drain.
   */
  splice(): void {
    if (this.entangled.size === 0) return;
    const pairs: Array<[string, string]> = [];
    for (const [a, b] of this.entangled) if (a < b && this.relays.has(a) && this.relays.has(b)) pairs.push([a, b]);
    this.entangled.clear();
    if (pairs.length === 0) return;
    this.channel.call({ op: 'port-splice', pairs });
    // What the manager posted for them before it held them: delivered to the local channel, then forwarded.
    this.channel.takeNow((event) => event.kind === 'port-message' || event.kind === 'port-close');
    this.drain();
    const joined = pairs.filter(([a, b]) => this.relays.has(a) && this.relays.has(b));
    for (const [a, b] of joined) {
      // This thread no longer holds them: their ports close with it, unheard.
      for (const id of [a, b]) {
        const port = this.relays.get(id)!;
        this.relays.delete(id);
        port.removeAllListeners('message');
        port.removeAllListeners('close');
      }
    }
    // Every pair is named: one whose end closed meanwhile is ended by the manager (its other far end sees 'close').
    this.channel.post({ op: 'port-join', pairs });
  }

  /** Relays `port` as relay `id`: what arrives on it goes to the far end. */
  private listen(id: string, port: MessagePort): void {
    assert(!this.relays.has(id), 'a relay id names one relay end in its thread');
    this.relays.set(id, port);
    port.on('message', (data: unknown) => {
      this.flushBacklog(id);
      this.forward(id, data);
    });
    port.on('close', () => {
      // Closed here (the program closed its end, or this thread ended it): the far end closes too.
      this.untangle(id);
      if (this.relays.delete(id)) this.channel.post({ op: 'port-close', id });
    });
    // The program's end decides this thread's lifetime, as under Node: the relay end does not hold it.
    port.unref();
  }

  /**
   * Forwards what the program posted on its relayed ports but this thread's
   * event loop never delivered to the relay ends: the thread is ending (its
   * loop ran dry, or process.exit). Under Node a message posted on a port
   * before its thread ends reaches the far end; without this it was lost.
   * At most portRelayDrainCountMax messages (the rest are dropped).
   */
  drain(): void {
    if (this.relays.size === 0) return;
    let left = portRelayDrainCountMax;
    for (const [id, port] of [...this.relays]) {
      for (let received = nativeReceiveMessageOnPort(port); received !== undefined; received = nativeReceiveMessageOnPort(port)) {
        if (left-- === 0) return;
        this.forward(id, received.message);
      }
    }
  }

  /** Forwards what waited on relay `id`'s port when it left as one end of a pair (pairsIn), once. */
  flushBacklog(id?: string): void {
    for (const [backlogId, backlog] of id === undefined ? [...this.backlogs] : [[id, this.backlogs.get(id)] as const]) {
      if (backlog === undefined) continue;
      this.backlogs.delete(backlogId);
      for (const data of backlog) this.forward(backlogId, data);
    }
  }

  /** A message posted by the program on its end of relay `id`: to the far end. Its own ports are relayed from here. */
  private forward(id: string, data: unknown): void {
    if (!this.relays.has(id)) return;
    const nested = new Map<MessagePort, string>();
    // A value that cannot cross nodes (a SharedArrayBuffer that is not dsm
    // memory, a message too large) throws here, in this thread: the program
    // posted it on a port whose far end is on another node.
    const message = serializeMessage(data, this.ranges, [], {
      idOf: (port) => {
        let nestedId = nested.get(port);
        if (nestedId === undefined) {
          nestedId = this.nextId();
          nested.set(port, nestedId);
        }
        return nestedId;
      },
    });
    for (const [port, nestedId] of nested) this.listen(nestedId, port);
    const ports = nested.size === 0 ? {} : { ports: [...nested.values()] };
    // Without waiting but for every postsInFlightMax-th and one with ports (ChannelClient.postMessageRequest).
    this.channel.postMessageRequest({ op: 'port-post', id, ...message, ...ports }, transferListOf(message.bytes), nested.size > 0);
  }

  /** A message from the far end of relay `id`: to the program's end, with its ports made here. */
  private deliver(event: Extract<ChannelEvent, { kind: 'port-message' }>): void {
    const port = this.relays.get(event.id);
    if (port === undefined) return;
    const opened: MessagePort[] = [];
    const receiving = this.receiving();
    const value = deserializeMessage(event, this.ranges, {
      portAt: (id) => {
        const made = receiving.portAt!(id);
        opened.push(made);
        return made;
      },
    });
    port.postMessage(value, opened);
  }

  /** The far end of relay `id` closed (or its thread ended): so does the program's end here. */
  private closedFar(id: string): void {
    const port = this.relays.get(id);
    if (port === undefined) return;
    this.relays.delete(id);
    this.untangle(id);
    port.close();
  }
}

/**
 * The error this Node throws for a MessagePort in a message but not in its
 * transferList, made fresh by Node itself for each call (Node 20: a TypeError
 * with code ERR_MISSING_TRANSFERABLE_IN_TRANSFER_LIST; Node 24: a
 * DOMException DataCloneError), so a program sees its own Node's error.
 */
function missingTransferable(): Error {
  const { port1, port2 } = new MessageChannel();
  try {
    port1.postMessage(port2);
  } catch (error) {
    return error as Error;
  } finally {
    port1.close();
    port2.close();
  }
  const error = new TypeError('Object that needs transfer was found in message but not listed in transferList');
  Object.defineProperty(error, 'code', { value: 'ERR_MISSING_TRANSFERABLE_IN_TRANSFER_LIST', enumerable: true, configurable: true, writable: true });
  return error;
}

/**
 * The items of a postMessage's second argument as Node reads it: nothing for undefined or null, an iterable's
 * items, or an options object's `transfer` iterable; anything else throws Node's own TypeError
 * (ERR_INVALID_ARG_TYPE), provoked on a scratch port with the same argument (which moves nothing).
 */
function transferItems(transferList: unknown): unknown[] {
  if (transferList === undefined || transferList === null) return [];
  if (typeof transferList !== 'object' && typeof transferList !== 'function') {
    throw nodesOwnError((port) => port.postMessage(undefined, transferList as never));
  }
  const items = iterableItems(transferList);
  if (items !== null) return items;
  const transfer = (transferList as { transfer?: unknown }).transfer;
  if (transfer === undefined) return [];
  const fromOption = iterableItems(transfer);
  if (fromOption === null) throw nodesOwnError((port) => port.postMessage(undefined, { transfer } as never));
  return fromOption;
}

function iterableItems(value: unknown): unknown[] | null {
  if (value === null || (typeof value !== 'object' && typeof value !== 'function')) return null;
  if (typeof (value as { [Symbol.iterator]?: unknown })[Symbol.iterator] !== 'function') return null;
  return [...(value as Iterable<unknown>)];
}

/** What Node never transfers (it throws ERR_INVALID_TRANSFER_OBJECT): primitives, shared buffers, views, plain objects and arrays, functions. */
function neverTransferable(item: unknown): boolean {
  if (item === null || typeof item !== 'object') return true;
  if (isSharedArrayBuffer(item) || ArrayBuffer.isView(item)) return true;
  const prototype = Object.getPrototypeOf(item) as unknown;
  return prototype === null || prototype === Object.prototype || prototype === Array.prototype;
}

/** Whether an ArrayBuffer was detached (a transfer moved its contents; Node passes such a buffer over). */
function isDetached(buffer: ArrayBuffer): boolean {
  const detached = (buffer as { detached?: unknown }).detached;
  if (typeof detached === 'boolean') return detached;
  if (buffer.byteLength !== 0) return false;
  try {
    structuredClone(buffer);
    return false;
  } catch {
    return true;
  }
}

/**
 * What Node throws for a postMessage that `provoke` makes on a scratch port (one that throws before it moves
 * anything), or null when Node accepts it: a program posting to a thread on another node sees what it would see
 * under the running Node.
 */
function nodesRefusal(provoke: (port: MessagePort) => void): Error | null {
  const { port1, port2 } = new MessageChannel();
  try {
    provoke(port1);
    return null;
  } catch (error) {
    return error as Error;
  } finally {
    port1.close();
    port2.close();
  }
}

/** Node's error for a postMessage that every Node release refuses (see nodesRefusal). */
function nodesOwnError(provoke: (port: MessagePort) => void): Error {
  return nodesRefusal(provoke) ?? new DsmError('DSM_ERR_INTERNAL', 'Node accepted a postMessage that dsm expected it to refuse');
}

/** Each port the program received as a relay's end (receiving), to that relay's id: its partner is the relay end. */
const programEnds = new WeakMap<MessagePort, string>();

/** Each MessageChannel end the program made (PairedMessageChannel) or received as a pair, to its partner. */
const partners = new WeakMap<MessagePort, MessagePort>();

/** Node's, held at load (setup replaces the module's export with PairedMessageChannel). */
const NativeMessageChannel = MessageChannel;

function recordPair(port1: MessagePort, port2: MessagePort): void {
  partners.set(port1, port2);
  partners.set(port2, port1);
}

/**
 * The program's MessageChannel in a cluster (src/threads/setup.ts installs it): Node's, whose two ends are
 * recorded as partners, so that both posted in one message to another node travel as a pair (PortRelays.pairsIn).
 * A function sharing Node's prototype, so that instances, `instanceof`, subclasses, the printed name and a call
 * without `new` (Node's own TypeError) are Node's.
 */
export const PairedMessageChannel = function MessageChannel(this: unknown): MessageChannel {
  if (new.target === undefined) return (NativeMessageChannel as unknown as () => MessageChannel)();
  const channel = Reflect.construct(NativeMessageChannel, [], new.target) as MessageChannel;
  recordPair(channel.port1, channel.port2);
  markWhenClosed(channel.port1);
  markWhenClosed(channel.port2);
  return channel;
} as unknown as typeof MessageChannel;
PairedMessageChannel.prototype = NativeMessageChannel.prototype;
// Named here: the bundler may rename the function (the import has its name).
Object.defineProperty(PairedMessageChannel, 'name', { value: 'MessageChannel' });

/**
 * Makes PairedMessageChannel the program's MessageChannel in this thread (worker_threads' and the global): the shared
 * prototype's `constructor` names it too, so that `new MessageChannel().constructor === MessageChannel` holds as under
 * Node (each thread has its own realm: no other thread's MessageChannel changes).
 */
export function installPairedMessageChannel(workerThreadsModule: Record<string, unknown>): void {
  workerThreadsModule.MessageChannel = PairedMessageChannel;
  (globalThis as Record<string, unknown>).MessageChannel = PairedMessageChannel;
  const constructor = Object.getOwnPropertyDescriptor(NativeMessageChannel.prototype, 'constructor');
  Object.defineProperty(NativeMessageChannel.prototype, 'constructor', { ...constructor, value: PairedMessageChannel });
}

/** Node's, held at load: setup later replaces the module's export (and this file's live import) with its own. */
const nativeReceiveMessageOnPort = receiveMessageOnPort;

/**
 * The program's MessageChannel ends whose 'close' began. Node crashes (SIGSEGV, Node 20 and 24) when
 * receiveMessageOnPort polls a port inside its own 'close' callback, the listeners or the promise continuations run
 * at its end: the close has dropped the port's data, the object is not detached yet
 * (test/fixtures/users17/min/node-close-receive.mjs). A far end on another node closes later than under node (after
 * its worker's 'exit'), so a program that awaits 'exit', then 'close', then polls lands there (users17: node 0 died
 * now and then). The first 'close' listener, added as the channel is made, marks the end; the program's
 * receiveMessageOnPort answers undefined for a marked end, as Node does for a closed one (src/threads/setup.ts).
 */
const closedPorts = new WeakSet<object>();

function markWhenClosed(port: MessagePort): void {
  port.on('close', () => closedPorts.add(port));
}

/** Whether `port` is a MessageChannel end of this thread's program whose 'close' began. */
export function portClosed(port: unknown): boolean {
  return typeof port === 'object' && port !== null && closedPorts.has(port);
}

let installed: PortRelays | null = null;

/** This thread's relays (src/threads/setup.ts makes them in a cluster of 2 or more nodes). */
export function installPortRelays(relays: PortRelays): void {
  installed = relays;
}

export function portRelays(): PortRelays | null {
  return installed;
}
