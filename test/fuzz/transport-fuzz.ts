// A seeded, structure-aware fuzzer for everything a peer's bytes reach: the
// frame decoder, the message decoder, the handshake (both sides, through a
// man in the middle that mutates frames in flight) and, once a pair is
// authenticated, the dispatch of protocol messages into a real engine.
//
// Inputs start from valid frames and messages and are mutated (bytes,
// lengths, field values and types, frame order). An input passes when all
// that comes out is a FrameError / DsmError, a settled handshake, or an
// 'error' event naming the peer: never another exception, never a promise
// left pending, and memory stays bounded. Input i of seed S is reproducible
// alone: `npm run fuzz -- --seed S --only i`.

import { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import { Packr } from 'msgpackr';
import { pageBytes } from '../../src/constants.js';
import { DsmError } from '../../src/errors.js';
import { createEngine } from '../../src/protocol/engine.js';
import type { ProtocolMessage } from '../../src/protocol/messages.js';
import { fromWire, toWire } from '../../src/runtime/envelope.js';
import { decodeBody, encodeBody, type WireMessage } from '../../src/transport/codec.js';
import { type Connection, type Hello, handshake } from '../../src/transport/connection.js';
import { FrameDecoder, FrameError, encodeFrameHeader, frameKinds, wireVersion } from '../../src/transport/frame.js';
import { Prng, SimMemory } from '../sim/sim.js';

const packr = new Packr({ useRecords: false, moreTypes: false, int64AsType: 'bigint', mapsAsObjects: true });
const secret = 'fuzz-secret-0123456789-abcdefghijklmnopqrstuvwxyz';
const baseHello: Hello = { clusterId: 'fuzz', dsmVersion: '0.1.0', wireVersion, coherence: 'hlrc', pageBytes, regionBytes: 64 * pageBytes, nodeId: 0 };
const nodeCount = 3;
const pageCount = 64;

export interface FuzzOptions { inputs: number; seed: number; only?: number; log?: (line: string) => void }
export interface FuzzReport {
  seed: number; inputs: number; byTarget: Record<string, number>; outcomes: Record<string, number>;
  failures: Array<{ seed: number; input: number; target: string; error: string }>; rssBytesMax: number; seconds: number;
}

/** An in-memory socket end: what one end writes, the other receives on a later tick (as TCP would). */
class FakeSocket extends Duplex {
  peer: FakeSocket | null = null;
  /** Sees (and may rewrite) each chunk on its way to the peer. */
  tap: ((chunk: Buffer) => Buffer[]) | null = null;
  remoteAddress = '127.0.0.1';
  remotePort = 7400;
  setNoDelay(): this { return this; }
  override _read(): void {}
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    const peer = this.peer;
    const out = this.tap === null ? [chunk] : this.tap(chunk);
    // One receive per piece, each its own I/O callback (microtasks run between them, as on a real socket).
    for (const piece of out) setImmediate(() => { if (peer !== null && !peer.destroyed) peer.push(piece); });
    callback();
  }
  override _final(callback: (error?: Error | null) => void): void {
    const peer = this.peer;
    setImmediate(() => { if (peer !== null && !peer.destroyed) peer.push(null); });
    callback();
  }
  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const peer = this.peer;
    this.peer = null;
    setImmediate(() => { if (peer !== null && !peer.destroyed) peer.destroy(); });
    callback(error);
  }
  override readonly writableLength = 0;
}

function socketPair(): [FakeSocket, FakeSocket] {
  const a = new FakeSocket();
  const b = new FakeSocket();
  a.peer = b;
  b.peer = a;
  return [a, b];
}

// Mutations -----------------------------------------------------------------

