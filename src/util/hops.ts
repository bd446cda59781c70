// Hop stamps for latency work (issue 12/13: where a synchronization's time
// goes between an app thread, its manager, the socket and the other node).
// Off unless DSM_HOPS names a directory: each thread of each node process then
// appends `<hrtime ns> <pid>:<threadId> <hop>` lines to <dir>/<pid>-<threadId>
// (buffered, written every hopFlushCount stamps and at exit). process.hrtime
// is CLOCK_MONOTONIC, one clock for every process of the machine, so the
// files of a local cluster merge into one timeline (scripts/hop-stats.mjs prints the time between successive hops).
// Call sites guard with `if (hopsOn)` so that nothing (not even the hop's
// name) is built when it is off.

import { appendFileSync } from 'node:fs';
import { threadId } from 'node:worker_threads';
import { hopsDirSetting } from '../env.js';

const hopsDir = hopsDirSetting();
/** Stamps kept before they are appended to the thread's file. */
const hopFlushCount = 512;
const stamps: string[] = [];

/** True when DSM_HOPS names a directory to stamp hops into. */
export const hopsOn = hopsDir !== '';

/** Stamps `name` now (only when hopsOn: callers check it first). */
export function hop(name: string): void {
  stamps.push(`${process.hrtime.bigint()} ${process.pid}:${threadId} ${name}`);
  if (stamps.length >= hopFlushCount) flushHops();
}

function flushHops(): void {
  if (stamps.length === 0) return;
  try {
    appendFileSync(`${hopsDir}/${process.pid}-${threadId}`, `${stamps.join('\n')}\n`);
  } catch {
    // DSM_HOPS is not a writable directory: `dsm run` said so at its start (checkEnvironmentSettings); the stamps are dropped.
  }
  stamps.length = 0;
}

if (hopsOn) process.on('exit', flushHops);
