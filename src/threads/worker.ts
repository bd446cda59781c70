// `worker_threads.Worker` inside a dsm program.
//
// A worker placed on this node is a real Worker thread whose entry is dsm's
// app-thread entry; it gets its own channel to the manager and then runs the
// user's module exactly as Node would. The handle is a real Worker, so
// events, postMessage, terminate, ref/unref, resourceLimits all behave as Node's.

import { isAbsolute, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { MessageChannel, Worker as NativeWorker, type WorkerOptions } from 'node:worker_threads';
import type { ChannelClient } from '../channel/client.js';
import type { AppThreadConfig } from '../channel/wire.js';
import type { BufferRanges } from './clone.js';
import { calledByRuntime } from './caller.js';
import { spawnRemoteWorker } from './remote-worker.js';

/** dsm's own Worker option: the node to start the worker on (otherwise the placement policy decides). */
export interface DsmWorkerOptions extends WorkerOptions {
  dsmNode?: number;
}

/** The file app threads start in (compiled .js, or .ts when dsm itself runs under tsx). */
export function appEntryUrl(): URL {
  const self = import.meta.url;
  return new URL(self.endsWith('.ts') ? './entry.ts' : './entry.js', self);
}

/** Node's rule: a string is a path, absolute or starting with ./ or ../, or a file: URL. */
function resolveWorkerFile(filename: string | URL): string {
  if (filename instanceof URL) return fileURLToPath(filename);
  if (filename.startsWith('file:')) return fileURLToPath(filename);
  if (isAbsolute(filename) || filename.startsWith('./') || filename.startsWith('../') ||
      filename.startsWith('.\\') || filename.startsWith('..\\')) {
    return resolve(filename);
  }
  // Node throws ERR_WORKER_PATH here; pass the name through and let Node say it.
  return filename;
}

/**
 * Thread ids the program sees: the program's main thread is 0, workers are
 * numbered by the node that creates them, in creation order (1, 2, 3... on
 * node 0, as under plain node; see threadIdNodeStride), whatever node they
 * run on. Node's own bookkeeping keeps the real ids, which differ (the
 * program's main thread is itself a worker of the manager).
 */
const threadIdsSeen = new WeakMap<object, number>();

/** The file esbuild runs its synchronous API's service thread from. */
function isCompilerThread(entry: string): boolean {
  return /[\\/]node_modules[\\/]esbuild[\\/]lib[\\/]main\.js$/.test(entry);
}

/** Whether the caller of `callee` is one of Node's own modules (its frame is node:internal/...). */
function calledFromNodeInternals(callee: (...args: never[]) => unknown): boolean {
  const holder: { stack?: string } = {};
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 1;
  Error.captureStackTrace(holder, callee);
  Error.stackTraceLimit = limit;
  return /^\s*at .*\bnode:internal\//m.test(holder.stack ?? '');
}

const nativeThreadId = Object.getOwnPropertyDescriptor(NativeWorker.prototype, 'threadId')!.get! as (this: NativeWorker) => number;

export function makeWorkerClass(channel: ChannelClient, parent: AppThreadConfig, ranges: BufferRanges): typeof NativeWorker {
  class Worker extends NativeWorker {
    constructor(filename: string | URL, options: DsmWorkerOptions = {}) {
      if (calledByRuntime(1)) {
        // Node's or the TypeScript loader's own thread (esbuild's service): a plain local Worker.
        super(filename, options);
        return;
      }
      const evalCode = options.eval === true;
      const entry = evalCode ? String(filename) : resolveWorkerFile(filename);
      if (!evalCode && !isAbsolute(entry)) {
        // Let Node produce its own ERR_WORKER_PATH error for a bare name.
        super(filename, options);
        return;
      }
      if (!evalCode && isCompilerThread(entry)) {
        // esbuild's service thread, which tsx starts to compile a TypeScript
        // program: dsm's tooling, not a thread of the program, so it runs as a
        // plain Worker here and takes no thread id the program would see.
        super(filename, options);
        return;
      }
      const threadIdSeen = channel.call({ op: 'thread-id' }) as number;
      if (parent.nodeCount > 1) {
        const nodeId = options.dsmNode ?? (channel.call({ op: 'place' }) as number);
        if (nodeId !== parent.nodeId) {
          // A derived constructor may return another object instead of calling super.
          // eslint-disable-next-line no-constructor-return
          return spawnRemoteWorker(new.target.prototype, {
            channel, ranges, nodeId, threadIdSeen, entry, evalCode,
            workerData: options.workerData,
            options: {
              ...(options.name === undefined ? {} : { name: options.name }),
              argv: (options.argv ?? []).map(String),
              ...(typeof options.env === 'object' && options.env !== null ? { env: options.env as Record<string, string> } : {}),
              ...(options.resourceLimits === undefined ? {} : { resourceLimits: options.resourceLimits as Record<string, number> }),
            },
          }) as unknown as Worker;
        }
      }
      const { port1, port2 } = new MessageChannel();
      const config: AppThreadConfig = {
        role: 'worker',
        nodeId: parent.nodeId,
        nodeCount: parent.nodeCount,
        regionBytes: parent.regionBytes,
        entry,
        evalCode,
        argv: (options.argv ?? []).map(String),
        parallelism: parent.parallelism,
        userWorkerData: options.workerData,
        threadIdSeen,
        ...(parent.atomicLines === undefined ? {} : { atomicLines: parent.atomicLines }),
      };
      const transferList = [...(options.transferList ?? []), port2];
      super(appEntryUrl(), {
        ...options,
        eval: false,
        argv: [],
        workerData: { __dsm: config, __dsmPort: port2 },
        transferList: transferList as never,
      });
      threadIdsSeen.set(this, threadIdSeen);
      channel.post({ op: 'adopt', port: port1, threadIdSeen }, [port1 as never]);
    }
  }
  // @types/node declares threadId a property; Node defines it as an accessor.
  Object.defineProperty(Worker.prototype, 'threadId', {
    /** The id the program sees; -1 once the thread has ended, as Node's. */
    get: function threadIdGetter(this: NativeWorker): number {
      const real = nativeThreadId.call(this);
      // Node's own modules (e.g. internal/worker/messaging at exit) key their tables by the real id.
      if (real < 0 || calledFromNodeInternals(threadIdGetter)) return real;
      return threadIdsSeen.get(this) ?? real;
    },
    configurable: true,
    enumerable: false,
  });
  Object.defineProperty(Worker, 'name', { value: 'Worker' });
  return Worker;
}

export { pathToFileURL };