const interestingBytes = [0x00, 0x01, 0x7f, 0x80, 0xff, 0xc0, 0xc1, 0xc6, 0xc9, 0xd4, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0x90, 0x9f, 0xa0, 0xbf];
const bombs = [[0xdd, 0x02, 0, 0, 0], [0xdf, 0x7f, 0xff, 0xff, 0xff], [0xdb, 0xff, 0xff, 0xff, 0xff], [0xc6, 0x7f, 0, 0, 0], [0xc9, 0x7f, 0, 0, 0, 1]];

function mutateBytes(rng: Prng, input: Buffer): Buffer {
  let bytes = Buffer.from(input);
  const count = 1 + rng.int(4);
  for (let step = 0; step < count; step += 1) {
    const at = bytes.length === 0 ? 0 : rng.int(bytes.length);
    switch (rng.int(8)) {
      case 0: if (bytes.length > 0) bytes[at] = bytes[at]! ^ (1 << rng.int(8)); break;
      case 1: if (bytes.length > 0) bytes[at] = interestingBytes[rng.int(interestingBytes.length)]!; break;
      case 2: bytes = bytes.subarray(0, at); break;
      case 3: bytes = Buffer.concat([bytes.subarray(0, at), Buffer.from(bombs[rng.int(bombs.length)]!), bytes.subarray(at)]); break;
      case 4: bytes = Buffer.concat([bytes, bytes.subarray(at, at + 1 + rng.int(64))]); break;
      case 5: if (bytes.length >= 16) bytes.writeUInt32BE(rng.chance(0.5) ? rng.int(1 << 30) : rng.int(bytes.length + 64), rng.chance(0.5) ? 8 : 12); break;
      case 6: if (bytes.length >= 6) bytes[rng.chance(0.5) ? 5 : 4] = rng.int(8); break;
      default: bytes = Buffer.concat([bytes.subarray(0, at), Buffer.from(Array.from({ length: 1 + rng.int(16) }, () => rng.int(256))), bytes.subarray(at)]);
    }
  }
  return bytes;
}

function randomValue(rng: Prng, depth = 0): unknown {
  switch (rng.int(16)) {
    case 0: return null;
    case 1: return -1;
    case 2: return 2 ** 31;
    case 3: return Number.MAX_SAFE_INTEGER;
    case 4: return 1.5;
    case 5: return '';
    case 6: return 'x'.repeat(rng.int(300));
    case 7: return [];
    case 8: return {};
    case 9: return new Uint8Array(rng.int(64));
    case 10: return rng.chance(0.5);
    case 11: return 1n << 62n;
    case 12: return depth < 3 ? [randomValue(rng, depth + 1), randomValue(rng, depth + 1)] : 0;
    case 13: return depth < 3 ? { type: 'x', page: randomValue(rng, depth + 1) } : 0;
    case 14: return rng.int(pageCount * 2) - 8;
    default: return Array.from({ length: rng.int(8) }, () => rng.int(4) - 1);
  }
}

/** Replaces, removes or adds one field somewhere in a message (structure-aware). */
function mutateValue(rng: Prng, message: Record<string, unknown>): Record<string, unknown> {
  const copy = structuredClone(message) as Record<string, unknown>;
  const count = 1 + rng.int(3);
  for (let step = 0; step < count; step += 1) {
    let target: Record<string, unknown> | unknown[] = copy;
    for (let depth = 0; depth < 3; depth += 1) {
      const keys = Object.keys(target);
      if (keys.length === 0) break;
      const next = (target as Record<string, unknown>)[keys[rng.int(keys.length)]!];
      if (typeof next !== 'object' || next === null || next instanceof Uint8Array || rng.chance(0.4)) break;
      target = next as Record<string, unknown>;
    }
    const keys = Object.keys(target);
    const key = keys.length === 0 || rng.chance(0.1) ? `extra${rng.int(4)}` : keys[rng.int(keys.length)]!;
    if (rng.chance(0.15) && !Array.isArray(target)) delete (target as Record<string, unknown>)[key];
    else if (key === 'type' && rng.chance(0.5)) (target as Record<string, unknown>)[key] = corpusTypes[rng.int(corpusTypes.length)];
    else (target as Record<string, unknown>)[key] = randomValue(rng);
  }
  return copy;
}

