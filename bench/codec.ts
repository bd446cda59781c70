// The wire codec's CPU per message (src/transport/compact.ts against msgpackr, src/transport/codec.ts), in one run:
//   <phase>EncodeUs / <phase>DecodeUs   µs a message, encode (the body after a frame header's room, as
//                                       Connection sends it) and decode (decodeBody of that body), over a mix of
//                                       realistic messages (below), compact for the kinds that have a compact form
//   msgpack<Phase>EncodeUs / ...        the same messages through msgpackr (the fallback: its pack, and
//                                       decodeBody's scan and unpack), in the same process
//   phase cold: the first `coldRounds` passes over the mix in a fresh process (how a manager meets the codec in
//               a short program: a Jacobi run sends a few hundred messages, mostly barrierArrive, and the code is
//               interpreted or baseline); warm: `iterations` passes after as many untimed (optimized code);
//               interpreted: a child node with V8's optimizing and baseline compilers off (--no-opt
//               --no-sparkplug), `iterations / 20` passes: the bytecode's cost alone, steadier than cold;
//               baseline: the same with every function compiled by Sparkplug at once (--always-sparkplug),
//               `iterations / 5` passes (a short program's managers run mostly interpreted and baseline code).
// Times are the process's CPU time (process.cpuUsage), so the machine's load moves them less than a wall clock's would.
// The mix: a 2-node Jacobi round's barrierArrive (the peer barrier: vcMax, vcMin, round, write notices), a
// barrierDepart, a release's diffs (8 diffs of ~200 B), a lock request with bundled diffs and its grant, a page
// request and a one-page reply, a shipped op and its reply. Each message is decoded from its own copy of the
// body (as a frame from the socket is).

import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Packr } from 'msgpackr/pack';
import { decodeBody, encodeBodyAfter, type WireMessage } from '../src/transport/codec.js';
import { compactMarker } from '../src/transport/compact.js';
import { frameHeaderBytes } from '../src/transport/frame.js';

export interface CodecBenchResult {
  iterations: number;
  messagesPerPass: number;
  coldRounds: number;
  coldEncodeUs: number;
  coldDecodeUs: number;
  warmEncodeUs: number;
  warmDecodeUs: number;
  msgpackColdEncodeUs: number;
  msgpackColdDecodeUs: number;
  msgpackWarmEncodeUs: number;
  msgpackWarmDecodeUs: number;
  baselineEncodeUs: number;
  baselineDecodeUs: number;
  msgpackBaselineEncodeUs: number;
  msgpackBaselineDecodeUs: number;
  interpretedEncodeUs: number;
  interpretedDecodeUs: number;
  msgpackInterpretedEncodeUs: number;
  msgpackInterpretedDecodeUs: number;
  /** Warm µs a message by kind (compact), encode then decode. */
  byType: Record<string, [number, number]>;
}

const round = (value: number) => Math.round(value * 1000) / 1000;

function diffOf(byteCount: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(byteCount);
  for (let k = 0; k < byteCount; k++) bytes[k] = (k * 31 + seed) & 0xff;
  return bytes;
}

/** Realistic messages (shapes from src/protocol/messages.ts, sizes of a 2-node Jacobi and a lock program). */
export function codecMix(): WireMessage[] {
  const info = { vc: [412, 409], known: [412, 409], intervals: [{ node: 1, index: 409, pages: [1030, 1031, 1032, 1033] }] };
  const infoLarge = {
    vc: [412, 409, 87, 3], known: [412, 409, 87, 3],
    intervals: [
      { node: 1, index: 409, pages: [1030, 1031, 1032, 1033, 1034, 1035] },
      { node: 2, index: 87, pages: [70_000, 70_001] },
      { node: 3, index: 3, pages: [] },
    ],
  };
  const diffs = Array.from({ length: 8 }, (_, k) => diffOf(180 + 8 * k, k));
  const bundled = { interval: 409, pages: [1030, 1031, 1032, 1033, 1034, 1035, 1036, 1037], diffs };
  const page = diffOf(4096, 3);
  return [
    { type: 'barrierArrive', barrierId: 1, parties: 2, arrivals: [0, 1], info, round: 412, vcMax: [412, 409], vcMin: [411, 409], peer: true },
    { type: 'barrierArrive', barrierId: 1, parties: 2, arrivals: [1, 2], info: infoLarge, round: 413, vcMax: [413, 410], vcMin: [412, 409], peer: true, peerFlushed: true },
    { type: 'barrierDepart', barrierId: 1, requestIds: [40, 41], error: '', serial: 41, floor: [411, 409], info },
    { type: 'diffs', interval: 409, pages: bundled.pages, diffs, origin: 1 },
    { type: 'lockRequest', lockId: 3, requestId: 12, tryOnly: false, info, bundled },
    { type: 'lockGrant', lockId: 3, requestId: 12, granted: true, info: infoLarge },
    { type: 'pageRequest', page: 1030, need: [412, 409], extraPages: [], extraNeeds: [] },
    { type: 'pageReply', page: 1030, version: [412, 409], bytes: page, extraPages: [], extraVersions: [], extraBytes: [] },
    { type: 'lineOp', requestId: 77, op: 'add', address: 17 * 2 ** 32 + 8, width: 4, operands: ['1'], info },
    { type: 'lineOpDone', requestId: 77, result: '41', info },
  ];
}

const packr = new Packr({ useRecords: false, moreTypes: false, int64AsType: 'bigint', mapsAsObjects: true });

