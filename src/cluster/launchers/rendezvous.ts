// MPI launchers start every rank but tell none of them where rank 0 is. Rank 0
// listens, then writes its address to a file on a path every rank can read (a
// shared home or scratch directory, or /tmp when every rank is on one machine);
// the others wait for the file. The file is written whole (a temporary file
// renamed over it) and removed when rank 0 exits.

import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { joinRetryIntervalMs } from '../../constants.js';
import { DsmError, assert } from '../../errors.js';
import { formatAddress } from '../common.js';

export interface LeaderRecord {
  host: string;
  port: number;
  pid: number;
  clusterId: string;
}

/** Rank 0: publishes its address; the file goes when this process exits. */
export function publishLeader(file: string, record: LeaderRecord): void {
  assert(record.port > 0, 'node 0 publishes the port it listens on');
  try {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    const temporary = `${file}.${process.pid}.tmp`;
    writeFileSync(temporary, `${JSON.stringify(record)}\n`, { mode: 0o600 });
    renameSync(temporary, file);
  } catch (error) {
    throw new DsmError('DSM_ERR_LAUNCHER', `mpi: node 0 cannot write its address to ${file} (${(error as Error).message}); pass --rendezvous DIR (a directory every rank can read) or --leader HOST:PORT`);
  }
  process.on('exit', () => {
    try {
      const current = readLeader(file);
      if (current?.pid === process.pid) rmSync(file, { force: true });
    } catch { /* exiting anyway */ }
  });
}

/** The record in `file`, or null while it is absent or incomplete. */
export function readLeader(file: string): LeaderRecord | null {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return null;
  }
  try {
    const record = JSON.parse(text) as Partial<LeaderRecord>;
    if (typeof record.host !== 'string' || typeof record.port !== 'number' || typeof record.clusterId !== 'string') return null;
    return { host: record.host, port: record.port, pid: Number(record.pid ?? 0), clusterId: record.clusterId };
  } catch {
    return null;
  }
}

/** The others: waits for node 0's record of this cluster until the deadline. */
export async function waitForLeader(file: string, clusterId: string, deadlineMs: number, source: string): Promise<LeaderRecord> {
  for (;;) {
    const record = readLeader(file);
    if (record !== null && record.clusterId === clusterId) return record;
    if (Date.now() + joinRetryIntervalMs > deadlineMs) {
      const found = record === null ? 'it never appeared' : `it names another job (${record.clusterId} at ${formatAddress(record.host, record.port)})`;
      throw new DsmError('DSM_ERR_LAUNCHER', `mpi: node 0 did not publish its address in ${file} before the join deadline (${found}); check that rank 0 started and that every rank reads the same directory (--rendezvous DIR on a shared filesystem), or pass --leader HOST:PORT; read: ${source}`);
    }
    await new Promise((resolve) => setTimeout(resolve, joinRetryIntervalMs));
  }
}