// Corpora -------------------------------------------------------------------

const info = () => ({ vc: [0, 0, 0], known: [0, 0, 0], intervals: [{ node: 1, index: 1, pages: [3, 4] }] });
const page = () => new Uint8Array(pageBytes);
const protocolCorpus: ProtocolMessage[] = [
  { type: 'pageRequest', page: 1, need: [0, 0, 0], extraPages: [2], extraNeeds: [[0, 0, 0]] },
  { type: 'pageReply', page: 1, version: [0, 0, 0], bytes: page(), extraPages: [], extraVersions: [], extraBytes: [] },
  { type: 'pageReply', page: 1, version: [0, 0, 0], bytes: page(), extraPages: [2, 3], extraVersions: [[0, 0, 0], [0, 0, 0]], extraBytes: [page(), page()] },
  { type: 'pageReply', page: 1, version: [], bytes: new Uint8Array(0), extraPages: [2], extraVersions: [[0, 0, 0]], extraBytes: [page()] },
  // Large enough for the page payload (src/runtime/envelope.ts toWire).
  { type: 'pageReply', page: 1, version: [0, 0, 0], bytes: page(), extraPages: [2, 3, 4, 5], extraVersions: [[0, 0, 0], [0, 0, 0], [0, 0, 0], [0, 0, 0]], extraBytes: [page(), page(), page(), page()] },
  { type: 'diffs', interval: 1, pages: [1], diffs: [new Uint8Array([0, 0, 0, 0, 4, 0, 1, 2, 3, 4])] },
  { type: 'scRequest', page: 1, requester: 1, isWrite: true },
  { type: 'scForward', page: 1, requester: 2, isWrite: false, copyset: [0, 1] },
  { type: 'scPage', page: 1, isWrite: true, bytes: page(), copyset: [0] },
  { type: 'scInvalidate', page: 1, requester: 1 },
  { type: 'scInvalidateAck', page: 1 },
  { type: 'scConfirm', page: 1, isWrite: true },
  { type: 'lockRequest', lockId: 1, requestId: 1, tryOnly: false, info: info() },
  { type: 'lockGrant', lockId: 1, requestId: 1, granted: true, info: info() },
  { type: 'lockRelease', lockId: 1, info: info() },
  { type: 'lockGrant', lockId: 1, requestId: 1, granted: true, info: info(), recall: true },
  { type: 'lockGrant', lockId: 1, requestId: 1, granted: true, info: info(), pushPages: [2], pushVersions: [[0, 1, 0]], pushBytes: [page()], pushApplied: [0] },
  { type: 'lockRecall', lockId: 1, tryOnly: true },
  { type: 'lockBusy', lockId: 1 },
  { type: 'barrierArrive', barrierId: 1, parties: 3, arrivals: [1, 2], round: 4, vcMax: [1, 2, 3], vcMin: [0, 1, 2], info: info() },
  { type: 'barrierArrive', barrierId: 1, parties: 2, arrivals: [0, 7], round: 9, peer: true, info: info() },
  { type: 'barrierArrive', barrierId: 1, parties: 2, arrivals: [], round: 9, flushed: true, peerFlushed: true, info: info() },
  { type: 'barrierDepart', barrierId: 1, requestIds: [2, 3], error: '', serial: 2, floor: [0, 0, 0], info: info(), plan: { round: 5, parties: 3, parent: 0, local: 2, children: 1 } },
  { type: 'barrierDepart', barrierId: 1, requestIds: [4], error: '', serial: 0, floor: [0, 0], info: info(), plan: { round: 2, parties: 2, parent: 0, local: 1, children: 0, peerLocal: 1 } },
  { type: 'barrierFlush', barrierId: 1, round: 5 },
  { type: 'atomicRequest', requestId: 4, op: 'add', address: 64, width: 4, operands: ['1'], timeoutMs: -1, info: info() },
  { type: 'atomicReply', requestId: 4, result: '0', info: info() },
  { type: 'atomicCancel', requestId: 4 },
  { type: 'vcQuery', info: info() },
  { type: 'vcReport', vc: [0, 0, 0] },
];
const corpusTypes = protocolCorpus.map((message) => message.type);

