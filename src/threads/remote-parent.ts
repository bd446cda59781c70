// `parentPort` inside a worker whose parent thread runs on another node.
// Both directions go through the channel (the one door to this node's
// manager): the parent's messages arrive as 'parent-message' events, and
// postMessage is a 'parent-post' call. Values are cloned with dsm's structured
// clone, so dsm buffers travel by range. Otherwise it behaves as Node's
// parentPort: messages wait until a 'message' listener is added, and while
// one listens (and the port is ref'd) the thread stays alive. Its EventTarget
// side is Node's too (session 46, users19): addEventListener and
// removeEventListener (with `once` and `signal`), onmessage and onmessageerror,
// and dispatchEvent; such listeners get a MessageEvent whose target is the port.

import { EventEmitter } from 'node:events';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { assert } from '../errors.js';
import { portRelays } from './port-relay.js';
import type { ChannelClient } from '../channel/client.js';
import { deserializeMessage, transferListOf, type BufferRanges, type MessageBytes } from '../channel/clone.js';

/** A listener added with addEventListener: a function or an object with handleEvent, as the DOM takes. */
type EventListenerLike = ((event: Event) => unknown) | { handleEvent(event: Event): unknown };

export class RemoteParentPort extends EventEmitter {
  /** Per event type, each addEventListener listener and the EventEmitter listener that calls it with an event. */
  private readonly targetListeners = new Map<string, Map<EventListenerLike, (value?: unknown) => void>>();
  /** The onmessage and onmessageerror handlers (null: none), as event handler attributes. */
  private readonly handlers = new Map<string, (event: Event) => unknown>();
  /** The event dispatchEvent passes on to the listeners it reaches through emit. */
  private dispatching: Event | null = null;
  private readonly ranges: BufferRanges;
  private readonly channel: ChannelClient;
  /** Messages that arrived before anyone listened (a MessagePort queues them until started). */
  private readonly waiting: MessageBytes[] = [];
  private started = false;
  private closed = false;
  private referenced = true;
  /** Whether this port holds the channel (keeps the thread alive): listening and ref'd. */
  private holding = false;
  /**
   * Delivers the waiting messages one per message of a local port (made at the first start with messages
   * waiting): as Node delivers a port's queued messages, each in a callback of its own, with process.nextTick
   * callbacks and microtasks run between two messages (a loop emitting them all ran those after the last).
   */
  private kicks: { send: MessagePort; receive: MessagePort } | null = null;

  constructor(ranges: BufferRanges, channel: ChannelClient) {
    super();
    this.channel = channel;
    this.ranges = ranges;
    channel.onEvent((event) => {
      if (event.kind !== 'parent-message' || this.closed) return;
      // Behind those still waiting for their turn, if any.
      if (this.started && this.waiting.length === 0) this.deliver(event);
      else {
        this.waiting.push(event);
        if (this.started) this.kick();
      }
    });
    this.on('newListener', (event: string) => {
      if (event === 'message') queueMicrotask(() => this.start());
    });
    this.on('removeListener', (event: string) => {
      if (event === 'message') this.updateHold();
    });
  }

  /**
   * `receiveMessageOnPort(parentPort)`: the oldest message that has reached
   * this thread and not been delivered, as `{ message }`, else undefined (as
   * Node's, for a port whose queue is empty or closed). With no 'message'
   * listener, what reached the thread is read from the channel first, so a
   * thread that never returns to its loop sees it too, as under Node.
   */
  receiveSync(): { message: unknown } | undefined {
    // What reached this thread, even if it has not returned to its event loop since (a worker in a loop of
    // Atomics.wait and receiveMessageOnPort): its parent messages are read from the channel now, while none is
    // delivered to a listener (they only join `waiting`), and relayed ports' with them (posted on, no program code).
    if (!this.started && !this.closed) {
      this.channel.takeNow((event) => event.kind === 'parent-message' || event.kind === 'port-message' || event.kind === 'port-close');
    }
    const message = this.waiting.shift();
    if (message === undefined || this.closed) return undefined;
    // Its kick (if started) finds one fewer message waiting, or none: a kick with nothing waiting does nothing.
    return { message: deserializeMessage(message, this.ranges, portRelays()?.receiving()) };
  }

  private deliver(message: MessageBytes): void {
    let value: unknown;
    try {
      value = deserializeMessage(message, this.ranges, portRelays()?.receiving());
    } catch (error) {
      this.emit('messageerror', error);
      return;
    }
    this.emit('message', value);
  }

  private updateHold(): void {
    const hold = !this.closed && this.referenced && this.listenerCount('message') > 0;
    if (hold === this.holding) return;
    this.holding = hold;
    if (hold) this.channel.hold();
    else this.channel.unhold();
  }

