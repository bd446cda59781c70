// Run under `dsm run` (any node count): what the private copies of
// src/threads/kernel-copies.ts cost. fs.writeSync of a 16 MiB range to a file,
// from dsm memory (copied first) against from an ordinary Buffer (the
// baseline, same run), best of `rounds`; and many small stream writes of an
// ordinary Buffer, which pass the dsm check. Prints one JSON line.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';

const bytes = 16 * 1024 * 1024;
const rounds = Number(process.argv[2] ?? 20);
const dsm = new Uint8Array(new SharedArrayBuffer(bytes)).fill(1);
const plain = Buffer.alloc(bytes, 1);
const file = path.join(os.tmpdir(), `dsm-kernel-copies-${process.pid}`);
const fd = fs.openSync(file, 'w');

function bestMs(run) {
  run();
  let best = Infinity;
  for (let round = 0; round < rounds; round += 1) {
    const start = process.hrtime.bigint();
    run();
    best = Math.min(best, Number(process.hrtime.bigint() - start) / 1e6);
  }
  return Math.round(best * 1000) / 1000;
}

const plainMs = bestMs(() => fs.writeSync(fd, plain, 0, bytes, 0));
const dsmMs = bestMs(() => fs.writeSync(fd, dsm, 0, bytes, 0));
const small = Buffer.alloc(64, 2);
const sink = new PassThrough();
sink.resume();
const streamWrites = 10_000;
const streamMs = bestMs(() => { for (let index = 0; index < streamWrites; index += 1) sink.write(small); });
fs.closeSync(fd);
fs.rmSync(file);
console.log(JSON.stringify({
  bytes, rounds, writeSyncPlainMs: plainMs, writeSyncDsmMs: dsmMs, dsmOverPlain: Math.round((dsmMs / plainMs) * 100) / 100,
  streamWrites, streamWriteUs: Math.round((streamMs / streamWrites) * 1e6) / 1000, nodes: process.env.DSM_NODE_COUNT ?? 'plain node',
}));