function frameOf(kind: number, message: WireMessage): Buffer {
  const { body, payload } = encodeBody(message);
  return Buffer.concat([encodeFrameHeader(kind as 1, body.byteLength, payload?.byteLength ?? 0), body, payload ?? new Uint8Array(0)]);
}

/** Valid frames of every kind, encoded once (mutations copy them). */
const validFrames: Buffer[] = [
  frameOf(frameKinds.hello, { type: 'hello', hello: { ...baseHello }, nonce: new Uint8Array(32) }),
  frameOf(frameKinds.proof, { type: 'proof', proof: new Uint8Array(32) }),
  frameOf(frameKinds.refused, { type: 'refused', code: 'DSM_ERR_SECRET', reason: 'no' }),
  Buffer.from(encodeFrameHeader(frameKinds.heartbeat, 0, 0)),
  ...protocolCorpus.map((message) => frameOf(frameKinds.message, message as unknown as WireMessage)),
];
const packedCorpus = protocolCorpus.map((message) => packr.pack(message));

function validFrame(rng: Prng): Buffer {
  return validFrames[rng.int(validFrames.length)]!;
}

// Targets -------------------------------------------------------------------

type Outcome = string;

function frameTarget(rng: Prng): Outcome {
  const frames = Array.from({ length: 1 + rng.int(3) }, () => (rng.chance(0.7) ? mutateBytes(rng, validFrame(rng)) : validFrame(rng)));
  const stream = Buffer.concat(frames);
  const decoder = new FrameDecoder(rng.chance(0.5) ? 4096 : undefined);
  try {
    for (let at = 0; at < stream.length;) {
      const size = 1 + rng.int(Math.max(1, stream.length));
      decoder.push(stream.subarray(at, at + size));
      at += size;
    }
    return 'frames ok';
  } catch (error) {
    if (error instanceof FrameError) return 'frame refused';
    throw error;
  }
}

function messageTarget(rng: Prng): Outcome {
  const index = rng.int(protocolCorpus.length);
  let body: Uint8Array = rng.chance(0.5) ? packr.pack(mutateValue(rng, protocolCorpus[index] as unknown as Record<string, unknown>)) : packedCorpus[index]!;
  if (rng.chance(0.6)) body = mutateBytes(rng, Buffer.from(body));
  try {
    const payload = rng.chance(0.5) ? new Uint8Array(0) : new Uint8Array(rng.chance(0.5) ? pageBytes : rng.int(3 * pageBytes));
    fromWire(decodeBody(body, payload));
    return 'message ok';
  } catch (error) {
    if (error instanceof FrameError) return 'message refused';
    throw error;
  }
}

/** Rewrites the frames one side sends: pass, mutate bytes or fields, drop, duplicate, split. */
function manInTheMiddle(rng: Prng, rate: number): (chunk: Buffer) => Buffer[] {
  const decoder = new FrameDecoder();
  return (chunk) => {
    const out: Buffer[] = [];
    for (const frame of decoder.push(chunk)) {
      const bytes = Buffer.concat([encodeFrameHeader(frame.kind, frame.body.byteLength, frame.payload.byteLength), frame.body, frame.payload]);
      if (!rng.chance(rate)) { out.push(bytes); continue; }
      switch (rng.int(6)) {
        case 0: out.push(mutateBytes(rng, bytes)); break;
        case 1: {
          const message = decodeBody(frame.body, frame.payload) as Record<string, unknown>;
          out.push(frameOf(frame.kind, mutateValue(rng, message) as WireMessage));
          break;
        }
        case 2: break;
        case 3: out.push(bytes, bytes); break;
        case 4: { const at = rng.int(bytes.length); out.push(bytes.subarray(0, at), bytes.subarray(at)); break; }
        default: out.push(validFrame(rng), bytes);
      }
    }
    return out;
  };
}

