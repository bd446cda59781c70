// Shared by test/integration/race.test.ts and race-free.test.ts: runs a
// program with `dsm run --race` and reads its JSON report.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import type { RaceReport } from '../../src/race/report.js';

const dir = mkdtempSync(join(tmpdir(), 'dsm-race-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let runs = 0;

export function race(file: string, nodes: number, extra: string[] = [], args: string[] = []): { status: number | null; stdout: string; stderr: string; report: RaceReport } {
  const json = join(dir, `report-${runs++}.json`);
  const result = spawnSync(process.execPath, ['bin/dsm.js', 'run', '--race', '--nodes', String(nodes), '--region-bytes', '256m', '--race-json', json, ...extra, file, ...args],
    { encoding: 'utf8', timeout: 180_000 });
  assert.equal(result.error, undefined, String(result.error));
  let report: RaceReport;
  try {
    report = JSON.parse(readFileSync(json, 'utf8')) as RaceReport;
  } catch {
    assert.fail(`no race report (exit ${result.status}): ${result.stderr}`);
  }
  return { status: result.status, stdout: result.stdout, stderr: result.stderr, report };
}

/** The line of `file` holding `marker`, 1-based. */
export function lineOf(file: string, marker: string): number {
  const index = readFileSync(file, 'utf8').split('\n').findIndex((line) => line.includes(marker));
  assert.ok(index >= 0, `${marker} in ${file}`);
  return index + 1;
}

