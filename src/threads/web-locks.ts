// Web Locks across nodes (Node 24: navigator.locks, worker_threads.locks).
// Node's lock manager is shared by the threads of one process; in a cluster
// of 2 or more nodes a program's threads are spread over several processes,
// so dsm gives every app thread this LockManager instead: each request goes
// through the thread's channel to its manager and on to the cluster's lock
// service (src/runtime/web-locks-service.ts), which grants in request order
// per name, shared holders together. A lock is released when the callback's
// promise settles; a thread's end releases what it holds and drops what it
// waits for (its manager does, at the end of its channel).
//
// A thread waits for its requests' answers (its channel is held until each
// comes): under Node a request waiting for a lock keeps no thread alive, but
// Node answers one for a free lock at once, where dsm's answer takes a round
// trip to node 0.
//
// What a program sees is Node 24's: the same prototype shape and tags, the
// same errors (Node's own request checks the arguments: see `checked`),
// a signal's abort rejects a waiting request at once and the grant that
// still comes is given back unused (as Node does), query() answers the
// calling thread's held and pending requests (as Node 24 does: no other
// thread's), and a stolen lock's request rejects with Error('LOCK_STOLEN'),
// or an AbortError when its own thread stole it (as Node 24).

import * as workerThreads from 'node:worker_threads';
import type { ChannelClient } from '../channel/client.js';
import type { ThreadEvent } from '../channel/wire.js';
import { DsmError } from '../errors.js';

type LockMode = 'exclusive' | 'shared';

interface NodeLockManager {
  request(name: unknown, options?: unknown, callback?: unknown): Promise<unknown>;
  query(): Promise<unknown>;
}

/** One request of this thread, from its request to its release (or its refusal). */
interface Entry {
  name: string;
  mode: LockMode;
  clientId: string;
  held: boolean;
  granted(granted: boolean, full: number | undefined): void;
  stolen(sameThread: boolean): void;
}

const hyphenMessage = 'Lock name may not start with hyphen';

/** Node's message for a name starting with '-': what `checked` expects when everything else is right. */
function isHyphenError(error: unknown): boolean {
  return error instanceof DOMException && error.name === 'NotSupportedError' && error.message === hyphenMessage;
}

/** Node 24's LockManager (null before Node 24: nothing to replace). */
export function nodeLockManager(): NodeLockManager | null {
  const locks = (workerThreads as unknown as { locks?: NodeLockManager }).locks;
  return locks === undefined || locks === null ? null : locks;
}

/** Replaces worker_threads.locks and navigator.locks with a LockManager for the whole cluster. */
export function installWebLocks(wt: Record<string, unknown>, channel: ChannelClient): void {
  const native = nodeLockManager();
  if (native === null) return;
  const manager = makeLockManager(channel, native);
  wt.locks = manager;
  const navigatorObject = (globalThis as { navigator?: object }).navigator;
  const prototype = navigatorObject === undefined ? null : Object.getPrototypeOf(navigatorObject) as object;
  const descriptor = prototype === null ? undefined : Object.getOwnPropertyDescriptor(prototype, 'locks');
  if (prototype !== null && descriptor?.get !== undefined) {
    Object.defineProperty(prototype, 'locks', {
      configurable: descriptor.configurable ?? true, enumerable: descriptor.enumerable ?? true,
      // Named as Node's ('get locks').
      get: Object.getOwnPropertyDescriptor({ get locks() { return manager; } }, 'locks')!.get!,
    });
  }
}

