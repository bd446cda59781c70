// One `dsm run` for several programs with the same options (test/fixtures/litmus/sequence.mjs runs them in turn): a
// cluster start is most of a short program's time. Each program's result is still its own: its output (between its
// start and end lines), whether it threw, whether the run ended (hung, crashed) while it ran. A program the run never
// reached (an earlier one hung or crashed the run) runs alone, with the same options, so that only the culprit's test
// fails.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface ProgramResult {
  /** 0 when the program ended, 1 when it threw, else the run's exit status (null: killed, e.g. by the timeout). */
  status: number | null;
  stdout: string;
  stderr: string;
  error: Error | undefined;
}

interface SequenceOptions {
  /** `dsm run` options before the program, e.g. ['--nodes', '4', '--protocol', 'sc', '--region-bytes', '256m']. */
  dsmArgs: string[];
  files: string[];
  /** Each run (the sequence's, and each lone program's) gets a fresh directory for the arrivals test hook. */
  arrivals?: boolean;
  /** A bound for hangs, not a time budget: for the whole sequence. */
  timeoutMs: number;
  /** The same, for a program run alone. */
  programTimeoutMs: number;
}

interface Run { status: number | null; stdout: string; stderr: string; error: Error | undefined }

function dsmRun(args: string[], arrivals: boolean, timeoutMs: number): Run {
  const dir = arrivals ? mkdtempSync(join(tmpdir(), 'dsm-arrivals-')) : null;
  try {
    const env = dir === null ? process.env : { ...process.env, DSM_TEST_HOOK_ARRIVALS: `*:${dir}` };
    const result = spawnSync(process.execPath, ['bin/dsm.js', 'run', ...args], { encoding: 'utf8', timeout: timeoutMs, env });
    return { status: result.status, stdout: result.stdout ?? '', stderr: result.stderr ?? '', error: result.error };
  } finally {
    if (dir !== null) rmSync(dir, { recursive: true, force: true });
  }
}

export class Sequence {
  private run: Run | null = null;

  constructor(private readonly options: SequenceOptions) {}

  /** The whole run (started on first use): for the test that it exits 0. */
  whole(): Run {
    if (this.run === null) {
      const { dsmArgs, files, arrivals = false, timeoutMs } = this.options;
      this.run = dsmRun([...dsmArgs, 'test/fixtures/litmus/sequence.mjs', ...files], arrivals, timeoutMs);
    }
    return this.run;
  }

  /** What `file` did in the run (or alone, when the run never reached it). */
  resultOf(file: string): ProgramResult {
    const { dsmArgs, files, arrivals = false, programTimeoutMs } = this.options;
    if (!files.includes(file)) throw new Error(`${file} is not in the sequence`);
    const run = this.whole();
    const lines = run.stdout.split('\n');
    const start = lines.indexOf(`=== start ${file}`);
    if (start === -1) {
      const alone = dsmRun([...dsmArgs, file], arrivals, programTimeoutMs);
      return { ...alone, stderr: `(run alone: the sequence ended before it, ${String(run.error ?? `exit ${run.status}`)}: ${run.stderr})\n${alone.stderr}` };
    }
    const rest = lines.slice(start + 1);
    const last = rest.findIndex((line) => line.startsWith('=== '));
    // Without an end line the output runs to the end of stdout, whose last line ends in a newline (or is cut off).
    const ownLines = last === -1 ? rest : rest.slice(0, last);
    const stdout = last === -1 ? ownLines.join('\n') : ownLines.map((line) => `${line}\n`).join('');
    const marker = last === -1 ? undefined : rest[last];
    if (marker === `=== end ${file}`) return { status: 0, stdout, stderr: run.stderr, error: undefined };
    if (marker !== undefined && marker.startsWith(`=== error ${file}: `)) {
      return { status: 1, stdout, stderr: `${rest.slice(last).join('\n')}\n${run.stderr}`, error: undefined };
    }
    // The run ended while the program ran (killed at the timeout, or a node died).
    return { status: run.status === 0 ? null : run.status, stdout, stderr: `the run ended while it ran: ${run.stderr}`, error: run.error ?? new Error(`the run ended while ${file} ran (exit ${run.status})`) };
  }
}