async function settle<T>(promise: Promise<T>, what: string, giveUp: () => void): Promise<{ ok: true; value: T } | { ok: false; error: unknown }> {
  // Everything runs on immediates and microtasks: a handshake still pending after a burst of them waits
  // for frames that will not come; one still pending after its socket closed is hung.
  let result: { ok: true; value: T } | { ok: false; error: unknown } | null = null;
  promise.then((value) => { result = { ok: true, value }; }, (error: unknown) => { result = { ok: false, error }; });
  for (let round = 0; round < 60 && result === null; round += 1) {
    if (round === 30) giveUp();
    await new Promise((resolve) => setImmediate(resolve));
  }
  if (result === null) throw new Error(`${what} did not settle after its socket closed (hang)`);
  return result;
}

function expectDsmError(result: { ok: boolean; error?: unknown }, what: string): void {
  if (!result.ok && !(result.error instanceof DsmError)) throw new Error(`${what} failed with a non-dsm error: ${String((result.error as Error)?.stack ?? result.error)}`);
}

async function handshakePair(rng: Prng, rate: number): Promise<{ outcome: Outcome; pair: [Connection, Connection] | null; sockets: FakeSocket[] }> {
  const [a, b] = socketPair();
  a.tap = manInTheMiddle(rng, rate);
  b.tap = manInTheMiddle(rng, rate);
  // An owner listens for 'error' as soon as it has the connection (as the mesh and the cluster do).
  const owned = (connection: Connection): Connection => connection.on('error', () => {});
  const accepting = handshake(a as unknown as Socket, { hello: { ...baseHello, nodeId: 0 }, secret, role: 'accept', peerLabel: 'fuzz peer' }).then(owned);
  const connecting = handshake(b as unknown as Socket, { hello: { ...baseHello, nodeId: 1 }, secret: rng.chance(0.05) ? `${secret}!` : secret, role: 'connect', peerLabel: 'fuzz node' }).then(owned);
  // A side left waiting for frames the man in the middle dropped is ended as its deadline or a closed socket would.
  const [left, right] = await Promise.all([
    settle(accepting, 'the accepting handshake', () => a.destroy()),
    settle(connecting, 'the connecting handshake', () => b.destroy()),
  ]);
  expectDsmError(left, 'the accepting handshake');
  expectDsmError(right, 'the connecting handshake');
  if (left.ok && right.ok) return { outcome: 'handshake ok', pair: [left.value, right.value], sockets: [a, b] };
  if (left.ok) left.value.close();
  if (right.ok) right.value.close();
  a.destroy();
  b.destroy();
  return { outcome: left.ok || right.ok ? 'handshake half' : 'handshake refused', pair: null, sockets: [a, b] };
}

async function handshakeTarget(rng: Prng): Promise<Outcome> {
  const { outcome, pair } = await handshakePair(rng, 0.3);
  if (pair !== null) { pair[0].close(); pair[1].close(); }
  return outcome;
}

