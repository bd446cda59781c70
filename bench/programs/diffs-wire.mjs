// A writer's diffs through the wire path alone (session 15, docs/EVALUATION.md
// "Session 15: diffs and page copies as batches"): the sender's envelope and
// encoding as the connection writes a frame (toWire, then the compact or
// msgpack body, the payload apart), and the receiver's frame decoding, body
// decoding and envelope (fromWire), in one process, no socket. Three shapes:
// a lock release of QuickSort's size (30 diffs of ~3.3 KiB, ~100 KB, bundled),
// a `diffs` message of Jacobi's start (256 diffs of 2.4 KiB, ~620 KB), and a
// small release (12 diffs of 600 bytes). The diffs lie back to back in one
// buffer, as the native flush leaves them. Prints µs a message: the first 20
// of each shape (cold code, as a one-second run's managers run it) and the
// median of rounds after 300 (warm). Plain node: run each tree's copy to compare.
// Usage: node bench/programs/diffs-wire.mjs
import { performance } from 'node:perf_hooks';
import { fromWire, toWire } from '../../dist/src/runtime/envelope.js';
import { decodeBody, encodeBody, encodeBodyAfter } from '../../dist/src/transport/codec.js';
import { FrameDecoder, encodeFrameHeader, frameHeaderBytes, frameKinds, writeFrameHeader } from '../../dist/src/transport/frame.js';

const info = { vc: [40, 37], known: [40, 37], intervals: [{ node: 1, index: 37, pages: Array.from({ length: 30 }, (_, k) => 2000 + k) }] };

function diffsOf(count, bytes, seed) {
  const all = new Uint8Array(count * bytes);
  let x = seed;
  for (let i = 0; i < all.length; i++) { x = (Math.imul(x, 1103515245) + 12345) | 0; all[i] = x >>> 24; }
  return Array.from({ length: count }, (_, k) => all.subarray(k * bytes, (k + 1) * bytes));
}

const shapes = {
  release100k: () => ({ type: 'lockRelease', lockId: 3, info, bundled: { interval: 37, pages: Array.from({ length: 30 }, (_, k) => 2000 + k), diffs: diffsOf(30, 3400, 1) } }),
  diffs620k: () => ({ type: 'diffs', interval: 1, pages: Array.from({ length: 256 }, (_, k) => 1024 + k), diffs: diffsOf(256, 2424, 2) }),
  release7k: () => ({ type: 'lockRelease', lockId: 3, info, bundled: { interval: 37, pages: Array.from({ length: 12 }, (_, k) => 2000 + k), diffs: diffsOf(12, 600, 3) } }),
};

/** The frame as Connection's writeFrame builds it (src/transport/connection.ts), as one buffer. */
function frameOf(message) {
  const wire = toWire(message);
  if (!('payload' in wire)) {
    const frame = encodeBodyAfter(wire, frameHeaderBytes);
    writeFrameHeader(frame, frameKinds.message, frame.byteLength - frameHeaderBytes, 0);
    return [frame];
  }
  const { body, payload } = encodeBody(wire);
  return [encodeFrameHeader(frameKinds.message, body.byteLength, payload?.byteLength ?? 0), body, payload];
}

/** The frame's bytes (joined outside the timing) received in 64 KiB chunks (a socket's `data` events), decoded to the engine's message. */
function receive(bytes) {
  const decoder = new FrameDecoder();
  const out = [];
  for (let at = 0; at < bytes.byteLength; at += 65536) {
    for (const frame of decoder.push(bytes.subarray(at, Math.min(bytes.byteLength, at + 65536)))) out.push(fromWire(decodeBody(frame.body, frame.payload)));
  }
  return out[0];
}

function once(make) {
  const message = make();
  const t0 = performance.now();
  const parts = frameOf(message);
  const t1 = performance.now();
  const bytes = Buffer.concat(parts);
  const t1b = performance.now();
  const back = receive(bytes);
  const t2 = performance.now();
  const diffs = back.type === 'diffs' ? back.diffs : back.bundled.diffs;
  if (diffs.length !== (message.diffs ?? message.bundled.diffs).length) throw new Error('lost diffs');
  return [(t1 - t0) * 1000, (t2 - t1b) * 1000];
}

const median = (values) => values.slice().sort((a, b) => a - b)[values.length >> 1];
const result = {};
for (const [name, make] of Object.entries(shapes)) {
  const cold = Array.from({ length: 20 }, () => once(make));
  for (let k = 0; k < 300; k++) once(make);
  const warm = Array.from({ length: 50 }, () => once(make));
  result[name] = {
    coldSendUs: +median(cold.map((c) => c[0])).toFixed(1), coldReceiveUs: +median(cold.map((c) => c[1])).toFixed(1),
    warmSendUs: +median(warm.map((c) => c[0])).toFixed(1), warmReceiveUs: +median(warm.map((c) => c[1])).toFixed(1),
  };
}
console.log(JSON.stringify({ program: 'diffs-wire', ...result }));