/** The bodies of `mix` (compact or msgpack), each in a buffer of its own, as the frame reader hands them on. */
function bodiesOf(mix: WireMessage[], msgpack: boolean): Buffer[] {
  return mix.map((message) => Buffer.from(msgpack ? packr.pack(message) : encodeBodyAfter(message, frameHeaderBytes).subarray(frameHeaderBytes)));
}

const empty = new Uint8Array(0);
let sink = 0;

/**
 * This process's CPU time in ns (getrusage: to the µs), not the wall clock: on a loaded machine a wall clock
 * counts the other processes' turns on the CPU (at load 5 on 2 cores, twice the time and more). It counts V8's
 * helper threads too (concurrent marking, compiling), which work for the code measured. (The thread's own
 * /proc/thread-self/schedstat moves only at the scheduler's ticks: 0 for a phase of 2 ms.)
 */
function cpuNs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) * 1000;
}

/** µs a message to encode, then to decode, `passes` passes over `mix`, one way (compact or msgpackr). */
function timeMix(mix: WireMessage[], passes: number, msgpack: boolean): { encodeUs: number; decodeUs: number } {
  const bodies = bodiesOf(mix, msgpack);
  const t0 = cpuNs();
  for (let pass = 0; pass < passes; pass++) {
    for (let k = 0; k < mix.length; k++) sink += (msgpack ? packr.pack(mix[k]!) : encodeBodyAfter(mix[k]!, frameHeaderBytes)).byteLength;
  }
  const t1 = cpuNs();
  for (let pass = 0; pass < passes; pass++) {
    for (let k = 0; k < bodies.length; k++) sink += decodeBody(bodies[k]!, empty).type.length;
  }
  const t2 = cpuNs();
  const count = passes * mix.length;
  return { encodeUs: (t1 - t0) / 1000 / count, decodeUs: (t2 - t1) / 1000 / count };
}

export async function runCodecBench(options: { iterations: number }): Promise<CodecBenchResult> {
  const mix = codecMix();
  for (const message of mix) {
    if (encodeBodyAfter(message, frameHeaderBytes)[frameHeaderBytes] !== compactMarker) throw new Error(`${message.type} of the mix is not compact`);
  }
  // The check above ran each writer once; the cold phase is what follows (as a manager's first rounds).
  const coldRounds = 40;
  const cold = timeMix(mix, coldRounds, false);
  const msgpackCold = timeMix(mix, coldRounds, true);
  // Warmed up first (untimed): V8's optimizing compiles are done by then.
  timeMix(mix, options.iterations, false);
  timeMix(mix, options.iterations, true);
  const warm = timeMix(mix, options.iterations, false);
  const msgpackWarm = timeMix(mix, options.iterations, true);
  const interpreted = childRun(['--no-opt', '--no-sparkplug'], Math.max(10, Math.round(options.iterations / 20)));
  const baseline = childRun(['--no-opt', '--always-sparkplug'], Math.max(10, Math.round(options.iterations / 5)));
  const byType: Record<string, [number, number]> = {};
  mix.forEach((message, k) => {
    const key = byType[message.type] === undefined ? message.type : `${message.type}#${k}`;
    const alone = timeMix(Array.from({ length: 10 }, () => message), Math.ceil(options.iterations / 10), false);
    byType[key] = [round(alone.encodeUs), round(alone.decodeUs)];
  });
  return {
    iterations: options.iterations,
    messagesPerPass: mix.length,
    coldRounds,
    coldEncodeUs: round(cold.encodeUs),
    coldDecodeUs: round(cold.decodeUs),
    warmEncodeUs: round(warm.encodeUs),
    warmDecodeUs: round(warm.decodeUs),
    msgpackColdEncodeUs: round(msgpackCold.encodeUs),
    msgpackColdDecodeUs: round(msgpackCold.decodeUs),
    msgpackWarmEncodeUs: round(msgpackWarm.encodeUs),
    msgpackWarmDecodeUs: round(msgpackWarm.decodeUs),
    baselineEncodeUs: round(baseline.compact.encodeUs),
    baselineDecodeUs: round(baseline.compact.decodeUs),
    msgpackBaselineEncodeUs: round(baseline.msgpack.encodeUs),
    msgpackBaselineDecodeUs: round(baseline.msgpack.decodeUs),
    interpretedEncodeUs: round(interpreted.compact.encodeUs),
    interpretedDecodeUs: round(interpreted.compact.decodeUs),
    msgpackInterpretedEncodeUs: round(interpreted.msgpack.encodeUs),
    msgpackInterpretedDecodeUs: round(interpreted.msgpack.decodeUs),
    byType,
    ...(sink === 0 ? { sink } : {}),
  };
}

type Timing = { encodeUs: number; decodeUs: number };

/** The mix timed in a child node run with V8 `flags` (this module run as a script with --interpreted). */
function childRun(flags: string[], passes: number): { compact: Timing; msgpack: Timing } {
  const child = spawnSync(process.execPath, [...flags, fileURLToPath(import.meta.url), '--interpreted', String(passes)], { encoding: 'utf8' });
  if (child.status !== 0) throw new Error(`the run with ${flags.join(' ')} failed: ${child.stderr}`);
  return JSON.parse(child.stdout) as { compact: Timing; msgpack: Timing };
}

if (process.argv[2] === '--interpreted' && process.argv[1] === fileURLToPath(import.meta.url)) {
  const passes = Number(process.argv[3]);
  const mix = codecMix();
  const compact = timeMix(mix, passes, false);
  const msgpack = timeMix(mix, passes, true);
  process.stdout.write(`${JSON.stringify({ compact, msgpack })}\n`);
}
