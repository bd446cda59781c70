// The end of a --race run on node 0: the report on stderr, JSON to a file, the exit code.

import { writeFileSync } from 'node:fs';
import { exitCodeRaces } from '../errors.js';
import type { RaceChecker } from './checker.js';
import { formatRaceReport, resolveRaces } from './report.js';

/** Prints the report; returns the run's exit code (exitCodeRaces when races were found and the program itself succeeded). */
export function finishRaceReport(checker: RaceChecker, programCode: number, jsonPath: string | undefined): number {
  const report = resolveRaces(checker.summary());
  process.stderr.write(formatRaceReport(report));
  if (jsonPath !== undefined) writeFileSync(jsonPath, `${JSON.stringify(report, null, 2)}\n`);
  return report.raceCount > 0 && programCode === 0 ? exitCodeRaces : programCode;
}