/** An authenticated pair; the accepting side dispatches what arrives into an engine, as a node does. */
async function dispatchTarget(rng: Prng): Promise<Outcome> {
  const { pair, sockets } = await handshakePair(rng, 0);
  if (pair === null) return 'dispatch no pair';
  const [receiver, sender] = pair;
  const engine = createEngine({
    nodeId: 0, nodeCount, pageCount, protocol: rng.chance(0.5) ? 'hlrc' : 'sc', placement: 'roundRobin',
    memory: new SimMemory(pageCount), send: () => true, host: { resume: () => {} },
  });
  engine.start();
  let failure: unknown = null;
  // Through the envelope, as a node's messages go (page copies as the frame's payload).
  receiver.on('message', (message: WireMessage) => engine.onMessage(1, fromWire(message) as unknown as ProtocolMessage));
  receiver.on('error', (error: unknown) => { failure = error; });
  sender.on('error', () => {});
  const tap = manInTheMiddle(rng, 0.3);
  sockets[1]!.tap = (chunk) => tap(chunk);
  const count = 1 + rng.int(4);
  for (let index = 0; index < count; index += 1) {
    const message = protocolCorpus[rng.int(protocolCorpus.length)] as unknown as Record<string, unknown>;
    try { sender.send(toWire((rng.chance(0.6) ? mutateValue(rng, message) : message) as unknown as ProtocolMessage)); } catch { break; }
  }
  for (let round = 0; round < 20; round += 1) await new Promise((resolve) => setImmediate(resolve));
  receiver.close();
  sender.close();
  if (failure !== null) {
    if (!(failure instanceof DsmError) || !/fuzz peer|node 1/.test(failure.message)) throw new Error(`dispatch failed without naming the peer: ${String(failure)}`);
    return 'dispatch ended the connection';
  }
  return 'dispatch ok';
}

const targets: Array<[string, (rng: Prng) => Outcome | Promise<Outcome>, number]> = [
  // name, target, weight (handshakes cost more than decoding)
  ['frame decoder', frameTarget, 20],
  ['message decoder', messageTarget, 20],
  ['handshake', handshakeTarget, 1],
  ['dispatch', dispatchTarget, 1],
];
const weightTotal = targets.reduce((sum, [, , weight]) => sum + weight, 0);

function targetFor(rng: Prng): [string, (rng: Prng) => Outcome | Promise<Outcome>] {
  let pick = rng.int(weightTotal);
  for (const [name, target, weight] of targets) {
    if (pick < weight) return [name, target];
    pick -= weight;
  }
  throw new Error('unreachable');
}

/** The input running now (for a report of an exception nothing caught). */
export let currentInput: { input: number; target: string } | null = null;

export async function runFuzz(options: FuzzOptions): Promise<FuzzReport> {
  const startMs = performance.now();
  const report: FuzzReport = { seed: options.seed, inputs: 0, byTarget: {}, outcomes: {}, failures: [], rssBytesMax: 0, seconds: 0 };
  const first = options.only ?? 0;
  const last = options.only !== undefined ? options.only + 1 : options.inputs;
  for (let input = first; input < last; input += 1) {
    // One generator per input: input i of seed S replays alone.
    const rng = new Prng((options.seed * 0x9e3779b1 + input * 0x85ebca6b) >>> 0);
    const [name, target] = targetFor(rng);
    currentInput = { input, target: name };
    report.byTarget[name] = (report.byTarget[name] ?? 0) + 1;
    try {
      const outcome = await target(rng);
      report.outcomes[outcome] = (report.outcomes[outcome] ?? 0) + 1;
    } catch (error) {
      const failure = { seed: options.seed, input, target: name, error: String((error as Error)?.stack ?? error) };
      report.failures.push(failure);
      options.log?.(`FAIL seed ${options.seed} input ${input} (${name}): ${failure.error}\n  replay: npm run fuzz -- --seed ${options.seed} --only ${input}`);
      if (report.failures.length >= 10) break;
    }
    report.inputs += 1;
    if (input % 1000 === 0) {
      report.rssBytesMax = Math.max(report.rssBytesMax, process.memoryUsage().rss);
      if (input % 100_000 === 0 && input > 0) options.log?.(`  ${input} inputs, rss ${Math.round(report.rssBytesMax / 1048576)} MiB`);
    }
  }
  report.rssBytesMax = Math.max(report.rssBytesMax, process.memoryUsage().rss);
  report.seconds = (performance.now() - startMs) / 1000;
  return report;
}
