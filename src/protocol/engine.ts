// The coherence protocol engine of one node: a sans-I/O state machine.
//
// Usage (the runtime wires it to the native MMU and the transport):
//
//   const engine = createEngine({
//     nodeId, nodeCount, pageCount, protocol: 'hlrc', placement: 'roundRobin',
//     memory,                                   // PageMemory (src/protocol/memory.ts)
//     send: (toNode, message) => transport.send(toNode, message),
//     host: { resume: (threadRef, result) => faultOrSyncDone(threadRef, result) },
//   });
//   engine.start();                             // sets initial protections
//   native fault (slot, page, isWrite)   -> engine.onFault(slot, page, isWrite)
//   app sync request (requestId, req)    -> engine.onSync(requestId, req)
//   transport message (from, message)    -> engine.onMessage(from, message)
//   timer, e.g. every 10 ms              -> engine.onTick(clock())  (clock: monotonic ms, also handed in)
//   postMessage / new Worker to node B   -> info = engine.releaseFor(B), attach info;
//   ... received on node B from node A   -> engineB.acquireFrom(A, info) before delivering
//
// Every call acts synchronously (memory operations, sends, resumes) and
// returns; the engine never awaits and keeps no clock of its own.
//
// createEngine assembles one from parts (core.ts): the coherence of the
// protocol (hlrc.ts or sc.ts, behind coherence.ts), the one sync layer
// (sync.ts, atomics.ts) and the one interval log (intervals.ts). The public
// types live in types.ts and are re-exported here.

import { DsmError } from '../errors.js';
import type { Engine, EngineOptions, ProtocolName } from './types.js';
import { protocolNames } from './types.js';
import { ProtocolEngine } from './core.js';
import { HlrcCoherence } from './hlrc.js';
import { ScCoherence } from './sc.js';
import { sendingSplitDiffs } from './diff-split.js';
import { LineEngine } from './lines.js';

export * from './types.js';

export function parseProtocol(name: string | undefined): ProtocolName {
  const value = name ?? 'hlrc';
  if ((protocolNames as readonly string[]).includes(value)) return value as ProtocolName;
  throw new DsmError('DSM_ERR_PROTOCOL', `unknown protocol '${value}': valid protocols are ${protocolNames.join(', ')}`);
}

export function createEngine(options: EngineOptions): Engine {
  const protocol = parseProtocol(options.protocol);
  if (!(options.nodeId >= 0 && options.nodeId < options.nodeCount)) {
    throw new DsmError('DSM_ERR_INVALID_OPTION', `nodeId ${options.nodeId} is not within 0..${options.nodeCount - 1}`);
  }
  // Oversized diffs messages leave as pieces (src/protocol/diff-split.ts).
  const split: EngineOptions = { ...options, send: sendingSplitDiffs(options.send) };
  // One sync layer and one interval log, with the protocol's coherence (sc places managers round-robin).
  if (protocol === 'sc') return new ProtocolEngine(split, 'roundRobin', ({ ctx }) => new ScCoherence(ctx));
  const engine = new ProtocolEngine(split, split.placement ?? 'roundRobin',
    (parts) => new HlrcCoherence(parts.ctx, parts.intervals, parts.options, parts.atomicWaiterOn));
  if (!linesApply(options) || options.lines === undefined) return engine;
  // Atomics by line ownership (src/protocol/lines.ts) in front of the hlrc engine; its sends split diffs too.
  return new LineEngine(engine, {
    nodeId: split.nodeId, nodeCount: split.nodeCount, pageCount: split.pageCount, send: split.send,
    resume: (ref, result) => split.host.resume(ref, result), host: options.lines,
    ...(split.host.waitRegistered === undefined ? {} : { waitRegistered: (address: number) => split.host.waitRegistered!(address) }),
    ...(split.placement === undefined ? {} : { placement: split.placement }),
    ...(split.clock === undefined ? {} : { clock: split.clock }),
    ...(split.lineHotWritesPerTransfer === undefined ? {} : { hotWritesPerTransfer: split.lineHotWritesPerTransfer }),
    ...(split.linePagePush === undefined ? {} : { pagePush: split.linePagePush }),
    ...(split.lineShipOps === undefined ? {} : { shipOps: split.lineShipOps }),
    ...(split.lineShareLoads === undefined ? {} : { shareLoads: split.lineShareLoads }),
    ...(split.lineShareAhead === undefined ? {} : { shareAhead: split.lineShareAhead }),
    ...(split.lineNotifyInThread === undefined ? {} : { notifyInThread: split.lineNotifyInThread }),
    ...(split.lineShipSampleOps === undefined ? {} : { shipSampleOps: split.lineShipSampleOps }),
    ...(split.lineShipBackoffMax === undefined ? {} : { shipBackoffMax: split.lineShipBackoffMax }),
    ...(split.lineShipWaits === undefined ? {} : { shipWaits: split.lineShipWaits }),
    ...(split.lineNotifyRelease === undefined ? {} : { notifyRelease: split.lineNotifyRelease }),
    ...(split.lineWaitRelease === undefined ? {} : { waitRelease: split.lineWaitRelease }),
    ...(split.lineCountedNotify === undefined ? {} : { countedNotify: split.lineCountedNotify }),
  });
}

/**
 * Whether Atomics run by line ownership: hlrc on several nodes, not in race
 * mode (whose race home keeps per-location clocks on the home path). sc keeps
 * the home path: its atomics run at the page's manager once it holds the page.
 */
export function linesApply(options: { protocol?: string; nodeCount: number; homeNode?: number; lines?: unknown }): boolean {
  return linesSuit(options) && options.lines !== undefined;
}

/** Whether a run of this protocol, node count and race home would use atomic lines (given a line host). */
export function linesSuit(options: { protocol?: string; nodeCount: number; homeNode?: number }): boolean {
  return (options.protocol ?? 'hlrc') === 'hlrc' && options.nodeCount > 1 && options.homeNode === undefined;
}