  postMessage(value: unknown, transferList?: readonly unknown[]): void {
    // Through the channel, without waiting but for every postsInFlightMax-th
    // post (and one with MessagePorts), a call: when the link to the parent's
    // node is full, this thread waits there until it drains (flow control,
    // src/runtime/flow.ts; ChannelClient.postMessageRequest).
    // The clone's bytes move to the manager by transfer (no copy).
    // Its MessagePorts stay in this thread, relayed to the parent's node (./port-relay.ts).
    const relays = portRelays();
    assert(relays !== null, 'a worker with a parent on another node has port relays');
    const message = relays.serialize(value, transferList, 'a parent');
    this.channel.postMessageRequest({ op: 'parent-post', ...message }, transferListOf(message.bytes), message.ports !== undefined);
  }

  start(): void {
    this.updateHold();
    if (this.started || this.closed) return;
    this.started = true;
    for (let i = 0; i < this.waiting.length; i += 1) this.kick();
  }

  /** One waiting message is delivered in a turn of its own (see `kicks`). */
  private kick(): void {
    if (this.kicks === null) {
      const { port1, port2 } = new MessageChannel();
      port1.on('message', () => {
        const message = this.waiting.shift();
        if (message !== undefined && !this.closed) this.deliver(message);
      });
      // The channel's hold (a 'message' listener, ref'd) keeps the thread alive, as for messages that arrive later.
      port1.unref();
      this.kicks = { send: port2, receive: port1 };
    }
    this.kicks.send.postMessage(null);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.waiting.length = 0;
    if (this.kicks !== null) {
      this.kicks.send.close();
      this.kicks = null;
    }
    this.updateHold();
    this.emit('close');
  }

  /**
   * The DOM's addEventListener: `listener` is called with a MessageEvent (its `data` the message) for 'message' and
   * 'messageerror', an Event for 'close'; once per listener and type (adding it again does nothing); a 'message'
   * listener starts the port as Node's does.
   */
  addEventListener(type: string, listener: EventListenerLike | null | undefined, options?: boolean | { once?: boolean; signal?: AbortSignal; capture?: boolean; passive?: boolean }): void {
    if (listener === null || listener === undefined) return;
    if (typeof listener !== 'function' && (typeof listener !== 'object' || typeof listener.handleEvent !== 'function')) {
      throw new TypeError('The "listener" argument must be an instance of EventListener or a function');
    }
    let listeners = this.targetListeners.get(type);
    if (listeners === undefined) { listeners = new Map(); this.targetListeners.set(type, listeners); }
    if (listeners.has(listener)) return;
    const once = typeof options === 'object' && options !== null && options.once === true;
    const signal = typeof options === 'object' && options !== null ? options.signal : undefined;
    if (signal?.aborted === true) return;
    const call = (value?: unknown): void => {
      if (once) this.removeEventListener(type, listener);
      const event = this.eventFor(type, value);
      if (typeof listener === 'function') listener.call(this, event);
      else listener.handleEvent(event);
    };
    listeners.set(listener, call);
    this.on(type, call);
    signal?.addEventListener('abort', () => this.removeEventListener(type, listener), { once: true });
  }

  removeEventListener(type: string, listener: EventListenerLike | null | undefined): void {
    if (listener === null || listener === undefined) return;
    const listeners = this.targetListeners.get(type);
    const call = listeners?.get(listener);
    if (call === undefined) return;
    listeners!.delete(listener);
    this.off(type, call);
  }

  /** Dispatches `event` to this port's listeners ('message' ones added with on() get its `data`); true, as Node's. */
  dispatchEvent(event: Event): boolean {
    if (!(event instanceof Event)) throw new TypeError('The "event" argument must be an instance of Event');
    this.dispatching = event;
    try {
      this.emit(event.type, event instanceof MessageEvent ? event.data : event);
    } finally {
      this.dispatching = null;
    }
    return true;
  }

  get onmessage(): ((event: Event) => unknown) | null { return this.handlers.get('message') ?? null; }
  set onmessage(handler: ((event: Event) => unknown) | null) { this.setHandler('message', handler); }
  get onmessageerror(): ((event: Event) => unknown) | null { return this.handlers.get('messageerror') ?? null; }
  set onmessageerror(handler: ((event: Event) => unknown) | null) { this.setHandler('messageerror', handler); }

  /** An event handler attribute: the old handler goes, a function replaces it (anything else: none). */
  private setHandler(type: string, handler: unknown): void {
    const before = this.handlers.get(type);
    if (before !== undefined) {
      this.handlers.delete(type);
      this.removeEventListener(type, before);
    }
    if (typeof handler !== 'function') return;
    this.handlers.set(type, handler as (event: Event) => unknown);
    this.addEventListener(type, handler as (event: Event) => unknown);
  }

  /** The event an addEventListener listener gets for what the port emits (`value`: a message's data, or an error). */
  private eventFor(type: string, value: unknown): Event {
    if (this.dispatching !== null) return this.dispatching;
    const event = type === 'message' || type === 'messageerror' ? new MessageEvent(type, { data: value }) : new Event(type);
    // Undispatched events have no target; Node's name the port.
    Object.defineProperty(event, 'target', { value: this, configurable: true });
    Object.defineProperty(event, 'currentTarget', { value: this, configurable: true });
    return event;
  }

  ref(): void { this.referenced = true; this.updateHold(); }
  unref(): void { this.referenced = false; this.updateHold(); }
  hasRef(): boolean { return this.holding; }
}