export function makeLockManager(channel: ChannelClient, native: NodeLockManager): object {
  const nativeRequest = native.request;
  const nativeQuery = native.query;
  const NodeLockManagerClass = (native as { constructor: unknown }).constructor;
  /** This thread's requests not yet released, by id, in request order. */
  const entries = new Map<number, Entry>();
  let nextId = 1;

  channel.onEvent((event: ThreadEvent) => {
    if (event.kind === 'wl-grant') entries.get(event.id)?.granted(event.granted, event.full);
    else if (event.kind === 'wl-stolen') entries.get(event.id)?.stolen(event.sameThread);
  });

  const kName = Symbol('kName');
  const kMode = Symbol('kMode');
  class Lock {
    declare [kName]: string;
    declare [kMode]: LockMode;
    get name(): string { return this[kName]; }
    get mode(): LockMode { return this[kMode]; }
  }
  Object.defineProperties(Lock.prototype, {
    name: { enumerable: true },
    mode: { enumerable: true },
    [Symbol.toStringTag]: { value: 'Lock', writable: false, enumerable: false, configurable: true },
  });
  const makeLock = (name: string, mode: LockMode): Lock => {
    const lock = Object.create(Lock.prototype) as Lock;
    lock[kName] = name;
    lock[kMode] = mode;
    return lock;
  };

  /** Node's checks of the arguments, with its errors: its request of a name starting with '-' makes none. */
  async function checked(options: unknown, callback: unknown): Promise<void> {
    try {
      await nativeRequest.call(native, '-', options, callback);
    } catch (error) {
      if (isHyphenError(error)) return;
      throw error;
    }
  }

  const methods = {
    async request(this: unknown, name: unknown, options: unknown, callback: unknown = undefined): Promise<unknown> {
      if (callback === undefined) {
        callback = options;
        options = undefined;
      }
      const key = `${name as string}`;
      await checked(options, callback);
      const given = (options === undefined || typeof options === 'function' ? {} : options) as { mode?: unknown; ifAvailable?: unknown; steal?: unknown; signal?: AbortSignal };
      const mode: LockMode = given.mode === undefined ? 'exclusive' : `${given.mode as string}` as LockMode;
      const ifAvailable = !!given.ifAvailable;
      const steal = !!given.steal;
      const signal = given.signal ?? undefined;
      if (key[0] === '-') throw new DOMException(hyphenMessage, 'NotSupportedError');
      if (ifAvailable && steal) throw new DOMException('ifAvailable and steal are mutually exclusive', 'NotSupportedError');
      if (mode !== 'exclusive' && steal) throw new DOMException('mode: "shared" and steal are mutually exclusive', 'NotSupportedError');
      if (signal !== undefined && (steal || ifAvailable)) throw new DOMException('signal cannot be used with steal or ifAvailable', 'NotSupportedError');
      const run = callback as (lock: Lock | null) => unknown;
      const id = nextId++;
      return new Promise((resolve, reject) => {
        let settled = false;
        const settle = (outcome: () => void): void => {
          if (settled) return;
          settled = true;
          signal?.removeEventListener('abort', onAbort);
          outcome();
        };
        const release = (): void => {
          if (!entries.delete(id)) return;
          channel.post({ op: 'wl-release', id });
        };
        // As Node: an abort rejects a request not yet granted; the request stays queued, and is given back when granted.
        const onAbort = (): void => {
          if (entry.held) return;
          settle(() => reject(signal!.reason ?? new DOMException('The operation was aborted', 'AbortError')));
        };
        const entry: Entry = {
          name: key, mode, clientId: `node-${process.pid}-${String((workerThreads as { threadId: number }).threadId)}`, held: false,
          granted(granted, full) {
            channel.unhold();
            if (full !== undefined) {
              entries.delete(id);
              settle(() => reject(new DsmError('DSM_ERR_WEB_LOCKS', `the cluster's lock service holds ${full} Web Locks requests, its limit (webLockRequestCountMax): release locks the program no longer uses`)));
              return;
            }
            if (!granted) entries.delete(id);
            else entry.held = true;
            if (settled || signal?.aborted === true) {
              release();
              return;
            }
            let result: unknown;
            try {
              result = run(granted ? makeLock(key, mode) : null);
            } catch (error) {
              release();
              settle(() => reject(error));
              return;
            }
            Promise.resolve(result).then(
              (value) => { release(); settle(() => resolve(value)); },
              (error: unknown) => { release(); settle(() => reject(error)); },
            );
          },
          stolen(sameThread) {
            if (!entry.held) channel.unhold();
            entries.delete(id);
            settle(() => reject(sameThread ? new DOMException('The operation was aborted', 'AbortError') : new Error('LOCK_STOLEN')));
          },
        };
        entries.set(id, entry);
        // The answer comes from the manager (a round trip to node 0's lock service, where Node answers at once when
        // the lock is free): the thread lives until it comes.
        channel.hold();
        signal?.addEventListener('abort', onAbort, { once: true });
        channel.post({ op: 'wl-request', id, name: key, mode, ifAvailable, steal });
      });
    },
    async query(this: unknown): Promise<unknown> {
      // Node's own error for another `this`.
      if (this !== manager) return nativeQuery.call(this);
      const held: Array<{ name: string; mode: LockMode; clientId: string }> = [];
      const pending: Array<{ name: string; mode: LockMode; clientId: string }> = [];
      for (const entry of entries.values()) (entry.held ? held : pending).push({ name: entry.name, mode: entry.mode, clientId: entry.clientId });
      return { held, pending };
    },
  };

  const prototype = Object.create(Object.prototype) as object;
  Object.defineProperties(prototype, {
    constructor: { value: NodeLockManagerClass, writable: true, enumerable: false, configurable: true },
    request: { value: methods.request, writable: true, enumerable: true, configurable: true },
    query: { value: methods.query, writable: true, enumerable: true, configurable: true },
    [Symbol.toStringTag]: { value: 'LockManager', writable: false, enumerable: false, configurable: true },
  });
  const manager = Object.create(prototype) as object;
  return manager;
}
