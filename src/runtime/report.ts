// Writes what `--stats`, `--stats-json FILE` and `--trace FILE` ask for at the
// end of a run (formats in docs/OBSERVABILITY.md).

import { accessSync, closeSync, constants as fsConstants, openSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { pageBytes } from '../constants.js';
import { DsmError } from '../errors.js';
import { packageVersion } from '../package-info.js';
import { formatStatsTable, totalOf, type NodeStats, type TraceEvent } from './observe.js';

export interface ReportOptions {
  /** Print the per-node table on stderr. */
  stats?: boolean;
  statsJsonPath?: string;
  tracePath?: string;
}

export interface RunReport {
  protocol: string;
  nodeCount: number;
  regionBytes: number;
  seconds: number;
  exitCode: number;
  nodes: NodeStats[];
  events: TraceEvent[];
  dropped: number;
}

/**
 * Checks, before a run starts, that `path` (an output file of `option`) can be written: its directory exists and is
 * writable, and it is not a directory itself (nor an existing file this process may not write). Without it a
 * wrong path failed only when the run ended, after the program's work (session 46).
 */
export function checkOutputPath(path: string, option: string): void {
  const full = resolve(path);
  let reason: string | null = null;
  try {
    const existing = statSync(full, { throwIfNoEntry: false });
    if (existing?.isDirectory() === true) reason = 'it is a directory';
    else if (existing !== undefined) accessSync(full, fsConstants.W_OK);
    else if (!statSync(dirname(full)).isDirectory()) reason = `${dirname(full)} is not a directory`;
    else accessSync(dirname(full), fsConstants.W_OK);
  } catch (error) {
    reason = (error as Error).message;
  }
  if (reason !== null) throw new DsmError('DSM_ERR_INVALID_OPTION', `${option}: cannot write ${path} (${reason}); choose a writable path`);
}

export function writeRunReport(options: ReportOptions, report: RunReport): void {
  const summary = { protocol: report.protocol, nodeCount: report.nodeCount, seconds: report.seconds, nodes: report.nodes };
  if (options.stats === true) process.stderr.write(formatStatsTable(summary));
  if (options.statsJsonPath !== undefined) {
    const json = {
      dsmVersion: packageVersion, protocol: report.protocol, nodeCount: report.nodeCount,
      seconds: Math.round(report.seconds * 1e6) / 1e6, exitCode: report.exitCode,
      total: totalOf(report.nodes), nodes: report.nodes,
    };
    writeOrFail(options.statsJsonPath, '--stats-json', () => writeFileSync(options.statsJsonPath!, `${JSON.stringify(json, null, 2)}\n`));
  }
  if (options.tracePath !== undefined) writeTrace(options.tracePath, report);
}

function writeTrace(path: string, report: RunReport): void {
  const otherData = {
    dsm: { version: packageVersion, protocol: report.protocol, nodeCount: report.nodeCount, pageBytes, regionBytes: report.regionBytes, droppedEvents: report.dropped },
  };
  // Streamed: a trace holds up to traceEventCountMax events per node.
  writeOrFail(path, '--trace', () => {
    const fd = openSync(path, 'w');
    try {
      writeSync(fd, `{"displayTimeUnit":"ms","otherData":${JSON.stringify(otherData)},"traceEvents":[\n`);
      const events = report.events.sort((a, b) => a.ts - b.ts);
      let chunk: string[] = [];
      events.forEach((event, index) => {
        chunk.push(JSON.stringify({ ...event, ts: Math.round(event.ts * 1000) / 1000 }) + (index === events.length - 1 ? '\n' : ',\n'));
        if (chunk.length === 10_000) { writeSync(fd, chunk.join('')); chunk = []; }
      });
      writeSync(fd, `${chunk.join('')}]}\n`);
    } finally {
      closeSync(fd);
    }
  });
}

function writeOrFail(path: string, option: string, write: () => void): void {
  try {
    write();
  } catch (error) {
    throw new DsmError('DSM_ERR_INVALID_OPTION', `${option}: cannot write ${path} (${(error as Error).message}); choose a writable path`);
  }
}
